"""The held-out split of the corpus: one document in five, by a hash of its id, is never
trained on (the bootstrap dataset, the guard's and the answer types' fits all skip it), so
that evaluation can report figures on documents no model or fit has seen."""

from __future__ import annotations

import hashlib

HELD_OUT_SHARE = 5  # one document in five is held out


def is_held_out(doc_id: str) -> bool:
    """Whether ``doc_id`` belongs to the part of the corpus never trained on."""
    return int(hashlib.md5(doc_id.encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0
