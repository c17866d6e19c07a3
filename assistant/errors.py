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


class ModelNotFound(NotFound):
    """A request named a model version the registry does not have (OpenAI's model_not_found)."""

    code = "model_not_found"


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


class ServerBusy(AssistantError):
    """The model's request queue is full (or a request waited too long): try again later."""

    code = "server_busy"
    http_status = 503

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(AssistantError):
    """A service the request needs (the task queue) cannot be reached now."""

    code = "service_unavailable"
    http_status = 503


class GenerationTimeout(AssistantError):
    """A generation ran past its time limit and was stopped."""

    code = "generation_timeout"
    http_status = 504


class Unauthorized(AssistantError):
    """A missing, unknown or revoked API token."""

    code = "unauthorized"
    http_status = 401
