"""How ``assistant eval answers`` gets its answers: the product's own path for each case
(validation, the input guard, the pipeline, follow-ups answered turn by turn), and the
extractive baseline it is compared with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from assistant.asking.answer import GenerationOptions
from assistant.asking.chat import validate_question
from assistant.asking.conversation import PastTurn
from assistant.errors import AssistantError, ModelNotFound
from assistant.evaluation import answers as ev
from assistant.llm import registry
from assistant.storage import models
from retrieval.evidence import split_sentences

if TYPE_CHECKING:
    from assistant.services import Services


def options_for(services: Services, model_name: str | None) -> GenerationOptions:
    """Generation with the active model, or with the registered version ``model_name``."""
    if model_name is None:
        return GenerationOptions()
    _ = services.llm  # registers the shipped model, as serving would
    named = [v for v in registry.list_versions(services.db) if v.name == model_name]
    if not named:
        raise ModelNotFound(f"no model version named {model_name!r}")
    return GenerationOptions(version=named[0])


class ProductAnswers:
    """Answers evaluation cases as the chat would; a failed answer (e.g. a timeout) is
    counted in ``failures`` and scored as empty, and the run goes on."""

    def __init__(
        self, services: Services, collection: str | None, options: GenerationOptions
    ) -> None:
        self.services, self.collection, self.options = services, collection, options
        self.failures: list[str] = []
        self._documents: dict[str, str | None] = {}

    def answer(self, case: ev.AnswerCase) -> ev.AnswerResult:
        history: list[PastTurn] = []
        try:
            for earlier in case.history:  # the product answers the first turn itself
                first = self._ask(earlier, history)
                titles = () if isinstance(first, str) else tuple(c.title for c in first.citations)
                history.append(PastTurn(earlier, titles))
            reply = self._ask(case.question, history)
        except AssistantError as exc:
            self.failures.append(exc.code)
            return ev.AnswerResult("", (), False, None, 0, 0.0)
        if isinstance(reply, str):
            return ev.AnswerResult(reply, (), True, None, 0, 0.0, origin="none")
        return ev.result_of(reply, self._document_text)

    def baseline(self, case: ev.AnswerCase) -> ev.AnswerResult:
        """The 3 sentences of the top passage most similar to the question, cited."""
        hits = self.services.pipeline.retrieve(case.question, self.collection)
        if not hits:
            return ev.AnswerResult("", (), False, None, 0, 0.0, abstained=True, origin="none")
        top = hits[0].chunk
        spans = ev.baseline_sentences(
            case.question, top.text, self.services.embedder.encode, split_sentences
        )
        sentences = [top.text[a:b] for a, b in spans]
        cited = ev.CitedPassage(
            1,
            top.doc_id,
            top.start + spans[0][0],
            top.start + spans[-1][1],
            top.text[spans[0][0] : spans[-1][1]],
        )
        return ev.AnswerResult(
            " ".join(sentences),
            (cited,),
            False,
            None,
            0,
            0.0,
            origin="evidence",
            cited_by_sentence=tuple((s, (1,)) for s in sentences),
        )

    def _ask(self, question: str, history: list[PastTurn]) -> Any:
        """The same steps as the chat: validation, the input guard, then the pipeline; a
        guarded question's reply is its message (a str)."""
        services = self.services
        question, chosen = validate_question(services.settings, question, self.collection)
        guard = services.input_guard.check(question)
        if not guard.allowed:
            return guard.message
        return services.pipeline.answer(
            question, chosen, use_cache=False, history=history, options=self.options
        )

    def _document_text(self, doc_id: str) -> str | None:
        if doc_id not in self._documents:
            with self.services.db.session() as session:
                document = session.scalars(
                    select(models.Document).where(models.Document.doc_id == doc_id)
                ).first()
                self._documents[doc_id] = document.text if document is not None else None
        return self._documents[doc_id]
