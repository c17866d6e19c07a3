"""The layout of a question about one contract: "In the <contract> between <parties>: <ask>".

The corpus QA asks every contract question this way, and a follow-up about a contract is
rewritten to it (``conversation``); the subject check reads the parties from it
(``abstain``). One parser serves both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "In the <anything without a colon or question mark>:" opens a contract question.
_PREFIX = re.compile(r"^\s*(?P<prefix>in the [^:?]{3,300}:)\s*", re.IGNORECASE)
# ... and names its parties when the contract's name is followed by "between A and B".
_NAMED = re.compile(
    r"^\s*in the (?P<contract>[^:]{3,200}?) (?:between|involving|among|by and between) "
    r"(?P<parties>[^:]{3,300}):",
    re.IGNORECASE,
)
_PARTY_SEPARATOR = re.compile(r"\s+and\s+|[;,]|\s*&\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ContractQuestion:
    prefix: str  # "In the Services Agreement between A and B:"
    ask: str  # what follows it
    contract: str | None  # "Services Agreement", when the parties are named
    parties: tuple[str, ...]  # ("A", "B"), as written


def read_contract_question(question: str) -> ContractQuestion | None:
    """The parts of a contract question; None for any other question."""
    opened = _PREFIX.match(question)
    if opened is None:
        return None
    named = _NAMED.match(question)
    parties: tuple[str, ...] = ()
    if named is not None:
        parties = tuple(
            p.strip() for p in _PARTY_SEPARATOR.split(named.group("parties")) if p.strip()
        )
    return ContractQuestion(
        opened.group("prefix"),
        question[opened.end() :].strip(),
        named.group("contract") if named else None,
        parties,
    )
