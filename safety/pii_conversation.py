"""Placeholders numbered across a conversation, and names known from its earlier messages."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from safety.pii_names import name_parts
from safety.pii_types import PIISpan

# Entities whose value is a number: "617-555-0134" and "(617) 555 0134" are one value.
_NUMERIC = {
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "US_BANK_NUMBER",
    "NPI",
    "IBAN_CODE",
}


@dataclass
class PlaceholderMap:
    """Value -> ``<TYPE_n>`` for one conversation, safe to store: values are kept only as
    keyed digests (HMAC-SHA256), so the map reveals nothing without the key, and a guessed
    value cannot be confirmed against it either."""

    key: bytes
    digests: dict[str, str] = field(default_factory=dict)

    def digest(self, entity_type: str, value: str) -> str:
        normal = _normal_value(entity_type, value)
        return hmac.new(self.key, normal.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def get(self, entity_type: str, value: str) -> str | None:
        return self.digests.get(self.digest(entity_type, value))

    def add(self, entity_type: str, value: str, placeholder: str) -> None:
        self.digests.setdefault(self.digest(entity_type, value), placeholder)

    def placeholders(self) -> list[str]:
        return list(self.digests.values())

    def to_json(self) -> dict[str, str]:
        return dict(self.digests)


PlaceholderStore = MutableMapping[str, str] | PlaceholderMap


def _normal_value(entity_type: str, value: str) -> str:
    if entity_type in _NUMERIC:
        return re.sub(r"\W", "", value).casefold()
    return " ".join(value.split()).casefold()


def placeholder_for(mapping: PlaceholderStore, entity: str, value: str) -> str:
    """The placeholder ``value`` (or, for a name, one of its parts) already has in ``mapping``,
    else the next free number; recorded in ``mapping`` either way."""
    if isinstance(mapping, PlaceholderMap):
        found = mapping.get(entity, value)
        taken = mapping.placeholders()
    else:
        found = mapping.get(value)
        taken = list(mapping.values())
    if found is None and entity == "PERSON":
        # "Eleanor" after "Eleanor Whitcombe" is the same person.
        for part in name_parts(value) or [value]:
            part_found = (
                mapping.get(entity, part)
                if isinstance(mapping, PlaceholderMap)
                else mapping.get(part)
            )
            if part_found:
                found = part_found
                break
    if found is None:
        count = sum(1 for p in set(taken) if p.startswith(f"<{entity}_"))
        found = f"<{entity}_{count + 1}>"
    if isinstance(mapping, PlaceholderMap):
        mapping.add(entity, value, found)
        if entity == "PERSON":
            for part in name_parts(value):
                mapping.add(entity, part, found)
    else:
        mapping.setdefault(value, found)
        if entity == "PERSON":
            for part in name_parts(value):
                mapping.setdefault(part, found)
    return found


_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def with_known_names(
    text: str, spans: list[PIISpan], mapping: PlaceholderStore, common: frozenset[str]
) -> list[PIISpan]:
    """``spans`` and every further word of ``text`` that is a name the mapping already holds.

    The NER model tags a name by its context, so it can find "Rosalind Quarrendon" in one
    message of a conversation and miss "Rosalind again: ..." in the next; once a name is known
    to be personal in a conversation (or a record), every later mention of it is too.
    """
    if not (mapping.digests if isinstance(mapping, PlaceholderMap) else mapping):
        return spans
    extra = []
    for match in _NAME_WORD.finditer(text):
        word = match.group()
        if len(word) < 3 or word.casefold() in common:
            continue
        for value in (word, word[:-2]) if word[-2:] in ("'s", "’s") else (word,):
            if isinstance(mapping, PlaceholderMap):
                known = mapping.get("PERSON", value)
            else:
                known = mapping.get(value)
            if known is not None and known.startswith("<PERSON_"):
                extra.append(PIISpan(match.start(), match.start() + len(value), "PERSON", 0.5))
                break
    if not extra:
        return spans
    chosen = list(spans)
    for span in extra:
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)
