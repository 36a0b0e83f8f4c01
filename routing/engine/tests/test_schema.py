"""The policy language's JSON Schema against the engine that defines the language.

The schema is generated from the engine's tables; these tests hold the two to each other on
random policies: the schema never refuses what the engine accepts, and where the schema accepts
something the engine refuses, it is one of the few checks only the engine makes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from routing.engine import validate_actions, validate_conditions
from routing.engine.actions import STRATEGIES
from routing.engine.conditions import ATTRIBUTES, OPERATOR_TABLE
from routing.engine.schema import actions_schema, conditions_schema
from routing.engine.types import CAPABILITIES, ERROR_TYPES

CONDITIONS = Draft202012Validator(
    conditions_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
)
ACTIONS = Draft202012Validator(actions_schema())


def schema_ok(validator, value) -> bool:
    return next(validator.iter_errors(value), None) is None


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 30),
    st.sampled_from([0.5, 9.5, 1e6]),
    st.sampled_from(["gpt-4o", "mon", "Sun ", "funday", "vision", "tools", "x", "", "[a-", "^g"]),
    st.sampled_from(sorted(CAPABILITIES)),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.just("k"), inner, max_size=1),
    max_leaves=4,
)
attribute_names = st.sampled_from(
    [
        *(a.path for a in ATTRIBUTES.values() if not a.prefix),
        "metadata.tier",
        "metadata.org.region",
        "header.x-team",
        "metadata",
        "metadata..x",
        "headers.x",
        "modle",
    ]
)
operator_names = st.sampled_from([*OPERATOR_TABLE, "$eq", "$in", "$gt", "$foo", "eq"])
operator_objects = st.dictionaries(operator_names, values, max_size=3)
attribute_values = values | operator_objects


def conditions_of(children):
    attributes = st.dictionaries(attribute_names, attribute_values, max_size=3)
    logical = st.fixed_dictionaries(
        {},
        optional={
            "$and": st.lists(children, max_size=2),
            "$or": st.lists(children, max_size=2),
            "$not": children,
        },
    )
    return st.builds(lambda a, b: {**a, **b}, attributes, logical)


# Mostly well-typed values too, so that many generated policies are valid.
literal_of_kind = {
    "str": st.sampled_from(["gpt-4o", "acme", "x"]),
    "strlist": st.sampled_from(["enterprise", "beta"]),
    "caps": st.sampled_from([*sorted(CAPABILITIES), "telepathy"]),
    "int": st.integers(0, 200_000) | st.just(0.5),
    "bool": st.booleans(),
    "hour": st.integers(-1, 24),
    "weekday": st.integers(-1, 7) | st.sampled_from(["mon", "SUN", " friday", "funday"]),
    "any": st.none() | st.booleans() | st.integers(0, 9) | st.sampled_from(["gold", "eu"]),
    "header": st.integers(0, 9) | st.sampled_from(["7", "acme"]),
}


@st.composite
def typed_condition(draw):
    attribute = draw(st.sampled_from(list(ATTRIBUTES.values())))
    path = attribute.path + (".tier" if attribute.prefix else "")
    literal = literal_of_kind[attribute.kind]
    op = draw(st.sampled_from([None, *OPERATOR_TABLE]))
    if op is None:
        return {path: draw(literal)}
    operand = {
        "literal": literal,
        "literals": st.lists(literal, max_size=3),
        "ordered": literal,
        "pattern": st.sampled_from(["^gpt", "[a-", "acme"]),
        "boolean": st.booleans(),
    }[OPERATOR_TABLE[op].operand]
    return {path: {op: draw(operand)}}


leaves = st.dictionaries(attribute_names, attribute_values, max_size=3) | typed_condition()
conditions = st.recursive(leaves, conditions_of, max_leaves=6)


def _engine_only(issues) -> bool:
    """Checks only the engine makes: weekday names (matched without regard to case), and
    weekday numbers out of range in comparisons."""
    return all("weekday" in issue.message for issue in issues)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(conditions)
def test_the_conditions_schema_agrees_with_the_engine(value):
    issues = validate_conditions(value)
    if not issues:
        assert schema_ok(CONDITIONS, value), value
    elif schema_ok(CONDITIONS, value):
        assert _engine_only(issues), (value, issues)


positive_or_not = st.sampled_from([None, 0, -1, 0.5, 3, True, "1"])
action_values = st.fixed_dictionaries(
    {},
    optional={
        "targets": st.none()
        | st.lists(
            st.fixed_dictionaries(
                {
                    "provider": st.sampled_from(["openai", "*", "", " ", 3]),
                    "model": st.sampled_from(["gpt-4o", "m1", ""]),
                },
                optional={"weight": positive_or_not},
            ),
            max_size=3,
        ),
        "strategy": st.sampled_from([*STRATEGIES, "cheap", None]),
        "weights": st.none()
        | st.dictionaries(st.sampled_from(["cost", "latency", "errors"]), positive_or_not),
        "fallback": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.sampled_from([True, False, None, 1]),
                "on": st.lists(st.sampled_from([*sorted(ERROR_TYPES), "oops"]), max_size=2),
            },
        ),
        "retry": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "attempts": st.sampled_from([0, 1, 3, 5, 6, 2.5, None]),
                "backoff_ms": positive_or_not,
                "respect_retry_after": st.sampled_from([True, "yes"]),
            },
        ),
        "timeout_s": positive_or_not,
        "constraints": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "max_cost_usd": positive_or_not,
                "capabilities": st.lists(st.sampled_from(["vision", "telepathy"]), max_size=2),
                "min_context_window": st.sampled_from([None, 0, 1, 8192, 1.5]),
            },
        ),
        "strategie": st.just("cheapest"),
    },
)


def _actions_engine_only(issues) -> bool:
    """What only the engine checks: duplicate targets, all weights zero, a maximum backoff
    below the backoff."""
    engine_only = ("duplicate target", "at least one weight", "greater than or equal to backoff")
    return all(any(text in issue.message for text in engine_only) for issue in issues)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(action_values)
def test_the_actions_schema_agrees_with_the_engine(value):
    issues = validate_actions(value)
    if not issues:
        assert schema_ok(ACTIONS, value), value
    elif schema_ok(ACTIONS, value):
        assert _actions_engine_only(issues), (value, issues)


def test_every_operator_and_attribute_of_the_engine_is_in_the_schema():
    schema = conditions_schema()
    condition = schema["$defs"]["condition"]
    simple = {a.path for a in ATTRIBUTES.values() if not a.prefix}
    assert simple <= set(condition["properties"])
    assert {p["x-prefix"] for p in condition["patternProperties"].values()} == {
        "metadata.",
        "header.",
    }
    assert set(schema["$defs"]["operators_str"]["properties"]) == set(OPERATOR_TABLE)
    # comparisons and patterns only where the engine allows them
    assert "$regex" not in schema["$defs"]["operators_int"]["properties"]
    assert "$gt" not in schema["$defs"]["operators_bool"]["properties"]


def test_sensitive_references_are_admitted_in_the_stored_form():
    stored = {"metadata.customer": {"$in": {"$sensitive": "vips"}}}
    assert schema_ok(Draft202012Validator(conditions_schema(sensitive=True)), stored)
    assert not schema_ok(CONDITIONS, stored)
