"""The error taxonomy every adapter maps upstream failures onto: one class per
`vocabulary.ErrorType`, the words routing policies' `fallback.on` and the engine speak.

The router decides what to do from `error_type` and `retryable` alone (retry the same
provider, fall back to the next one, or give up), so each adapter must translate its
provider's status codes and error bodies into exactly one of these classes. Messages carry
the upstream's own explanation (useful to operators) but never the API key.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from vocabulary import ErrorType

if TYPE_CHECKING:
    from .types import Usage


class ProviderError(Exception):
    """A call to an upstream provider failed.

    `status_code` is the upstream HTTP status (None when no response arrived),
    `retry_after` the seconds the upstream asked us to wait, `upstream_code` the provider's
    own error code (`context_length_exceeded`, `overloaded_error`, `RESOURCE_EXHAUSTED`...).
    """

    # The base class is raised as such only by the gateway, when no target could be tried at
    # all; every failure of an actual call is one of the subclasses (ERROR_CLASSES).
    error_type: str = "provider_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider_id: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        upstream_code: str | None = None,
        retryable: bool | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.provider_id = provider_id
        self.status_code = status_code
        self.retry_after = retry_after
        self.upstream_code = upstream_code
        if retryable is not None:
            # Per-instance override, e.g. a 429 that means "quota exhausted", not "slow down".
            self.retryable = retryable

    def __str__(self) -> str:
        where = f"[{self.provider_id}] " if self.provider_id else ""
        status = f" (HTTP {self.status_code})" if self.status_code else ""
        return f"{where}{self.error_type}{status}: {self.message}"

    def to_dict(self) -> dict:
        """A JSON-safe description for request logs and error responses."""
        return {
            "type": self.error_type,
            "message": self.message,
            "provider": self.provider_id,
            "status_code": self.status_code,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "upstream_code": self.upstream_code,
        }


class RateLimited(ProviderError):
    error_type = ErrorType.RATE_LIMITED
    retryable = True


class UpstreamTimeout(ProviderError):
    error_type = ErrorType.TIMEOUT
    retryable = True


class UpstreamConnectionError(ProviderError):
    error_type = ErrorType.CONNECTION_ERROR
    retryable = True


class UpstreamServerError(ProviderError):
    """5xx, and Anthropic's 529 `overloaded_error`."""

    error_type = ErrorType.UPSTREAM_ERROR
    retryable = True


class InvalidRequest(ProviderError):
    """The upstream (or the adapter, before calling it) rejected the request as malformed:
    400/404/422. Retrying the same request elsewhere is unlikely to help."""

    error_type = ErrorType.INVALID_REQUEST
    retryable = False


class AuthenticationFailed(ProviderError):
    error_type = ErrorType.AUTHENTICATION
    retryable = False


class ContextTooLong(ProviderError):
    """The prompt (plus max_tokens) does not fit the model's context window. Not retryable
    on the same model; the router may still pick a model with a larger window."""

    error_type = ErrorType.CONTEXT_LENGTH_EXCEEDED
    retryable = False


class MalformedResponse(ProviderError):
    error_type = ErrorType.MALFORMED_RESPONSE
    retryable = True


class StreamInterrupted(ProviderError):
    """The stream broke after it had started delivering chunks. The client has already seen
    part of the answer, so it cannot be transparently retried; `usage` is what was consumed
    up to the break (reported by the provider where it said so, else estimated)."""

    error_type = ErrorType.STREAM_INTERRUPTED
    retryable = False

    def __init__(self, message: str, *, usage: Usage | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.usage = usage


# The concrete classes, one per ErrorType (providers/adapters/tests/test_errors.py proves it).
ERROR_CLASSES: dict[ErrorType, type[ProviderError]] = {
    cls.error_type: cls
    for cls in (
        RateLimited,
        UpstreamTimeout,
        UpstreamConnectionError,
        UpstreamServerError,
        InvalidRequest,
        AuthenticationFailed,
        ContextTooLong,
        MalformedResponse,
        StreamInterrupted,
    )
}


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI, Azure) or `Retry-After` (seconds or an
    HTTP-date, RFC 9110). `headers` must be case-insensitive (requests' headers are)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_for_status(
    status: int,
    message: str,
    *,
    provider_id: str | None,
    retry_after: float | None = None,
    upstream_code: str | None = None,
    context_exceeded: bool = False,
    auth_failed: bool = False,
) -> ProviderError:
    """Pick the taxonomy class for an upstream HTTP error.

    Adapters parse their provider's error body first and pass what it says: whether it is a
    context-window error, whether a 400 really means a bad key (Gemini does that).
    408/409 are retryable like the official SDKs treat them; 504 is a timeout upstream.
    """
    kwargs = {
        "provider_id": provider_id,
        "status_code": status,
        "retry_after": retry_after,
        "upstream_code": upstream_code,
    }
    if context_exceeded:
        return ContextTooLong(message, **kwargs)
    if auth_failed or status in (401, 403):
        return AuthenticationFailed(message, **kwargs)
    if status == 429:
        return RateLimited(message, **kwargs)
    if status in (408, 504):
        return UpstreamTimeout(message, **kwargs)
    if status == 409 or status >= 500:
        return UpstreamServerError(message, **kwargs)
    if 400 <= status < 500:
        return InvalidRequest(message, **kwargs)
    return MalformedResponse(f"unexpected HTTP status {status}: {message}", **kwargs)


# How context-window errors read across providers and OpenAI-compatible servers (OpenAI,
# Azure, vLLM, Groq, Mistral, Together, Anthropic, Gemini). Used where a provider has no
# dedicated error code, or as a second check where it does.
_CONTEXT_OVERFLOW_RE = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long"
    r"|exceed(?:s|ed)? (?:the )?context limit|too large for model"
    r"|input token count .*exceeds the maximum|input is too long",
    re.IGNORECASE,
)


def mentions_context_overflow(message: str | None) -> bool:
    return bool(message) and bool(_CONTEXT_OVERFLOW_RE.search(message))
