"""What the REST API (`/api/...`, DRF) refuses at its edge, before any view, serializer or query
sees it: each a 400 JSON answer naming where the bad value was.

- NUL characters and lone surrogates, anywhere: in a query parameter's name or value, in a
  JSON body's keys and strings. PostgreSQL cannot store either in text or jsonb, so they used to
  reach the database and come back as a 500.
- JSON numbers a column cannot hold: infinities (`1e400` parses as one) and integers beyond
  64 bits; and JSON nested deeper than `MAX_JSON_DEPTH`.
- Date-times with a UTC offset outside -12:00..+14:00 (no place on Earth uses another; the
  database refuses offsets past 15:59) or whose UTC value falls outside years 1..9999:
  `BoundedDateTimeField` for serializers, `BoundedIsoDateTimeFilter` for filters.

The gateway's own endpoints (OpenAI-shaped, gateway/) check their input themselves.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django.http import JsonResponse
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

MAX_JSON_DEPTH = 64
_INT64 = 2**63 - 1
_MAX_OFFSET = timedelta(hours=14)
_MIN_OFFSET = -timedelta(hours=12)


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def json_problem(value, path: str = "$", depth: int = 0) -> str | None:
    """The first value in parsed JSON the API refuses, as "<path>: <why>", or None."""
    if depth > MAX_JSON_DEPTH:
        return f"{path}: nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        why = text_problem(value)
        return f"{path}: {why}" if why else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"{path}: integer out of range" if abs(value) > _INT64 else None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: number out of range"
    if isinstance(value, dict):
        for key, item in value.items():
            why = text_problem(key)
            if why:
                return f"{path}: a key {why}"
            found = json_problem(item, f"{path}.{key}", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = json_problem(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing what the database cannot store (module docstring)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH}") from exc
        problem = json_problem(data)
        if problem:
            raise ParseError(f"Invalid JSON value at {problem}.")
        return data


def _form_problem(data) -> str | None:
    for name, values in data.lists():
        for text in (name, *values):
            if isinstance(text, str):
                why = text_problem(text)
                if why:
                    return f"{name}: {why}"
    return None


class StrictFormParser(FormParser):
    """DRF's form parser (the browsable API), refusing NUL characters like the JSON one."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problem = _form_problem(data)
        if problem:
            raise ParseError(f"Invalid form value at {problem}.")
        return data


class StrictMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        problem = _form_problem(parsed.data)
        if problem:
            raise ParseError(f"Invalid form value at {problem}.")
        return parsed


class QueryStringCheckMiddleware:
    """400 JSON for a REST API request whose query string holds a NUL character or a lone
    surrogate (in MIDDLEWARE, so Django's paths only)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and request.GET:
            for name, values in request.GET.lists():
                for text in (name, *values):
                    why = text_problem(text)
                    if why:
                        return JsonResponse(
                            {name or "query": [f"The query parameter {why}."]}, status=400
                        )
        return self.get_response(request)


def datetime_problem(value: datetime) -> str | None:
    offset = value.utcoffset()
    if offset is not None and not _MIN_OFFSET <= offset <= _MAX_OFFSET:
        return "Its UTC offset is out of range (-12:00 to +14:00)."
    if offset is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            return "It is out of range once converted to UTC."
    return None


class BoundedDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, refusing offsets and instants the database cannot take."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            if text_problem(value):
                self.fail("invalid", format="ISO 8601")
            try:
                given = parse_datetime(value.strip())
            except ValueError:
                given = None
            # Checked as given: DRF converts it to UTC, losing the offset.
            problem = datetime_problem(given) if given is not None else None
            if problem:
                raise serializers.ValidationError(problem)
        parsed = super().to_internal_value(value)
        problem = datetime_problem(parsed)
        if problem:
            raise serializers.ValidationError(problem)
        return parsed


class _BoundedIsoDateTimeFormField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is not None:
            problem = datetime_problem(parsed)
            if problem:
                raise forms.ValidationError(problem, code="invalid")
        return parsed


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _BoundedIsoDateTimeFormField
