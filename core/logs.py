"""Logging filters wired in settings.LOGGING: the request id on every line, secrets masked.

Nothing in Auterity logs prompts, completions, request bodies or headers. Secrets can still
reach a log line by accident (an exception that quotes a URL with `?key=`, Django's "Not Found"
line carrying the request with its query string, an upstream error body that echoes an
Authorization header), so every line, traceback and extra fields included, passes through
`SecretRedactionFilter` before a handler writes it.
"""

from __future__ import annotations

import logging
import re

from core.request_context import current_request_id


class RequestIdFilter(logging.Filter):
    """Add `record.request_id`: the current request's id, or `default` outside a request."""

    def __init__(self, name: str = "", default: str | None = None):
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or self.default
        return True


_MASK = "[REDACTED]"
_SECRET_PATTERNS = (
    # Authorization: Bearer <JWT or API key>
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + _MASK),
    # Auterity API keys (accounts.models.KEY_PREFIX) and OpenAI/Anthropic-style keys.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), _MASK),
    # Google API keys, also sent as ?key=...
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), _MASK),
    # key=..., api_key: ..., "x-api-key": "...", password=..., token=..., secret=...
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_-]?key|key|password|passwd|secret|token|access_token)"
            r"""(["']?\s*[:=]\s*["']?)[^\s&"',;}]{4,}"""
        ),
        r"\1\2" + _MASK,
    ),
)


# Every pattern above needs one of these words: most lines have none, and one search is a
# quarter of the cost of the four substitutions (bench/README.md).
_MAY_HOLD_SECRET = re.compile(r"(?i)bearer|sk-|aiza|key|passw|secret|token")


def redact(text: str) -> str:
    if not _MAY_HOLD_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# A record's own attributes; anything else on it came from `extra=` (or Django's logging).
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SecretRedactionFilter(logging.Filter):
    """Mask credentials in the message, the traceback and the extra fields of every record.

    Extra fields matter: Django's `django.request` lines ("Not Found: /v1/x") carry the request
    itself, whose text is its full path with the query string (`?key=...`), and the JSON
    formatter writes every extra field."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for name, value in record.__dict__.items():
            if name in _RECORD_ATTRIBUTES or value is None or isinstance(value, int | float):
                continue
            text = value if isinstance(value, str) else repr(value)
            cleaned = redact(text)
            if cleaned != text:
                record.__dict__[name] = cleaned
        if record.exc_info:
            # Format the traceback once here so that every formatter prints the masked text.
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
