"""Model ids each simulated wire format lists by default, and how to override them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

WIRE_FORMATS = ("openai", "anthropic", "gemini")

DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "openai": (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-3.5-turbo",
        "o4-mini",
        "gpt-5",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ),
    "anthropic": (
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-20250514",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
    ),
    "gemini": (
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.0-flash",
        "gemini-2.0-flash-lite",
        "gemini-embedding-001",
    ),
}


def resolve_models(models) -> dict[str, tuple[str, ...]]:
    """Normalise the `models` constructor argument.

    None keeps the defaults; a mapping {wire format: [ids]} overrides the formats it names;
    a plain sequence of ids is listed by every format.
    """
    if models is None:
        return dict(DEFAULT_MODELS)
    if isinstance(models, Mapping):
        unknown = set(models) - set(WIRE_FORMATS)
        if unknown:
            raise ValueError(f"unknown wire formats in models: {sorted(unknown)}")
        resolved = dict(DEFAULT_MODELS)
        for wire, ids in models.items():
            resolved[wire] = _ids(ids)
        return resolved
    if isinstance(models, Sequence) and not isinstance(models, str):
        ids = _ids(models)
        return dict.fromkeys(WIRE_FORMATS, ids)
    raise ValueError("models must be None, a sequence of ids or a mapping of format -> ids")


def _ids(ids) -> tuple[str, ...]:
    if isinstance(ids, str) or not all(isinstance(i, str) and i for i in ids):
        raise ValueError("model ids must be non-empty strings")
    return tuple(ids)
