"""Follow-up questions read against the conversation before anything is searched.

"What are its symptoms?" after "What is diabetes?" means "What are the symptoms of
diabetes?": searched alone it finds whatever page mentions symptoms most. A question that
points back (it, its, this condition, the contract ...) or that names nothing of its own
("and the outlook?") gets the subject of the previous turn: the title of the page the
previous answer cited (or, without citations, of the best page found for the previous
question), and for a contract question the "In the <contract> between <parties>:" it began
with. A question that names its own subject is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.asking.contract_questions import read_contract_question

# Words that point back to something said before; "it" and "the condition" before "they"
# ("how do they treat it": they are the doctors).
_SINGULAR_POINTER = re.compile(
    r"\b(?:(?:this|that|the)\s+(?:condition|disease|disorder|illness|syndrome|problem|"
    r"infection|cancer|contract|agreement)|it|it's|itself|this|that)\b",
    re.IGNORECASE,
)
_PLURAL_POINTER = re.compile(r"\b(?:they|them|these|those)\b", re.IGNORECASE)
_POSSESSIVE = re.compile(
    r"\b(?:its|their)\s+([a-z][a-z -]*?)(?=[?.!,]|\s+(?:is|are|be|like)\b|$)", re.IGNORECASE
)
_WORD = re.compile(r"[a-z]+")
# What questions ask about a subject; a question made only of these names no subject.
_ASPECT_WORDS = frozenset(
    """
    what whats which who how why when where is are was were do does did can could should would
    will the a an and or of for to in on about with any there it its this that they them their
    these those symptoms symptom signs sign causes cause caused causing treatment treatments
    treat treated treating cure cured therapy therapies medication medications outlook prognosis
    inherited inheritance hereditary genetic genes gene genetics run runs family families
    common frequency often many people prevalence prevent prevented prevention diagnosed
    diagnose diagnosis test tests tests exams exam risk risks complications complication research
    trials clinical stages stage types type long last serious dangerous contagious spread get
    also else more tell me please know need much affect affected affects live living die deadly
    governing law term renewal termination terminate notice date effective expiration parties
    party fee fees liability cap insurance audit exclusivity assignment license warranty
    doctor doctors confirm confirmed check checked detect detected find found screen screening
    scan usually typically rare happen happens worse better start starts begin begins age
    chance chances survival recover recovery outcome expect expected someone person
    """.split()
)

# The title of the best page found for a question (a search), for turns without citations.
TopTitle = Callable[[str], str | None]


@dataclass(frozen=True)
class PastTurn:
    """An earlier user turn: its question as resolved, and the titles its answer cited."""

    question: str
    cited_titles: tuple[str, ...] = ()


def needs_context(question: str) -> bool:
    """Whether the question points back or names no subject of its own."""
    if read_contract_question(question) is not None:
        return False
    if _SINGULAR_POINTER.search(question) or _PLURAL_POINTER.search(question):
        return True
    if _POSSESSIVE.search(question):
        return True
    # One-letter pieces are contractions' tails ("what's", "doesn't"), not subjects.
    words = [w for w in _WORD.findall(question.lower()) if len(w) > 1]
    return bool(words) and all(w in _ASPECT_WORDS for w in words)


def subject_of(turn: PastTurn, top_title: TopTitle | None) -> str | None:
    """What the earlier turn was about: its first cited title, else the best page's title."""
    if turn.cited_titles:
        return turn.cited_titles[0]
    if top_title is not None:
        return top_title(turn.question)
    return None


def resolve(question: str, history: Sequence[PastTurn], top_title: TopTitle | None = None) -> str:
    """``question`` with the conversation's subject put in where it points back."""
    if not history or not needs_context(question):
        return question
    previous = history[-1]
    contract = read_contract_question(previous.question)
    if contract:  # a contract question: the follow-up asks about the same contract
        return f"{contract.prefix} {question.strip()}"
    subject = subject_of(previous, top_title)
    if not subject:
        return question
    return with_subject(question, subject)


def with_subject(question: str, subject: str) -> str:
    """Put ``subject`` where the question points back, or after it when nothing does."""
    text = question.strip()
    # "What are its symptoms?" -> "What are the symptoms of X?"
    text, n = _POSSESSIVE.subn(lambda m: f"the {m.group(1).strip()} of {subject}", text, count=1)
    if n:
        return text
    for pointer in (_SINGULAR_POINTER, _PLURAL_POINTER):
        text, n = pointer.subn(subject, text, count=1)
        if n:
            return text
    # "and the outlook?" -> "and the outlook of X?"
    body = text.rstrip(" ?.!")
    ending = text[len(body) :].strip() or "?"
    return f"{body} of {subject}{ending}"
