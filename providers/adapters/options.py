"""What a provider's `config` may hold, each key declared once with the check its value must
pass.

The keys every provider type reads (where and how to connect, how to price it) are
`COMMON_OPTIONS`; each adapter class declares the ones its wire format adds
(`ProviderAdapter.options`). `check_config` checks a config against the keys of its type
(through `providers.adapters.config_problems`, which the model's validation, so the admin
and the API, calls).
Nothing here does I/O or imports Django.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class Option:
    """One key of a provider's `config`. A value failing `check` is refused as
    "must be <expects>"; `required` keys must be present."""

    expects: str
    check: Callable[[Any], bool]
    required: bool = False


def _http_url(value: Any) -> bool:
    parsed = urlparse(value) if isinstance(value, str) else None
    return bool(parsed and parsed.scheme in ("http", "https") and parsed.netloc)


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


URL = Option("an http(s) URL", _http_url, required=True)
SECONDS = Option("a number of seconds > 0", _positive_number)
COUNT = Option("an integer >= 1", _positive_int)
STRING = Option("a string", _string)
BOOLEAN = Option("true or false", _boolean)
HEADERS = Option("an object mapping header name to string value", _string_map)
DEPLOYMENTS = Option("an object mapping model name to deployment name", _string_map)

COMMON_OPTIONS: Mapping[str, Option] = {
    "base_url": URL,
    "timeout": SECONDS,
    "connect_timeout": SECONDS,
    "max_connections": COUNT,
    "headers": HEADERS,
    "price_provider": Option(
        "a genai-prices provider id (e.g. together, groq) whose list prices apply", _string
    ),
}


def check_config(
    config: Mapping[str, Any], type_options: Mapping[str, Option], type_label: str
) -> list[str]:
    """What is wrong with `config` for a provider whose type adds `type_options` to the
    common ones, one message per problem, each naming its key
    (`config.timeout: must be a number of seconds > 0`)."""
    allowed = {**COMMON_OPTIONS, **type_options}
    problems = []
    for key, value in config.items():
        if key not in allowed:
            problems.append(f"config.{key}: unknown key (allowed: {', '.join(allowed)})")
        elif not allowed[key].check(value):
            problems.append(f"config.{key}: must be {allowed[key].expects}")
    for key, option in allowed.items():
        if option.required and key not in config:
            where = f" for {type_label}" if key in type_options else ""
            problems.append(f"config.{key}: required{where}")
    return problems
