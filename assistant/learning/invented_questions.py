"""Questions the corpus cannot answer, made up for the bootstrap dataset: diseases, drugs,
contracts and laws that do not exist (the model must learn to decline them); and questions
as people type them (lower case, no question mark, a typo)."""

from __future__ import annotations

import random
import re

_SYLLABLES = (
    "bra tel vo ric man dor sel ka fen lo tra mi zo ver nak pel quin dar sto lum gra hev "
    "cor ben tis ol wy rax jun fal mor pen"
).split()
_MEDICAL_FRAMES = (
    "What is (are) {x} ?",
    "What are the symptoms of {x} ?",
    "What are the treatments for {x} ?",
    "What causes {x} ?",
    "Is {x} inherited ?",
    "How many people are affected by {x} ?",
    "What is the outlook for {x} ?",
    "How to diagnose {x} ?",
    "my doctor thinks i might have {x}, is it serious?",
    "what is the usual dose of {x} for adults",
    "Can {x} be prevented?",
)
_MEDICAL_KINDS = ("syndrome", "disease", "", "deficiency", "dystrophy", "")
_DRUG_ENDINGS = ("zumab", "tinib", "vastatin", "prazole", "cillin", "dronate")
_LEGAL_FRAMES = (
    "In the {title} between {a} and {b}: What is the initial franchise fee?",
    "In the {title} between {a} and {b}: Which state's law governs the contract?",
    "In the {title} between {a} and {b}: What is the notice period to terminate renewal?",
    "In the {title} between {a} and {b}: What is the renewal term after the initial term expires?",
    "In the {title} between {a} and {b}: Is there a cap on liability?",
    "In the {title} between {a} and {b}: Who are the parties that signed the contract?",
    "What does the {title} between {a} and {b} say about exclusivity?",
)
_LEGAL_TITLES = (
    "Franchise Agreement",
    "Supply Agreement",
    "Software License Agreement",
    "Joint Venture Agreement",
    "Distribution Agreement",
    "Consulting Services Agreement",
)
_COMPANY_ENDINGS = ("Holdings, Inc.", "Technologies LLC", "Group Ltd.", "Corporation", "S.A.")


def _invented_word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def invented_questions(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` (question, domain) about invented diseases, drugs and contracts."""
    out: list[tuple[str, str]] = []
    while len(out) < n:
        roll = rng.random()
        if roll < 0.45:
            name = f"{_invented_word(rng, 2)}-{_invented_word(rng, 2)} {rng.choice(_MEDICAL_KINDS)}"
            out.append((rng.choice(_MEDICAL_FRAMES).format(x=name.strip()), "medical"))
        elif roll < 0.6:
            drug = _invented_word(rng, 2).lower() + rng.choice(_DRUG_ENDINGS)
            out.append((rng.choice(_MEDICAL_FRAMES).format(x=drug), "medical"))
        else:
            a = f"{_invented_word(rng, 2)} {rng.choice(_COMPANY_ENDINGS)}"
            b = f"{_invented_word(rng, 3)} {rng.choice(_COMPANY_ENDINGS)}"
            frame = rng.choice(_LEGAL_FRAMES)
            out.append((frame.format(title=rng.choice(_LEGAL_TITLES), a=a, b=b), "legal"))
    return out


def noisy(question: str, rng: random.Random) -> str:
    """The question as people type it: lower case, no question mark, one slip of a key."""
    text = question.lower().rstrip(" ?")
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
    if candidates and rng.random() < 0.6:
        i = rng.choice(candidates)
        w = words[i]
        k = rng.randrange(1, len(w) - 1)
        words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2 :]  # two letters swapped
    return re.sub(r"\s+", " ", " ".join(words))
