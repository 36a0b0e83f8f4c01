"""The `conditions` half of a routing policy: a Mongo-style JSON filter over a request.

Validation and compilation are one walk over the JSON, so anything `validate_conditions`
accepts compiles, and anything it rejects never reaches the hot path. Compilation turns the
JSON into a tree of closures over a `Facts` object (the request's attributes, extracted once
per decision), so evaluating a policy does no parsing, no dictionary lookups by path string
and no regex compilation.

Runtime semantics that operators rely on (docs/policies.md):
- a missing attribute fails every operator except `$exists: false`, `$ne` and `$nin`;
- comparing values of different types is simply false, never an error;
- for list-valued attributes equality means "contains" and `$in` means "contains any".
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .types import CAPABILITIES, RequestContext, ValidationIssue

Predicate = Callable[["Facts"], bool]
Getter = Callable[["Facts"], Any]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

LOGICAL = ("$and", "$or", "$not")  # OPERATORS: the operator table, below

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = {name: i for i, name in enumerate(WEEKDAYS)}
_WEEKDAY_NAMES.update(
    {
        full: i
        for i, full in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    }
)


class Facts:
    """The request's attributes as conditions see them, computed once per decision."""

    __slots__ = (
        "api_key",
        "capabilities",
        "groups",
        "headers",
        "hour",
        "input_tokens",
        "max_tokens",
        "metadata",
        "model",
        "stream",
        "team",
        "user",
        "username",
        "weekday",
    )

    def __init__(
        self, ctx: RequestContext, tz: ZoneInfo, *, time: bool = True, headers: bool = True
    ):
        """`time=False` / `headers=False` skip work no policy in the snapshot needs."""
        caller = ctx.caller
        self.model = ctx.model
        self.input_tokens = ctx.input_tokens
        self.max_tokens = MISSING if ctx.max_tokens is None else ctx.max_tokens
        self.stream = ctx.stream
        caps = ctx.capabilities
        self.capabilities = caps | {"streaming"} if ctx.stream else caps
        self.metadata = ctx.metadata if ctx.metadata is not None else {}
        # Header names are case-insensitive on the wire; normalise once so lookups stay cheap.
        self.headers = (
            {str(k).lower(): v for k, v in ctx.headers.items()} if headers and ctx.headers else {}
        )
        # None means "not set": conditions see it as a missing attribute.
        user, username, api_key, team = caller.user_id, caller.username, caller.api_key, caller.team
        self.user = MISSING if user is None else user
        self.username = MISSING if username is None else username
        self.groups = caller.groups
        self.api_key = MISSING if api_key is None else api_key
        self.team = MISSING if team is None else team
        now = ctx.now
        if now is None or not time:
            self.hour = self.weekday = MISSING
        else:
            if now.tzinfo is None:
                now = now.replace(tzinfo=UTC)
            local = now.astimezone(tz)
            self.hour = local.hour
            self.weekday = local.weekday()


def attribute_paths(obj: Any) -> set[str]:
    """Every attribute path a (valid) condition object reads."""
    paths: set[str] = set()
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if key in ("$and", "$or") and isinstance(value, list | tuple):
                for item in value:
                    paths |= attribute_paths(item)
            elif key == "$not":
                paths |= attribute_paths(value)
            elif isinstance(key, str) and not key.startswith("$"):
                paths.add(key)
    return paths


def facts_for(ctx: RequestContext, time_zone: str = "UTC") -> Facts:
    return Facts(ctx, zone(time_zone))


def zone(name: str) -> ZoneInfo:
    """The zoneinfo for `name`; ZoneInfo caches instances, so this is cheap per request."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{name}'") from exc


# --- value semantics -------------------------------------------------------------------------


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _eq(a: Any, b: Any) -> bool:
    """Type-strict equality: True is not 1, "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_num(a):
        return _is_num(b) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    if a is None:
        return b is None
    return False


def _is_list(x: Any) -> bool:
    return isinstance(x, list | tuple | frozenset | set)


def _matches_eq(actual: Any, lit: Any) -> bool:
    if actual is MISSING:
        return False
    if _is_list(actual):
        return any(_eq(item, lit) for item in actual)
    return _eq(actual, lit)


def _matches_in(actual: Any, lits: tuple[Any, ...]) -> bool:
    if actual is MISSING:
        return False
    if _is_list(actual):
        return any(_eq(item, lit) for item in actual for lit in lits)
    return any(_eq(actual, lit) for lit in lits)


def _ordered(a: Any, b: Any) -> bool:
    return (_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))


_NUMERIC_KINDS = frozenset({"int", "hour", "weekday"})


def _numeric_compare(op: str, get: Getter, lit: float) -> Predicate:
    # Attributes that are always an int (or missing) need no generic type dispatch; the class
    # test keeps a stray non-number from raising instead of being false.
    if op == "$gt":

        def gt(f: Facts) -> bool:
            v = get(f)
            return (v.__class__ is int or v.__class__ is float) and v > lit

        return gt
    if op == "$gte":

        def gte(f: Facts) -> bool:
            v = get(f)
            return (v.__class__ is int or v.__class__ is float) and v >= lit

        return gte
    if op == "$lt":

        def lt(f: Facts) -> bool:
            v = get(f)
            return (v.__class__ is int or v.__class__ is float) and v < lit

        return lt

    def lte(f: Facts) -> bool:
        v = get(f)
        return (v.__class__ is int or v.__class__ is float) and v <= lit

    return lte


def _compare(op: str) -> Callable[[Any, Any], bool]:
    if op == "$gt":
        return lambda a, b: _ordered(a, b) and a > b
    if op == "$gte":
        return lambda a, b: _ordered(a, b) and a >= b
    if op == "$lt":
        return lambda a, b: _ordered(a, b) and a < b
    return lambda a, b: _ordered(a, b) and a <= b


# --- attributes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    """A request attribute conditions can test. `kind` says which literals make sense
    (checked when a policy is saved, so typos surface then); `key` is where Facts keeps it.
    A `prefix` attribute takes a name after the dot (metadata.<key>, header.<name>)."""

    path: str
    kind: str
    key: str
    description: str
    prefix: bool = False


ATTRIBUTES: dict[str, Attribute] = {
    a.path: a
    for a in (
        Attribute("model", "str", "model", "the model the client asked for"),
        Attribute("input_tokens", "int", "input_tokens", "the prompt's size in tokens"),
        Attribute("max_tokens", "int", "max_tokens", "the client's max_tokens (missing if unset)"),
        Attribute("stream", "bool", "stream", "whether the client asked for a stream"),
        Attribute("capabilities", "caps", "capabilities", "what the request needs"),
        Attribute("caller.user", "str", "user", "the caller's user id"),
        Attribute("caller.username", "str", "username", "the caller's username"),
        Attribute("caller.groups", "strlist", "groups", "the caller's groups"),
        Attribute("caller.api_key", "str", "api_key", "the API key's name (missing for JWT)"),
        Attribute("caller.team", "str", "team", "the caller's team"),
        Attribute("time.hour", "hour", "hour", "the hour, 0-23 (ROUTING_TIME_ZONE)"),
        Attribute("time.weekday", "weekday", "weekday", "the day, 0 (Mon) to 6 or mon..sun"),
        Attribute("metadata", "any", "", "the request's metadata: metadata.<key>", prefix=True),
        Attribute("header", "header", "", "an HTTP request header: header.<name>", prefix=True),
    )
}
_SIMPLE_ATTRIBUTES: dict[str, tuple[str, str]] = {
    a.path: (a.kind, a.key) for a in ATTRIBUTES.values() if not a.prefix
}
_ATTRIBUTE_NAMES = (*_SIMPLE_ATTRIBUTES, "metadata.<key>", "header.<name>")


def _metadata_getter(keys: tuple[str, ...]) -> Getter:
    if len(keys) == 1:
        (key,) = keys

        def get_one(f: Facts) -> Any:
            md = f.metadata
            if isinstance(md, Mapping):
                return md.get(key, MISSING)
            return MISSING

        return get_one

    def get_path(f: Facts) -> Any:
        value: Any = f.metadata
        for key in keys:
            if not isinstance(value, Mapping):
                return MISSING
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        return value

    return get_path


def _header_getter(name: str, numeric: bool) -> Getter:
    if not numeric:
        return lambda f: f.headers.get(name, MISSING)

    # Header values are always text; when a condition compares one with a number, read it as a
    # number so `{"header.x-priority": {"$gte": 5}}` does what it says.
    def get_number(f: Facts) -> Any:
        value = f.headers.get(name, MISSING)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    number = float(value)
                except ValueError:
                    return value
                return number if math.isfinite(number) else value
        return value

    return get_number


def _resolve(path: str) -> tuple[str, Any] | str:
    """(kind, key) for a known attribute path, else an error message."""
    if path in _SIMPLE_ATTRIBUTES:
        return _SIMPLE_ATTRIBUTES[path]
    head, _, rest = path.partition(".")
    if head == "metadata":
        keys = tuple(rest.split(".")) if rest else ()
        if not keys or any(not k for k in keys):
            return "unknown attribute 'metadata' (use metadata.<key>, e.g. metadata.tier)"
        return ("any", keys)
    if head in ("header", "headers"):
        if not rest:
            return "unknown attribute 'header' (use header.<name>, e.g. header.x-team)"
        if head == "headers":
            return f"unknown attribute '{path}' (did you mean 'header.{rest}'?)"
        return ("header", rest.lower())
    message = f"unknown attribute '{path}'"
    close = difflib.get_close_matches(path, _ATTRIBUTE_NAMES, n=1, cutoff=0.75)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    return message


def attribute(path: str) -> tuple[str, Getter] | None:
    """(kind, getter) for a valid attribute path, None for an unknown one.

    Kinds: str, strlist, caps, int, bool, hour, weekday, any (metadata), header.
    """
    resolved = _resolve(path)
    if isinstance(resolved, str):
        return None
    kind, key = resolved
    return kind, _Compiler.getter(kind, key, numeric=False)


# --- compilation (also validation) -----------------------------------------------------------


def _type_name(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if _is_num(x):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list | tuple):
        return "list"
    if isinstance(x, Mapping):
        return "object"
    return type(x).__name__


class _Compiler:
    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []

    def error(self, path: str, message: str) -> None:
        self.issues.append(ValidationIssue(path, message))

    # A condition object: the AND of its keys.
    def condition(self, obj: Any, path: str) -> Predicate:
        if not isinstance(obj, Mapping):
            self.error(path, f"must be a JSON object, got {_type_name(obj)}")
            return _never
        preds: list[Predicate] = []
        for key, value in obj.items():
            if not isinstance(key, str):
                self.error(path, f"keys must be strings, got {_type_name(key)}")
                continue
            sub = f"{path}.{key}"
            if key in ("$and", "$or"):
                preds.append(self.logical(key, value, sub))
            elif key == "$not":
                inner = self.condition(value, sub)
                preds.append(_cost(lambda f, inner=inner: not inner(f), cost_of(inner) + 1))
            elif key.startswith("$"):
                message = f"unknown logical operator '{key}' (use $and, $or or $not"
                if key in OPERATORS:
                    message += (
                        f"; {key} goes inside an attribute, e.g. {{'model': {{'{key}': ...}}}}"
                    )
                self.error(sub, message + ")")
            else:
                preds.append(self.attribute(key, value, sub))
        return _all(preds)

    def logical(self, op: str, value: Any, path: str) -> Predicate:
        if not isinstance(value, list | tuple) or not value:
            self.error(path, "must be a non-empty list of condition objects")
            return _never
        preds = [self.condition(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return _all(preds) if op == "$and" else _any(preds)

    def attribute(self, attr: str, value: Any, path: str) -> Predicate:
        resolved = _resolve(attr)
        if isinstance(resolved, str):
            self.error(path, resolved)
            return _never
        kind, key = resolved
        if isinstance(value, Mapping):
            if not value:
                self.error(path, "empty operator object (use a literal or e.g. {'$eq': ...})")
                return _never
            if not any(isinstance(k, str) and k.startswith("$") for k in value):
                self.error(
                    path,
                    "expected a literal or an operator object like {'$eq': ...}; "
                    "nested objects are written as dotted paths (metadata.a.b)",
                )
                return _never
            numeric = any(
                _is_num(v) or (isinstance(v, list) and any(_is_num(x) for x in v))
                for v in value.values()
            )
            getter = self.getter(kind, key, numeric)
            preds = [
                self.operator(kind, getter, op, operand, f"{path}.{op}")
                for op, operand in value.items()
            ]
            return _all(preds)
        getter = self.getter(kind, key, _is_num(value))
        return self.operator(kind, getter, "$eq", value, path)

    @staticmethod
    def getter(kind: str, key: Any, numeric: bool) -> Getter:
        if kind == "any":
            return _metadata_getter(key)
        if kind == "header":
            return _header_getter(key, numeric)
        return attrgetter(key)

    def operator(self, kind: str, get: Getter, op: Any, operand: Any, path: str) -> Predicate:
        spec = OPERATOR_TABLE.get(op) if isinstance(op, str) else None
        if spec is None:
            message = f"unknown operator '{op}'"
            close = difflib.get_close_matches(str(op), OPERATORS, n=1, cutoff=0.6)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            elif isinstance(op, str) and not op.startswith("$"):
                message += " (operators start with '$'; plain keys cannot be mixed with them)"
            self.error(path, message)
            return _never
        if spec.kinds is not None and kind not in spec.kinds:
            self.error(path, spec.kinds_error.format(op=op))
            return _never
        return spec.compile(self, kind, get, operand, path)

    @staticmethod
    def equals(get: Getter, lit: Any) -> Predicate:
        if isinstance(lit, str):
            # The common case (model, team, header value): skip the generic type dispatch.
            def eq_str(f: Facts) -> bool:
                value = get(f)
                if type(value) is str:
                    return value == lit
                return _matches_eq(value, lit)

            return _cost(eq_str, 1)
        return lambda f: _matches_eq(get(f), lit)

    @staticmethod
    def member(get: Getter, lits: tuple[Any, ...]) -> Predicate:
        if lits and all(isinstance(x, str) for x in lits):
            strings = frozenset(lits)

            def in_strings(f: Facts) -> bool:
                value = get(f)
                if type(value) is str:
                    return value in strings
                if _is_list(value):
                    return any(isinstance(v, str) and v in strings for v in value)
                return False

            return _cost(in_strings, 1)
        return lambda f: _matches_in(get(f), lits)

    def literal(self, kind: str, value: Any, path: str, ordered: bool = False) -> Any:
        """Check one literal against the attribute's kind; returns it normalised."""
        if isinstance(value, list | tuple):
            self.error(path, "a list is not a literal here; use {'$in': [...]} for 'one of'")
            return MISSING
        if isinstance(value, Mapping):
            self.error(path, "expected a literal, got an object")
            return MISSING
        if isinstance(value, float) and not math.isfinite(value):
            self.error(path, "numbers must be finite")
            return MISSING
        if value is None and kind != "any":
            self.error(path, "null never matches here; use {'$exists': false} for 'not set'")
            return MISSING
        if kind == "str" or kind == "strlist":
            if not isinstance(value, str):
                self.error(path, f"expected a string, got {_type_name(value)}")
        elif kind == "caps":
            if not isinstance(value, str):
                self.error(path, f"expected a string, got {_type_name(value)}")
            elif value not in CAPABILITIES:
                self.error(
                    path,
                    f"unknown capability '{value}' (one of {', '.join(sorted(CAPABILITIES))})",
                )
        elif kind == "int":
            if not _is_num(value):
                self.error(path, f"expected a number, got {_type_name(value)}")
        elif kind == "bool":
            if not isinstance(value, bool):
                self.error(path, f"expected true or false, got {_type_name(value)}")
        elif kind == "hour":
            if not _is_num(value) or (
                not ordered and (value != int(value) or not 0 <= value <= 23)
            ):
                self.error(path, "expected an hour, an integer between 0 and 23")
        elif kind == "weekday":
            return self.weekday(value, path, ordered)
        elif kind == "header":
            if not isinstance(value, str) and not _is_num(value):
                self.error(path, f"expected a string or a number, got {_type_name(value)}")
        elif ordered and not (_is_num(value) or isinstance(value, str)):
            self.error(path, f"expected a number or a string, got {_type_name(value)}")
        return value

    def weekday(self, value: Any, path: str, ordered: bool) -> Any:
        if isinstance(value, str):
            day = _WEEKDAY_NAMES.get(value.strip().lower())
            if day is None:
                self.error(path, f"unknown weekday '{value}' (use 0-6 or mon, tue, ... sun)")
                return MISSING
            return day
        if _is_num(value) and (ordered or (value == int(value) and 0 <= value <= 6)):
            return value
        self.error(path, "expected a weekday, 0 (Monday) to 6 (Sunday) or mon, tue, ... sun")
        return MISSING


def _cost(pred: Predicate, cost: int) -> Predicate:
    """Tag a predicate with a rough evaluation cost; AND evaluates cheap conjuncts first."""
    pred._cost = cost  # type: ignore[attr-defined]
    return pred


def cost_of(pred: Predicate) -> int:
    return getattr(pred, "_cost", 2)


def _never(_f: Facts) -> bool:
    return False


def _always(_f: Facts) -> bool:
    return True


def _all(preds: list[Predicate]) -> Predicate:
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    # Conditions have no side effects, so the order of an AND is free: cheap tests first.
    preds = sorted(preds, key=cost_of)
    total = sum(cost_of(p) for p in preds)
    if len(preds) == 2:
        a, b = preds
        return _cost(lambda f: a(f) and b(f), total)
    items = tuple(preds)

    # Explicit loops: about twice as fast as all()/any() over a generator on the hot path.
    def all_of(f: Facts) -> bool:
        for p in items:  # noqa: SIM110
            if not p(f):
                return False
        return True

    return _cost(all_of, total)


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    total = sum(cost_of(p) for p in preds)
    items = tuple(preds)

    def any_of(f: Facts) -> bool:
        for p in items:  # noqa: SIM110
            if p(f):
                return True
        return False

    return _cost(any_of, total)


# --- the operator table ----------------------------------------------------------------------
#
# One entry per comparison operator: how it compiles, which attributes it applies to, what
# its operand looks like (the JSON Schema of the admin editor and the API, policy_schema.py),
# and what the index may conclude from it (index.py). Adding an operator is one entry here
# plus a line in docs/policies.md.


def _compile_eq(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
    return c.equals(get, c.literal(kind, operand, path))


def _compile_ne(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
    equals = c.equals(get, c.literal(kind, operand, path))
    return lambda f: not equals(f)


def _literals(c: _Compiler, kind: str, operand: Any, path: str) -> tuple[Any, ...] | None:
    if not isinstance(operand, list | tuple):
        c.error(path, f"must be a list, got {_type_name(operand)}")
        return None
    return tuple(c.literal(kind, item, f"{path}[{i}]") for i, item in enumerate(operand))


def _compile_in(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
    lits = _literals(c, kind, operand, path)
    return _never if lits is None else c.member(get, lits)


def _compile_nin(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
    lits = _literals(c, kind, operand, path)
    if lits is None:
        return _never
    member = c.member(get, lits)
    return lambda f: not member(f)


def _compile_order(op: str) -> Callable[..., Predicate]:
    def compile_order(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
        lit = c.literal(kind, operand, path, ordered=True)
        if kind in _NUMERIC_KINDS and _is_num(lit):
            return _cost(_numeric_compare(op, get, lit), 1)
        cmp = _compare(op)

        def compare(f: Facts) -> bool:
            value = get(f)
            if value is MISSING:
                return False
            if _is_list(value):
                return any(cmp(v, lit) for v in value)
            return cmp(value, lit)

        return _cost(compare, 3)

    return compile_order


def _compile_regex(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
    if not isinstance(operand, str):
        c.error(path, f"must be a string pattern, got {_type_name(operand)}")
        return _never
    try:
        pattern = re.compile(operand)
    except re.error as exc:
        c.error(path, f"invalid regular expression: {exc}")
        return _never
    search = pattern.search

    def regex(f: Facts) -> bool:
        value = get(f)
        if isinstance(value, str):
            return search(value) is not None
        if _is_list(value):
            return any(isinstance(v, str) and search(v) is not None for v in value)
        return False

    return _cost(regex, 6)


def _compile_exists(c: _Compiler, kind: str, get: Getter, operand: Any, path: str) -> Predicate:
    if not isinstance(operand, bool):
        c.error(path, "must be true or false")
        return _never
    if operand:
        return lambda f: get(f) is not MISSING
    return lambda f: get(f) is MISSING


# Tests on the model name (always a present string) that the index runs once per catalogue
# model; None where the operand gives no exact test.
ModelTest = Callable[[str], bool]


def _model_eq(operand: Any) -> ModelTest | None:
    return (lambda m: m == operand) if isinstance(operand, str) else None


def _model_ne(operand: Any) -> ModelTest | None:
    return (lambda m: m != operand) if isinstance(operand, str) else None


def _model_in(operand: Any) -> ModelTest | None:
    if not isinstance(operand, list | tuple):
        return None
    names = frozenset(x for x in operand if isinstance(x, str))
    return lambda m: m in names


def _model_nin(operand: Any) -> ModelTest | None:
    if not isinstance(operand, list | tuple):
        return None
    names = frozenset(x for x in operand if isinstance(x, str))
    return lambda m: m not in names


def _model_regex(operand: Any) -> ModelTest | None:
    if not isinstance(operand, str):
        return None
    search = re.compile(operand).search
    return lambda m: search(m) is not None


def _model_exists(operand: Any) -> ModelTest | None:
    return (lambda m: False) if operand is False else None


def _model_order(op: str) -> Callable[[Any], ModelTest | None]:
    def model_order(operand: Any) -> ModelTest | None:
        if not isinstance(operand, str):
            return None
        if op == "$gt":
            return lambda m: m > operand
        if op == "$gte":
            return lambda m: m >= operand
        if op == "$lt":
            return lambda m: m < operand
        return lambda m: m <= operand

    return model_order


_TEXT_KINDS = frozenset({"str", "strlist", "caps", "any", "header"})
_ORDERED_KINDS = frozenset({"str", "int", "hour", "weekday", "any", "header"})


@dataclass(frozen=True, slots=True)
class Operator:
    """A comparison operator of the policy language, declared once.

    `operand`: the shape of its value, for the JSON Schema: `literal` (one value of the
    attribute's type), `literals` (a list of them), `ordered` (a number or text), `pattern`
    (a regular expression), `boolean`. `kinds`: the attribute kinds it applies to (None:
    all). For the index: `model_test` gives an exact test on the model name; `equality`
    means every match equals one of the operand's literals (a guard); `low`/`high` say it
    bounds a number from below/above, `inclusive` whether the bound itself matches.
    """

    name: str
    label: str
    compile: Callable[..., Predicate]
    operand: str
    missing_matches: bool = False
    kinds: frozenset[str] | None = None
    kinds_error: str = ""
    model_test: Callable[[Any], ModelTest | None] | None = None
    equality: bool = False
    low: bool = False
    high: bool = False
    inclusive: bool = False

    def literals(self, operand: Any) -> list[Any] | None:
        """The values every match equals one of, for an equality operator, else None."""
        if not self.equality:
            return None
        if self.operand == "literals":
            return list(operand) if isinstance(operand, list | tuple) else None
        return [operand]


_ORDER_ERROR = "{op} needs a number or text attribute"

OPERATOR_TABLE: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator(
            "$eq",
            "equals",
            _compile_eq,
            "literal",
            model_test=_model_eq,
            equality=True,
            low=True,
            high=True,
            inclusive=True,
        ),
        Operator("$ne", "does not equal", _compile_ne, "literal", True, model_test=_model_ne),
        Operator("$in", "is one of", _compile_in, "literals", model_test=_model_in, equality=True),
        Operator("$nin", "is none of", _compile_nin, "literals", True, model_test=_model_nin),
        Operator(
            "$gt",
            "greater than",
            _compile_order("$gt"),
            "ordered",
            kinds=_ORDERED_KINDS,
            kinds_error=_ORDER_ERROR,
            model_test=_model_order("$gt"),
            low=True,
        ),
        Operator(
            "$gte",
            "at least",
            _compile_order("$gte"),
            "ordered",
            kinds=_ORDERED_KINDS,
            kinds_error=_ORDER_ERROR,
            model_test=_model_order("$gte"),
            low=True,
            inclusive=True,
        ),
        Operator(
            "$lt",
            "less than",
            _compile_order("$lt"),
            "ordered",
            kinds=_ORDERED_KINDS,
            kinds_error=_ORDER_ERROR,
            model_test=_model_order("$lt"),
            high=True,
        ),
        Operator(
            "$lte",
            "at most",
            _compile_order("$lte"),
            "ordered",
            kinds=_ORDERED_KINDS,
            kinds_error=_ORDER_ERROR,
            model_test=_model_order("$lte"),
            high=True,
            inclusive=True,
        ),
        Operator(
            "$regex",
            "matches the pattern",
            _compile_regex,
            "pattern",
            kinds=_TEXT_KINDS,
            kinds_error="$regex needs a text attribute",
            model_test=_model_regex,
        ),
        Operator(
            "$exists",
            "is present (true) / missing (false)",
            _compile_exists,
            "boolean",
            model_test=_model_exists,
        ),
    )
}
OPERATORS = tuple(OPERATOR_TABLE)


# --- public API ------------------------------------------------------------------------------


def validate_conditions(obj: Any) -> list[ValidationIssue]:
    """Every problem in a policy's `conditions`, with paths like `conditions.$or[1].model.$in`."""
    compiler = _Compiler()
    compiler.condition(obj, "conditions")
    return compiler.issues


def compile_conditions(obj: Any) -> tuple[Predicate, list[ValidationIssue]]:
    """The predicate for `obj` and the issues found; the predicate is only usable if none."""
    compiler = _Compiler()
    predicate = compiler.condition(obj, "conditions")
    return predicate, compiler.issues
