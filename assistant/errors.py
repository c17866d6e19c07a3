"""The product's own exceptions; the web layer maps each to one HTTP answer."""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every error the product raises on purpose."""

    code = "error"
    http_status = 500


class InvalidInput(AssistantError):
    """The caller sent something unusable (empty, too long, malformed)."""

    code = "invalid_input"
    http_status = 400


class NotFound(AssistantError):
    code = "not_found"
    http_status = 404


class Forbidden(AssistantError):
    code = "forbidden"
    http_status = 403


class Conflict(AssistantError):
    code = "conflict"
    http_status = 409


class ModelUnavailable(AssistantError):
    """A model file is missing or could not be loaded."""

    code = "model_unavailable"
    http_status = 503


class IndexNotReady(AssistantError):
    """No search index has been built yet."""

    code = "index_not_ready"
    http_status = 503


class ContextOverflow(AssistantError):
    """The prompt does not fit in the model's context window."""

    code = "context_overflow"
    http_status = 413
