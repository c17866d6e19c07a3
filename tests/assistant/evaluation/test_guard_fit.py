"""The shipped semantic-guard model matches what `assistant guard fit` would fit today."""

from __future__ import annotations

from assistant.evaluation.guard_fit import files_digest
from safety.intent import INTENT_MODEL, IntentModel


def test_the_shipped_model_was_fitted_on_the_current_exemplars() -> None:
    model = IntentModel.load(INTENT_MODEL)
    assert model.provenance["files_digest"] == files_digest(), (
        "the exemplars changed: run `assistant guard fit` to refit safety/data/intent_model.json"
    )
    assert model.provenance["cross_validated_false_block_rate"] <= 0.01
