"""The evaluation gate: a candidate GGUF against the active one, in llama.cpp as served.

Both models are scored on the same items (the dataset's validation split plus a fixed
regression set drawn from the corpus QA, ``training/data/regression_qa.jsonl``):

- loss per answer token (and perplexity) of the reference answer, teacher-forced;
- ROUGE-L F1 of the greedy answer against the reference;
- citation precision: of the ``[n]`` markers the model writes, the share naming a source it
  was given (None when it writes none: SmolLM2-135M rarely does);
- refusal rate: answers that say they do not know;
- speed: generated tokens per second.

The gate promotes only when nothing regresses beyond the tolerances.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets import chat_messages
from training.examples import Example
from training.prompt_format import TURN_ENDS, template_for

logger = logging.getLogger(__name__)

REGRESSION_SET = Path(__file__).parent / "data" / "regression_qa.jsonl"
_REFUSAL = re.compile(
    r"\b(i do not know|i don't know|i'm not sure|cannot answer|can't answer|"
    r"do not (?:contain|provide|answer)|no information)\b",
    re.IGNORECASE,
)
_MARKER = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class EvalItem:
    instruction: str
    context: str
    reference: str

    @property
    def n_sources(self) -> int:
        return len(re.findall(r"^\[\d+\] ", self.context, re.MULTILINE))


@dataclass(frozen=True)
class Scores:
    """One model on one item set."""

    n: int
    loss: float
    perplexity: float
    rougeL: float
    citation_precision: float | None
    refusal_rate: float
    tokens_per_s: float
    # Of the items whose reference says the sources do not answer, the share the model
    # declined too (None without such items); refusal_rate counts only the other items.
    abstention_recall: float | None = None
    skipped: int = 0  # items whose prompt leaves no room to answer in the context

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Tolerances:
    """How much worse than the active model a candidate may be and still be promoted."""

    max_loss_increase: float = 0.02  # relative, on each item set
    max_rouge_drop: float = 0.02  # absolute
    max_citation_precision_drop: float = 0.05  # absolute
    max_refusal_increase: float = 0.1  # absolute
    max_speed_drop: float = 0.3  # relative; timings are noisy on shared cores


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: tuple[str, ...]  # why not, one line each (empty when promoted)
    comparison: dict[str, Any]


def items_from_examples(examples: Sequence[Example]) -> list[EvalItem]:
    return [EvalItem(e.instruction, e.input, e.output) for e in examples]


def regression_items(path: Path = REGRESSION_SET, limit: int | None = None) -> list[EvalItem]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            items.append(EvalItem(record["question"], record["context"], record["reference"]))
    return items[:limit] if limit else items


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased words (longest common subsequence)."""
    a, b = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def turn_end_tokens(llm: Any) -> dict[str, int]:
    """The markers that close an assistant turn which are one token in ``llm``'s vocabulary,
    with their token ids."""
    ends = {m: llm.tokenize(m.encode(), add_bos=False, special=True) for m in TURN_ENDS}
    return {marker: ids[0] for marker, ids in ends.items() if len(ids) == 1}


def served_chat_template(llm: Any, turn_ends: Collection[str]) -> str:
    """The chat template llama.cpp serves ``llm`` with: the GGUF's own, or for a base without
    one, the template training gives it (Gemma's turns when its vocabulary has them)."""
    return llm.metadata.get("tokenizer.chat_template") or template_for(
        {"<start_of_turn>"} if "<end_of_turn>" in turn_ends else set()
    )


class ServedModel:
    """A GGUF in llama.cpp with the prompt built from its own chat template, as served."""

    def __init__(self, path: Path, n_ctx: int = 1024, threads: int = 2) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from llama_cpp import Llama

        options: dict[str, Any] = dict(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads
        )
        # Two contexts on one file: keeping every position's logits (for the loss) makes
        # llama-cpp-python copy a vocabulary-wide row per step, which slows decoding ~40x.
        self.llm = Llama(**options, verbose=False)
        self.scorer = Llama(**options, logits_all=True, verbose=False)
        ends = turn_end_tokens(self.llm)
        template = served_chat_template(self.llm, ends)
        self._template = ImmutableSandboxedEnvironment().from_string(template)
        self.end_ids = {self.llm.token_eos(), *ends.values()}

    def prompt_tokens(self, instruction: str, context: str, system_prompt: str) -> list[int]:
        text = self._template.render(
            messages=chat_messages(instruction, context, system_prompt),
            add_generation_prompt=True,
            bos_token="",
            eos_token="",
        )
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def answer_loss(self, prompt: list[int], answer: str) -> tuple[float, int]:
        """Summed negative log-likelihood of ``answer`` (+ end of turn) after ``prompt``."""
        answer_ids = list(self.llm.tokenize(answer.encode(), add_bos=False, special=False))
        answer_ids.append(min(self.end_ids - {self.llm.token_eos()} or self.end_ids))
        room = self.llm.n_ctx() - len(prompt)
        answer_ids = answer_ids[: max(0, room)]
        if not answer_ids:
            return 0.0, 0
        self.scorer.reset()
        self.scorer.eval(prompt + answer_ids)
        logits = np.asarray(self.scorer.scores[len(prompt) - 1 : len(prompt) + len(answer_ids) - 1])
        logits = logits - logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        nll = -float(log_probs[np.arange(len(answer_ids)), answer_ids].sum())
        return nll, len(answer_ids)

    def fits(self, prompt: list[int], max_tokens: int) -> bool:
        return len(prompt) + max_tokens <= self.llm.n_ctx()

    def greedy(self, prompt: list[int], max_tokens: int) -> tuple[str, int, float]:
        """(answer, tokens generated, seconds) decoding greedily from ``prompt`` alone.

        Each call starts from ``prompt`` (the shared system-prompt prefix is reused from the
        previous call); the previous item's tokens are never part of the context.
        """
        out: list[int] = []
        started = time.perf_counter()
        room = self.llm.n_ctx() - len(prompt)
        if room <= 0:
            return "", 0, 0.0
        for token in self.llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0):
            if token in self.end_ids:
                break
            out.append(token)
            if len(out) >= min(max_tokens, room):
                break
        seconds = time.perf_counter() - started
        return self.llm.detokenize(out).decode("utf-8", errors="replace"), len(out), seconds

    def close(self) -> None:
        self.llm.close()
        self.scorer.close()


def score(
    model: ServedModel,
    items: Sequence[EvalItem],
    system_prompt: str,
    max_tokens: int = 48,
    progress: Callable[[int, int], None] | None = None,
) -> Scores:
    """Loss, ROUGE-L, citation precision, refusals and speed of one model on ``items``."""
    nll, n_tokens, rouge, refusals = 0.0, 0, 0.0, 0
    declining = declined = 0  # items whose reference declines, and the model's declines there
    cited, valid, generated, seconds = 0, 0, 0, 0.0
    skipped = 0
    for i, item in enumerate(items):
        prompt = model.prompt_tokens(item.instruction, item.context, system_prompt)
        if not model.fits(prompt, max_tokens):
            # Both models skip the same items (same template, same tokenizer).
            skipped += 1
            continue
        item_nll, item_tokens = model.answer_loss(prompt, item.reference)
        nll, n_tokens = nll + item_nll, n_tokens + item_tokens
        answer, n_out, took = model.greedy(prompt, max_tokens)
        generated, seconds = generated + n_out, seconds + took
        rouge += rouge_l(answer, item.reference)
        if _REFUSAL.search(item.reference):
            # A reference that declines: the model should decline too.
            declining += 1
            declined += bool(_REFUSAL.search(answer))
        else:
            refusals += bool(_REFUSAL.search(answer))
        markers = [int(m) for m in _MARKER.findall(answer)]
        cited += len(markers)
        valid += sum(1 <= m <= max(1, item.n_sources) for m in markers)
        if progress is not None:
            progress(i + 1, len(items))
    if skipped:
        logger.warning(
            "%d of %d items do not fit the context and were not scored", skipped, len(items)
        )
    n = max(1, len(items) - skipped)
    loss = nll / n_tokens if n_tokens else float("nan")
    return Scores(
        n=len(items) - skipped,
        loss=round(loss, 5),
        perplexity=round(math.exp(loss), 4) if math.isfinite(loss) else float("nan"),
        rougeL=round(rouge / n, 4),
        citation_precision=round(valid / cited, 4) if cited else None,
        refusal_rate=round(refusals / max(1, n - declining), 4),
        abstention_recall=round(declined / declining, 4) if declining else None,
        tokens_per_s=round(generated / seconds, 2) if seconds > 0 else 0.0,
        skipped=skipped,
    )


def score_model(
    path: Path,
    sets: Mapping[str, Sequence[EvalItem]],
    system_prompt: str,
    max_tokens: int = 48,
    threads: int = 2,
    n_ctx: int = 1024,
) -> dict[str, Scores]:
    """Every item set on the GGUF at ``path`` (loaded once)."""
    model = ServedModel(path, n_ctx=n_ctx, threads=threads)
    try:
        return {
            name: score(model, items, system_prompt, max_tokens)
            for name, items in sets.items()
            if items
        }
    finally:
        model.close()


def gate(
    candidate: dict[str, Scores], active: dict[str, Scores], tolerances: Tolerances
) -> GateDecision:
    """Promote only if no item set regresses beyond the tolerances."""
    reasons: list[str] = []
    for name, mine in candidate.items():
        theirs = active.get(name)
        if theirs is None:
            continue
        if mine.loss > theirs.loss * (1 + tolerances.max_loss_increase):
            reasons.append(f"{name}: loss {mine.loss:.4f} > active {theirs.loss:.4f}")
        if mine.rougeL < theirs.rougeL - tolerances.max_rouge_drop:
            reasons.append(f"{name}: ROUGE-L {mine.rougeL:.3f} < active {theirs.rougeL:.3f}")
        if (
            mine.citation_precision is not None
            and theirs.citation_precision is not None
            and mine.citation_precision
            < theirs.citation_precision - tolerances.max_citation_precision_drop
        ):
            reasons.append(
                f"{name}: citation precision {mine.citation_precision:.3f} < active "
                f"{theirs.citation_precision:.3f}"
            )
        if (
            mine.abstention_recall is not None
            and theirs.abstention_recall is not None
            and mine.abstention_recall < theirs.abstention_recall - tolerances.max_refusal_increase
        ):
            reasons.append(
                f"{name}: declines {mine.abstention_recall:.3f} of unanswerable items < active "
                f"{theirs.abstention_recall:.3f}"
            )
        if mine.refusal_rate > theirs.refusal_rate + tolerances.max_refusal_increase:
            reasons.append(
                f"{name}: refusal rate {mine.refusal_rate:.3f} > active {theirs.refusal_rate:.3f}"
            )
    speed = [(c.tokens_per_s, active[k].tokens_per_s) for k, c in candidate.items() if k in active]
    mine_speed = sum(c for c, _ in speed) / max(1, len(speed))
    their_speed = sum(a for _, a in speed) / max(1, len(speed))
    if their_speed and mine_speed < their_speed * (1 - tolerances.max_speed_drop):
        reasons.append(f"speed {mine_speed:.1f} tokens/s < active {their_speed:.1f}")
    comparison = {
        "candidate": {k: v.to_json() for k, v in candidate.items()},
        "active": {k: v.to_json() for k, v in active.items()},
        "tolerances": asdict(tolerances),
        "speed_ratio": round(mine_speed / their_speed, 4) if their_speed else None,
    }
    return GateDecision(not reasons, tuple(reasons), comparison)
