import email.utils
import re
import time
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict

from providers.adapters import (
    ERROR_CLASSES,
    AuthenticationFailed,
    ContextTooLong,
    InvalidRequest,
    MalformedResponse,
    ProviderError,
    RateLimited,
    StreamInterrupted,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeout,
)
from providers.adapters.errors import error_for_status, parse_retry_after
from routing.engine import DEFAULT_FALLBACK_ON, ERROR_TYPES
from vocabulary import ErrorType


def test_every_class_has_its_type_and_retry_flag():
    expected = {
        RateLimited: ("rate_limited", True),
        UpstreamTimeout: ("timeout", True),
        UpstreamConnectionError: ("connection_error", True),
        UpstreamServerError: ("upstream_error", True),
        InvalidRequest: ("invalid_request", False),
        AuthenticationFailed: ("authentication", False),
        ContextTooLong: ("context_length_exceeded", False),
        MalformedResponse: ("malformed_response", True),
        StreamInterrupted: ("stream_interrupted", False),
    }
    for cls, (error_type, retryable) in expected.items():
        error = cls("x", provider_id="p")
        assert isinstance(error, ProviderError)
        assert (error.error_type, error.retryable) == (error_type, retryable)
    assert set(ErrorType) == {t for t, _ in expected.values()}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_the_adapters_errors_are_exactly_the_vocabulary_the_engine_speaks():
    # Every error class an adapter can raise (whatever module defines it) is one ErrorType,
    # each ErrorType has exactly one class, and the engine's list is that same vocabulary:
    # an error type a policy's fallback.on names can occur, and every one that occurs can
    # be named there.
    classes = list(_subclasses(ProviderError))
    assert len({cls.error_type for cls in classes}) == len(classes)
    assert {cls.error_type for cls in classes} == set(ErrorType) == ERROR_TYPES
    assert all(type(cls.error_type) is ErrorType for cls in classes)
    assert {cls.error_type: cls for cls in classes} == ERROR_CLASSES
    assert DEFAULT_FALLBACK_ON < ERROR_TYPES


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (404, InvalidRequest),
        (422, InvalidRequest),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (408, UpstreamTimeout),
        (409, UpstreamServerError),
        (429, RateLimited),
        (500, UpstreamServerError),
        (502, UpstreamServerError),
        (503, UpstreamServerError),
        (504, UpstreamTimeout),
        (529, UpstreamServerError),
    ],
)
def test_error_for_status(status, cls):
    error = error_for_status(status, "boom", provider_id="p")
    assert type(error) is cls
    assert error.status_code == status


def test_context_and_auth_hints_win_over_the_status():
    assert isinstance(
        error_for_status(400, "x", provider_id="p", context_exceeded=True), ContextTooLong
    )
    assert isinstance(
        error_for_status(400, "x", provider_id="p", auth_failed=True), AuthenticationFailed
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(CaseInsensitiveDict(headers)) == expected


def test_parse_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = parse_retry_after(CaseInsensitiveDict({"Retry-After": when}))
    assert 25 <= wait <= 31


def test_stream_interrupted_carries_usage():
    from providers.adapters import Usage

    error = StreamInterrupted("cut", usage=Usage(10, 3), provider_id="p")
    assert error.usage.total_tokens == 13
    assert error.to_dict()["type"] == "stream_interrupted"


def test_the_docs_error_table_lists_every_error_type():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "providers.md").read_text()
    table = docs.split("## Errors", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE)) == set(ErrorType)
