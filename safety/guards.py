"""Checks on what users send before any work is done on it, and on answers before they are shown.

Input: size, then emergencies (answered at once with where to get help), prompt injection and
jailbreaks (refused), questions that are neither medical nor legal (a polite scope message).
Output: personal data the answer made up, doses, diagnoses or legal conclusions without a
citation, and the disclaimer of the collection.

Patterns and small heuristics, no model: every rule is readable and testable, and the red-team
set in tests/safety/data measures them (docs/safety.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from safety.flags import Flag

if TYPE_CHECKING:
    from safety.intent import SemanticGuard

Action = Literal["answer", "block", "emergency", "out_of_scope"]

DEFAULT_EMERGENCY_NUMBER = "911 in the US, 112 in Europe, 999 in the UK"
DEFAULT_CRISIS_LINE = "call or text 988 (the Suicide & Crisis Lifeline, US)"
DEFAULT_POISON_LINE = "Poison Control (US) is 1-800-222-1222"


def emergency_message(
    emergency_number: str = DEFAULT_EMERGENCY_NUMBER,
    crisis_line: str = DEFAULT_CRISIS_LINE,
    poison_line: str = DEFAULT_POISON_LINE,
) -> str:
    """The calm reply to a crisis: who to call now. Numbers are settings (they vary by country)."""
    return (
        "I'm concerned about what you wrote, and I want you to get help right now. Please call "
        f"your local emergency number ({emergency_number}) or go to the nearest emergency "
        f"department. If you are thinking about harming yourself, you can {crisis_line} or your "
        "local crisis line at any time; you don't have to face this alone. For a possible "
        f"poisoning or overdose, {poison_line}. Do not wait for an answer from this assistant."
    )


EMERGENCY_MESSAGE = emergency_message()
BLOCK_MESSAGE = (
    "I can't follow instructions that try to change how I work. I answer medical and legal "
    "questions from the documents I can search: please ask your question directly."
)
SCOPE_MESSAGE = (
    "I can only help with medical and legal questions, answered from the documents I can "
    "search. Please ask a question about a health condition, a treatment, or a legal matter "
    "such as a contract."
)


@dataclass(frozen=True)
class GuardVerdict:
    allowed: bool
    reason: str = ""
    message: str = ""
    action: Action = "answer"
    hits: tuple[str, ...] = ()


def normalise_question(text: str) -> str:
    """NFC, control characters removed (newlines and tabs kept), surrounding space stripped."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()


def check_question(text: str, max_chars: int) -> GuardVerdict:
    """Size checks: a refusal here is a 4xx before anything is stored."""
    if not text:
        return GuardVerdict(False, "empty", "Please type a question.", "block")
    if len(text) > max_chars:
        return GuardVerdict(
            False,
            "too_long",
            f"The question is {len(text)} characters long; the limit is "
            f"{max_chars}. Please shorten it.",
            "block",
        )
    return GuardVerdict(True)


def _rx(*patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


# ---- emergencies ------------------------------------------------------------------------------
# Someone in danger now, not a question about a condition: first person (or someone present)
# and the present. "What are the signs of a stroke?" is answered; "my dad's face is drooping
# and he can't talk" is an emergency.
_SELF = r"(?:i|i'm|im|i am|i've|ive|i have|me|my|we|we're|our)"
_OTHER = (
    r"(?:my|our)\s+(?:\w+\s+)?(?:husband|wife|partner|son|daughter|child|kid|baby|mom|mum|"
    r"mother|dad|father|brother|sister|friend|grandma|grandmother|grandpa|grandfather|"
    r"boyfriend|girlfriend|roommate|neighbou?r|colleague|patient|toddler|infant)|"
    r"(?:he|she|they)(?:'s|'re| is| are| has| have)?|someone|somebody|a (?:man|woman|person)"
)
EMERGENCY_PATTERNS = {
    "self_harm": _rx(
        r"\b(?:kill|hurt|harm|cut)(?:ing)?\s+(?:myself|my\s*self)\b",
        r"\b(?:want|going|plan(?:ning)?|wanna|thinking about|about)\s+(?:to\s+)?"
        r"(?:die|end(?:ing)?\s+(?:it|my\s+life|things)|kill(?:ing)? myself|commit suicide|"
        r"take my (?:own )?life)",
        r"\bsuicidal\b",
        r"\bi\s*(?:'m|am)\s+going\s+to\s+(?:jump|overdose)",
        r"\bno\s+reason\s+to\s+live\b",
        r"\bbetter\s+off\s+dead\b",
        r"\bend\s+my\s+(?:own\s+)?life\b",
        r"\bself[- ]harm(?:ing)?\s+(?:right\s+)?now\b",
    ),
    "overdose": _rx(
        rf"\b{_SELF}\b.{{0,40}}\b(?:overdos(?:ed|ing)|od'?d)\b",
        rf"\b(?:{_OTHER})\b.{{0,40}}\b(?:overdos(?:ed|ing)|od'?d)\b",
        r"\b(?:took|swallowed|taken|ate|drank|had)\s+(?:a\s+(?:whole|full)\s+bottle|"
        r"(?:all|most)\s+(?:of\s+)?(?:my|the|her|his)\s+(?:pills|tablets|meds|medication)|"
        r"(?:too\s+many|a\s+lot\s+of|a\s+handful\s+of|\d{2,}|twenty|thirty|fifty)\s+"
        r"(?:\w+\s+)?(?:pills|tablets|capsules))",
        r"\b(?:swallowed|drank|ate|drinking)\s+(?:some\s+)?(?:bleach|antifreeze|"
        r"drain cleaner|rat poison|poison|detergent pods?|batter(?:y|ies))",
    ),
    "stroke": _rx(
        rf"\b(?:{_SELF}|{_OTHER})\b.{{0,60}}\b(?:face\s+(?:is\s+)?droop|"
        r"(?:speech\s+is\s+)?slurr(?:ed|ing)|can'?t\s+(?:move|feel)\s+(?:my|his|her|their)\s+"
        r"(?:arm|leg|side|face)|one\s+side\s+(?:of\s+(?:my|his|her)\s+(?:body|face)\s+)?"
        r"(?:is\s+)?(?:numb|weak|paraly[sz]ed))",
        rf"\b(?:think|pretty sure|afraid|scared)\s+(?:that\s+)?(?:{_SELF}|{_OTHER})?\s*"
        r"(?:am|is|are|'m|'s)?\s*having\s+a\s+(?:stroke|heart\s+attack|seizure)",
        r"\b(?:i'?m|i am|he'?s|she'?s|he is|she is|they'?re|dad is|mom is)\s+having\s+a\s+"
        r"(?:stroke|heart\s+attack)",
    ),
    "chest_pain": _rx(
        r"\b(?:crushing|severe|sudden|bad|terrible|intense|sharp)\s+(?:chest\s+pain|pain\s+in\s+"
        r"(?:my|his|her)\s+chest)",
        rf"\b(?:{_SELF}|{_OTHER})\b.{{0,40}}\bchest\s+(?:pain|pressure|tightness|hurts)\b.{{0,60}}"
        r"\b(?:right\s+now|now|radiat\w*|left\s+arm|jaw|sweat\w*|can'?t\s+breathe|"
        r"short(?:ness)?\s+of\s+breath|nause\w*)",
        rf"\b(?:{_SELF}|{_OTHER})\b.{{0,30}}\b(?:can'?t|cannot|unable\s+to)\s+breathe\b",
    ),
    "unresponsive": _rx(
        rf"\b(?:{_OTHER})\b.{{0,40}}\b(?:(?:is\s+)?not\s+breathing|stopped\s+breathing|"
        r"unconscious|unresponsive|won'?t\s+wake\s+up|collapsed|turning\s+blue|passed\s+out)",
        r"\b(?:bleeding|blood)\b.{0,30}\b(?:won'?t\s+stop|will\s+not\s+stop|everywhere|a\s+lot)\b",
        rf"\b(?:{_SELF}|{_OTHER})\b.{{0,40}}\b(?:throat\s+is\s+(?:closing|swelling)|"
        r"anaphyla\w+|seizure\s+(?:won'?t|that\s+won'?t|is\s+not)\s+stop)",
    ),
}

# ---- prompt injection and jailbreaks ---------------------------------------------------------
# Each pattern adds its weight; a question is refused at 1.0. Strong signals weigh 1.0 alone;
# weak ones ("pretend", "no restrictions") must come together.
_PRIOR = r"(?:all\s+|any\s+|the\s+|your\s+|my\s+|these\s+|those\s+|of\s+)*"
_RULES = (
    r"(?:instructions?|rules?|prompts?|directions?|guidelines?|polic(?:y|ies)|"
    r"constraints?|restrictions?|programming|context|system\s+(?:message|prompt)|"
    r"guardrails?|filters?|safety\s+(?:rules|guidelines|settings))"
)
# "ignore the instructions on the bottle" is a patient's question, not an attack.
_NOT_MEDICAL = (
    r"(?!\s+(?:on|of|from|for|in)\s+(?:the|my|your|this|that|his|her)\s+(?:\w+\s+)?"
    r"(?:label|bottle|package|packet|leaflet|doctor|pharmacist|box|insert|prescription|"
    r"medication|medicine|inhaler|device|monitor|nurse|discharge))"
)
INJECTION_PATTERNS: list[tuple[re.Pattern[str], float, str]] = [
    (p, w, name)
    for name, w, pats in (
        (
            "override_instructions",
            1.0,
            _rx(
                rf"\b(?:ignore|disregard|forget|skip|bypass|override|drop|abandon|neglect)\b"
                rf"\s+{_PRIOR}(?:(?:previous|prior|above|earlier|preceding|initial|original|"
                rf"system|safety|existing|current|old|given)\s+)+"
                rf"(?:(?!dosage|dosing|medication|medicine|doctor|label|care|discharge)\w+\s+)?"
                rf"{_RULES}{_NOT_MEDICAL}",
                rf"\b(?:ignore|disregard|forget|bypass|override)\s+{_PRIOR}{_RULES}\b{_NOT_MEDICAL}",
                r"\bforget\s+(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+told|above|"
                r"before|you\s+know)",
                rf"\b(?:do\s+not|don'?t)\s+follow\s+{_PRIOR}(?:previous|prior|above|system)?\s*"
                rf"{_RULES}",
                r"\bnew\s+(?:instructions?|rules|system\s+prompt)\s*:",
                r"\byou\s+(?:are|will\s+be)\s+no\s+longer\s+(?:bound|restricted|limited)",
                r"\byour\s+(?:new|real|true)\s+(?:instructions?|purpose|task|role)\s+(?:is|are)\b",
            ),
        ),
        (
            "reveal_prompt",
            1.0,
            _rx(
                r"\b(?:reveal|print|show|repeat|output|display|leak|tell\s+me|give\s+me|what\s+"
                r"(?:is|are)|write\s+out|dump)\s+(?:me\s+)?(?:your|the)\s+(?:full\s+|exact\s+|"
                r"original\s+|hidden\s+|secret\s+|initial\s+)*(?:system\s+)?(?:prompt|"
                r"instructions?|configuration|rules\s+you\s+were\s+given)",
                r"\b(?:repeat|print)\s+(?:the\s+)?(?:text|words|everything)\s+above\b",
                r"\bsystem\s+prompt\b",
            ),
        ),
        (
            "jailbreak_persona",
            1.0,
            _rx(
                r"\b(?:DAN|STAN|DUDE|AIM|BetterDAN)\b(?:\s+mode|\s*,|\s+which|\s+stands)",
                r"\bdo\s+anything\s+now\b",
                r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|evil|"
                r"sudo|admin|debug|maintenance)\s+mode\b",
                r"\bjailbr(?:eak|oken)\b",
                r"\b(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|roleplay\s+as|"
                r"role-play\s+as|become)\s+(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|"
                r"evil|rogue|amoral|unethical|unaligned|lawless)\b",
                r"\b(?:without|with\s+no|free\s+(?:of|from))\s+(?:any\s+)?(?:ethical|moral|"
                r"content|safety)\s+(?:restrictions|limits|guidelines|filters|constraints)",
                r"\bopposite\s+mode\b|\banti-?gpt\b",
            ),
        ),
        (
            "template_tokens",
            1.0,
            _rx(
                r"<\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|?>",
                r"\[/?INST\]|<</?SYS>>|</?s>\s*\[",
                r"^\s*(?:#{2,}\s*)?(?:system|assistant)\s*:",
                r"\n\s*(?:#{2,}\s*)?(?:system|assistant)\s*:",
            ),
        ),
        (
            "weak_roleplay",
            0.5,
            _rx(
                r"\b(?:pretend|imagine|hypothetically|role-?play|let'?s\s+play\s+a\s+game|"
                r"stay\s+in\s+character|from\s+now\s+on)\b",
            ),
        ),
        (
            "weak_no_limits",
            0.5,
            _rx(
                r"\b(?:no|without|remove|disable|turn\s+off|bypass|ignore)\s+(?:any\s+|all\s+|"
                r"your\s+)?(?:restrictions|limits|limitations|filters|censorship|guardrails|"
                r"safeguards|refusals?|warnings|disclaimers|rules)\b",
                r"\b(?:never|don'?t|do\s+not)\s+(?:refuse|say\s+(?:no|you\s+can'?t)|"
                r"add\s+(?:a\s+)?(?:disclaimer|warning))",
                r"\b(?:answer|respond|reply)\s+(?:as|like)\s+(?:an?\s+)?(?:ai|assistant|model)\s+"
                r"(?:that|who|with)\b",
            ),
        ),
        (
            "weak_exfiltration",
            0.5,
            _rx(
                r"\b(?:other\s+users?|everyone'?s|all\s+(?:the\s+)?(?:patients|users|records))\b"
                r".{0,40}\b(?:data|records|conversations|messages|emails|names|details)\b",
                r"\b(?:api\s+key|password|credentials|secret\s+key|database)\b",
            ),
        ),
    )
    for p in pats
]

# ---- scope ----------------------------------------------------------------------------------
# A question is out of scope only when it is clearly about something else and names nothing
# medical or legal: rare disease names are in no list, so absence of domain words alone is
# never a reason to refuse.
DOMAIN_WORDS = re.compile(
    r"\b(?:health|medic\w*|doctor|nurse|hospital|clinic|patient|symptom\w*|sign(?:s)?\s+of|"
    r"diagnos\w*|treat\w*|therap\w*|cure|surgery|surgical|disease\w*|disorder\w*|syndrome\w*|"
    r"condition\w*|infection\w*|virus|viral|bacteri\w*|cancer\w*|tumou?r\w*|diabet\w*|"
    r"asthma|allerg\w*|pain\w*|ache\w*|fever|cough\w*|rash\w*|blood|heart|lung\w*|liver|"
    r"kidney\w*|brain|skin|bone\w*|pregnan\w*|birth|baby|vaccin\w*|drug\w*|dose\w*|dosage|"
    r"pill\w*|tablet\w*|prescri\w*|side\s+effects?|mg\b|genetic\w*|gene\w*|inherit\w*|"
    r"chronic|acute|injur\w*|wound\w*|mental|depress\w*|anxiety|sleep|diet\w*|nutrition\w*|"
    r"vitamin\w*|weight|eat(?:ing)?|exercise|smok\w*|alcohol|sick\w*|ill(?:ness)?|"
    r"law\w*|legal\w*|illegal|court\w*|judge|attorney\w*|lawyer\w*|contract\w*|agreement\w*|"
    r"clause\w*|sue\b|suing|lawsuit\w*|liab\w*|rights?\b|leas\w*|tenan\w*|landlord\w*|"
    r"employ\w*|fired|wage\w*|divorc\w*|custody|will\b|estate|inherit\w*|copyright\w*|"
    r"patent\w*|trademark\w*|licen[cs]\w*|indemn\w*|warrant\w*|terminat\w*|breach\w*|"
    r"insurance|privacy|gdpr|hipaa|consent|statute\w*|regulat\w*|polic(?:e|y|ies)|arrest\w*|"
    r"crime\w*|criminal|visa\w*|immigra\w*|tax\w*|debt\w*|fine[ds]?\b|penalt\w*|"
    r"obligat\w*|party|parties|governing|jurisdiction\w*|dispute\w*|arbitrat\w*|"
    r"confidential\w*|non-?compete|assign\w*|renew\w*|audit\w*|royalt\w*)",
    re.IGNORECASE,
)
OFF_TOPIC = re.compile(
    r"\b(?:recipe\w*|bake|baking|cook(?:ing)?\s+(?:a|the)|weather|forecast|football|soccer|"
    r"basketball|baseball|nba|nfl|world\s+cup|who\s+won|movie\w*|films?|tv\s+show|netflix|"
    r"song\w*|lyrics|poem\w*|haiku|write\s+(?:me\s+)?(?:a\s+)?(?:story|essay|joke)|joke\w*|"
    r"python|javascript|java\b|code\b|coding|program(?:ming)?|compile\w*|sql\b|html|css|"
    r"bitcoin|crypto\w*|stock\s+(?:price|market)|invest(?:ing)?\s+in|capital\s+of|"
    r"population\s+of|tallest|hotel\w*|flights?\b|vacation|itinerar\w*|video\s+games?|"
    r"minecraft|fortnite|fashion|outfit|hairstyle|car\s+(?:engine|repair)|oil\s+change|"
    r"garden\w*|translate|horoscope|astrolog\w*|zodiac|chess|puzzle|riddle|trivia|"
    r"math(?:s|ematics)?\s+(?:problem|homework)|solve\s+(?:for\s+)?x|\d+\s*[*x+/-]\s*\d+\s*=)",
    re.IGNORECASE,
)


class InputGuard:
    """Decides whether a question is answered, refused, redirected or treated as an emergency.

    Patterns first (fast, exact on the phrasings they were written for), then the semantic
    guard (``safety.intent``: what the message is for, from its meaning) when there is one.
    """

    def __init__(
        self,
        injection_threshold: float = 1.0,
        scope_check: bool = True,
        semantic: SemanticGuard | None = None,
        crisis_reply: str = EMERGENCY_MESSAGE,
    ) -> None:
        self.injection_threshold = injection_threshold
        self.scope_check = scope_check
        self.semantic = semantic
        self.crisis_reply = crisis_reply

    def emergencies(self, text: str) -> list[str]:
        return [
            kind
            for kind, patterns in EMERGENCY_PATTERNS.items()
            if any(p.search(text) for p in patterns)
        ]

    def injection_score(self, text: str) -> tuple[float, list[str]]:
        score, hits = 0.0, []
        for pattern, weight, name in INJECTION_PATTERNS:
            # Every pattern that matches counts: two weak signals make a strong one.
            if pattern.search(text):
                score += weight
                if name not in hits:
                    hits.append(name)
        # Text spaced or obfuscated to slip past patterns ("i g n o r e", leetspeak).
        squashed = re.sub(r"[\s._*-]+", "", text.lower()).translate(_LEET)
        if (
            re.search(r"ignore(?:all|any|your)?(?:previous|prior|above)instructions", squashed)
            and "override_instructions" not in hits
        ):
            score += 1.0
            hits.append("obfuscated_override")
        return score, hits

    def out_of_scope(self, text: str) -> bool:
        return bool(OFF_TOPIC.search(text)) and not DOMAIN_WORDS.search(text)

    def check(self, text: str) -> GuardVerdict:
        """Emergencies first (a person in danger is helped whatever else the text says)."""
        kinds = self.emergencies(text)
        if kinds:
            return self._emergency(tuple(f"emergency:{k}" for k in kinds))
        score, hits = self.injection_score(text)
        if score >= self.injection_threshold:
            return self._block(tuple(f"injection:{h}" for h in hits))
        if self.semantic is not None:
            verdict = self._semantic(text)
            if verdict is not None:
                return verdict
        if self.scope_check and self.out_of_scope(text):
            return GuardVerdict(False, "out_of_scope", SCOPE_MESSAGE, "out_of_scope", ("scope",))
        return GuardVerdict(True)

    def _semantic(self, text: str) -> GuardVerdict | None:
        assert self.semantic is not None
        seen = self.semantic.assess(text)
        hit = (f"semantic:{seen.intent}:{seen.view}",)
        if seen.action == "emergency":
            return self._emergency(hit)
        if seen.action == "block":
            return self._block(hit)
        if seen.action == "out_of_scope" and self.scope_check:
            return GuardVerdict(False, "out_of_scope", SCOPE_MESSAGE, "out_of_scope", hit)
        return None

    def instructions(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """Which texts speak to the assistant (injection patterns, or the semantic model's
        clear injection): a boolean mask. ``vectors`` are the texts' embeddings when the
        caller has them (evidence selection does), so nothing is embedded twice."""
        mask = np.array(
            [self.injection_score(t)[0] >= self.injection_threshold for t in texts], dtype=bool
        )
        if self.semantic is not None and len(texts):
            mask |= self.semantic.instructions(texts, vectors)
        return mask

    def _emergency(self, hits: tuple[str, ...]) -> GuardVerdict:
        return GuardVerdict(False, "emergency", self.crisis_reply, "emergency", hits)

    @staticmethod
    def _block(hits: tuple[str, ...]) -> GuardVerdict:
        return GuardVerdict(False, "prompt_injection", BLOCK_MESSAGE, "block", hits)


_LEET = str.maketrans({"1": "i", "!": "i", "0": "o", "3": "e", "4": "a", "@": "a", "5": "s"})


# ---- output -----------------------------------------------------------------------------------
CITATION = re.compile(r"\[\d+\]")
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|g|ml|mL|cc|units?|iu|IU|tablets?|pills?|capsules?|"
    r"drops?|puffs?|teaspoons?|tsp|tablespoons?)\b(?:\s*(?:/|per|a|every|each)\s*\w+)?",
    re.IGNORECASE,
)
DIAGNOSIS = re.compile(
    r"\b(?:you\s+(?:have|probably\s+have|likely\s+have|most\s+likely\s+have|are\s+suffering\s+"
    r"from)|(?:this|it)\s+(?:is|sounds\s+like|looks\s+like)\s+(?:definitely|probably|likely|"
    r"clearly)|your\s+diagnosis\s+is|you\s+(?:are|have\s+been)\s+diagnosed)\b",
    re.IGNORECASE,
)
LEGAL_CONCLUSION = re.compile(
    r"\b(?:you\s+(?:will|would|should|are\s+going\s+to)\s+(?:win|lose|prevail)|"
    r"you\s+are\s+(?:(?:not\s+)?(?:liable|guilty|entitled|in\s+breach|obligated))|"
    r"(?:this|that|it)\s+(?:is|constitutes|amounts\s+to)\s+(?:clearly\s+|definitely\s+)?"
    r"(?:a\s+)?(?:breach|illegal|unlawful|fraud|negligence|enforceable|unenforceable|void)|"
    r"you\s+have\s+a\s+(?:strong|good|valid|winning)\s+case|you\s+(?:can|should)\s+sue)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class OutputReport:
    flags: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)


def uncited_claims(answer: str) -> dict[str, list[str]]:
    """Sentences with a dose, a diagnosis or a legal conclusion and no [n] citation."""
    found: dict[str, list[str]] = {}
    for sentence in SENTENCE.findall(answer):
        if CITATION.search(sentence):
            continue
        for flag, pattern in (
            (Flag.UNCITED_DOSE, DOSE),
            (Flag.UNCITED_DIAGNOSIS, DIAGNOSIS),
            (Flag.UNCITED_LEGAL_CONCLUSION, LEGAL_CONCLUSION),
        ):
            if pattern.search(sentence):
                found.setdefault(flag, []).append(sentence.strip())
    return found


def _normal(value: str) -> str:
    return re.sub(r"\W+", "", value).casefold()


def invented_personal_data(
    answer: str,
    known_texts: Iterable[str],
    detect: Callable[[str], Iterable[tuple[str, str]]],
) -> list[str]:
    """Entity types of personal data in ``answer`` found in none of ``known_texts``.

    ``detect`` gives (entity_type, value) pairs. Only values the question or the sources
    already hold may be repeated; anything else (a name, a phone number) came from the model.
    """
    known = _normal(" ".join(known_texts))
    invented = []
    for entity_type, value in detect(answer):
        if _normal(value) and _normal(value) not in known:
            invented.append(entity_type)
    return invented


def check_answer(
    answer: str,
    question: str,
    sources: Iterable[str],
    detect: Callable[[str], Iterable[tuple[str, str]]] | None,
) -> OutputReport:
    """Output flags: ``pii_in_answer`` and the ``uncited_*`` ones."""
    details = uncited_claims(answer)
    if detect is not None:
        invented = invented_personal_data(answer, [question, *sources], detect)
        if invented:
            details[Flag.PII_IN_ANSWER] = sorted(set(invented))
    return OutputReport(sorted(details), details)


def disclaimer_for(collections: Iterable[str | None], disclaimers: Mapping[str, str]) -> str:
    """The disclaimers of the collections an answer draws on, each once, in a stable order."""
    seen: list[str] = []
    for collection in collections:
        text = disclaimers.get(collection or "", "")
        if text and text not in seen:
            seen.append(text)
    return " ".join(seen)
