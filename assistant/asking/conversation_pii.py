"""Personal data in a conversation: every text stored for it (question, answer, correction)
is scrubbed with the conversation's own placeholder numbering, so "<PERSON_1>" is the same
person across its turns; the map holds keyed digests only, never the values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.storage import models
from safety.pii import PIISpan, load_key
from safety.pii_conversation import PlaceholderMap

if TYPE_CHECKING:
    from safety.pii import PIIScrubber


class ConversationScrubber:
    def __init__(self, scrubber: Callable[[], PIIScrubber], hash_key_file: Path | None) -> None:
        # A provider: the PII engine loads on the first text that needs it (a bare thumbs
        # never does).
        self._scrubber = scrubber
        self._hash_key_file = hash_key_file
        self._hash_key: bytes | None = None

    def placeholders(self, conversation: models.Conversation) -> PlaceholderMap:
        """The conversation's placeholder map (keyed digests, safe to store)."""
        if self._hash_key is None:
            self._hash_key = load_key(self._hash_key_file, "PII digest", create=True)
        return PlaceholderMap(self._hash_key, dict(conversation.pii_placeholders or {}))

    def scrub(self, text: str, spans: list[PIISpan] | None = None) -> str:
        """``text`` scrubbed on its own (no conversation to number it with)."""
        return self._scrubber().scrub(text, spans=spans)

    def scrub_in(
        self, conversation: models.Conversation, text: str, spans: list[PIISpan] | None = None
    ) -> str:
        """``text`` scrubbed with the conversation's numbering, which is saved back."""
        mapping = self.placeholders(conversation)
        scrubbed = self._scrubber().scrub(text, mapping, spans)
        conversation.pii_placeholders = mapping.to_json()
        return scrubbed
