"""The conditions language: every attribute and operator, missing values, type mismatches,
validation paths and messages."""

from datetime import UTC, datetime

import pytest

from routing.engine import Caller, validate_conditions
from routing.engine.conditions import compile_conditions, facts_for

from .builders import request


def matches(conditions, ctx=None, time_zone="UTC"):
    predicate, issues = compile_conditions(conditions)
    assert issues == [], issues
    return predicate(facts_for(ctx or request(), time_zone))


def messages(conditions):
    return [str(issue) for issue in validate_conditions(conditions)]


CALLER = Caller(
    user_id="42",
    username="ada",
    groups=frozenset({"enterprise", "beta-testers"}),
    api_key="ci-key",
    team="research",
)
CTX = request(
    "gpt-4o",
    input_tokens=1200,
    max_tokens=300,
    stream=True,
    capabilities={"tools"},
    metadata={"tier": "gold", "priority": 3, "flags": ["a", "b"], "org": {"region": "eu"}},
    headers={"X-Team": "search", "x-priority": "7"},
    caller=CALLER,
)


# --- attributes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({}, True),
        ({"model": "gpt-4o"}, True),
        ({"model": "gpt-4o-mini"}, False),
        ({"input_tokens": 1200}, True),
        ({"input_tokens": {"$gt": 1000, "$lte": 1200}}, True),
        ({"max_tokens": {"$lt": 300}}, False),
        ({"stream": True}, True),
        ({"stream": False}, False),
        ({"capabilities": "tools"}, True),
        # stream=True means the request needs streaming even if it did not list it.
        ({"capabilities": "streaming"}, True),
        ({"capabilities": "vision"}, False),
        ({"metadata.tier": "gold"}, True),
        ({"metadata.org.region": "eu"}, True),
        ({"metadata.org.region": "us"}, False),
        ({"metadata.flags": "b"}, True),
        ({"header.x-team": "search"}, True),
        ({"header.X-TEAM": "search"}, True),
        ({"caller.user": "42"}, True),
        ({"caller.username": "ada"}, True),
        ({"caller.groups": "enterprise"}, True),
        ({"caller.groups": "admins"}, False),
        ({"caller.api_key": "ci-key"}, True),
        ({"caller.team": "research"}, True),
        ({"time.hour": 14}, True),
        ({"time.weekday": 2}, True),
        ({"time.weekday": "wed"}, True),
        ({"time.weekday": "Wednesday"}, True),
        ({"time.weekday": {"$in": ["sat", "sun"]}}, False),
        ({"time.hour": {"$gte": 9, "$lt": 17}}, True),
    ],
)
def test_attributes(conditions, expected):
    assert matches(conditions, CTX) is expected


def test_time_attributes_use_the_configured_time_zone():
    # 2026-03-04 23:30 UTC is already Thursday 08:30 in Tokyo.
    ctx = request(now=datetime(2026, 3, 4, 23, 30, tzinfo=UTC))
    assert matches({"time.hour": 23, "time.weekday": "wed"}, ctx)
    assert matches({"time.hour": 8, "time.weekday": "thu"}, ctx, time_zone="Asia/Tokyo")
    assert not matches({"time.weekday": "wed"}, ctx, time_zone="Asia/Tokyo")


def test_naive_now_is_taken_as_utc_and_missing_now_makes_time_missing():
    naive = request(now=datetime(2026, 3, 4, 23, 30))
    assert matches({"time.hour": 23}, naive)
    no_clock = request(now=None)
    assert not matches({"time.hour": {"$gte": 0}}, no_clock)
    assert matches({"time.hour": {"$exists": False}}, no_clock)


# --- operators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"model": {"$eq": "gpt-4o"}}, True),
        ({"model": {"$ne": "gpt-4o"}}, False),
        ({"model": {"$ne": "claude"}}, True),
        ({"model": {"$in": ["gpt-4o", "gpt-4.1"]}}, True),
        ({"model": {"$nin": ["gpt-4o", "gpt-4.1"]}}, False),
        ({"model": {"$regex": "^gpt-4"}}, True),
        ({"model": {"$regex": "mini$"}}, False),
        ({"input_tokens": {"$gt": 1200}}, False),
        ({"input_tokens": {"$gte": 1200}}, True),
        ({"input_tokens": {"$lt": 1200}}, False),
        ({"input_tokens": {"$lte": 1200}}, True),
        ({"input_tokens": {"$gt": 1199.5}}, True),
        ({"model": {"$gt": "gpt-3"}}, True),
        ({"metadata.tier": {"$exists": True}}, True),
        ({"metadata.tier": {"$exists": False}}, False),
        ({"caller.groups": {"$in": ["admins", "beta-testers"]}}, True),
        ({"caller.groups": {"$nin": ["admins", "beta-testers"]}}, False),
        ({"caller.groups": {"$ne": "enterprise"}}, False),
        ({"caller.groups": {"$regex": "^beta"}}, True),
        ({"metadata.priority": {"$in": [1, 2, 3]}}, True),
        ({"metadata.flags": {"$in": ["x", "a"]}}, True),
        ({"metadata.flags": {"$nin": ["x", "a"]}}, False),
    ],
)
def test_operators(conditions, expected):
    assert matches(conditions, CTX) is expected


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"$and": [{"model": "gpt-4o"}, {"stream": True}]}, True),
        ({"$and": [{"model": "gpt-4o"}, {"stream": False}]}, False),
        ({"$or": [{"model": "x"}, {"caller.team": "research"}]}, True),
        ({"$or": [{"model": "x"}, {"caller.team": "y"}]}, False),
        ({"$not": {"model": "gpt-4o"}}, False),
        ({"$not": {"model": "x"}}, True),
        # Several keys in one object are an AND.
        ({"model": "gpt-4o", "caller.team": "research", "metadata.tier": "silver"}, False),
        (
            {
                "$or": [
                    {"$and": [{"caller.groups": "enterprise"}, {"input_tokens": {"$gt": 10_000}}]},
                    {"$not": {"metadata.tier": {"$in": ["free", "trial"]}}},
                ]
            },
            True,
        ),
    ],
)
def test_logical_operators(conditions, expected):
    assert matches(conditions, CTX) is expected


# --- missing attributes and type mismatches --------------------------------------------------

BARE = request("gpt-4o", max_tokens=None, caller=Caller())


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"metadata.tier": "gold"}, False),
        ({"metadata.tier": {"$eq": "gold"}}, False),
        ({"metadata.tier": {"$in": ["gold"]}}, False),
        ({"metadata.tier": {"$gt": 1}}, False),
        ({"metadata.tier": {"$regex": "."}}, False),
        ({"metadata.tier": {"$exists": True}}, False),
        ({"metadata.tier": {"$exists": False}}, True),
        ({"metadata.tier": {"$ne": "gold"}}, True),
        ({"metadata.tier": {"$nin": ["gold"]}}, True),
        ({"max_tokens": {"$lt": 100}}, False),
        ({"max_tokens": {"$exists": False}}, True),
        ({"caller.team": {"$ne": "research"}}, True),
        ({"caller.username": {"$regex": ".*"}}, False),
        ({"header.x-team": {"$exists": False}}, True),
        ({"caller.groups": "enterprise"}, False),
        ({"caller.groups": {"$nin": ["enterprise"]}}, True),
    ],
)
def test_missing_attributes(conditions, expected):
    assert matches(conditions, BARE) is expected


@pytest.mark.parametrize(
    "conditions",
    [
        {"metadata.tier": {"$gt": 5}},  # "gold" > 5
        {"metadata.priority": {"$gt": "a"}},  # 3 > "a"
        {"metadata.priority": "3"},  # 3 == "3"
        {"metadata.priority": {"$regex": "3"}},  # regex on a number
        {"metadata.org": "eu"},  # an object is not a string
        {"metadata.org": {"$gt": 1}},
        {"metadata.flags": {"$gt": 5}},  # no element is a number
    ],
)
def test_type_mismatches_are_false_not_errors(conditions):
    assert matches(conditions, CTX) is False


def test_booleans_and_numbers_are_not_interchangeable():
    ctx = request(metadata={"beta": True, "count": 1})
    assert matches({"metadata.beta": True}, ctx)
    assert not matches({"metadata.beta": 1}, ctx)
    assert not matches({"metadata.count": True}, ctx)
    assert matches({"metadata.count": 1.0}, ctx)


def test_metadata_null_equals_only_a_present_null():
    assert matches({"metadata.x": None}, request(metadata={"x": None}))
    assert not matches({"metadata.x": None}, request(metadata={}))
    assert matches({"metadata.x": {"$exists": True}}, request(metadata={"x": None}))


def test_metadata_path_through_a_non_object_is_missing():
    ctx = request(metadata={"org": "acme"})
    assert not matches({"metadata.org.region": "eu"}, ctx)
    assert matches({"metadata.org.region": {"$exists": False}}, ctx)


def test_header_numbers_compare_numerically():
    assert matches({"header.x-priority": {"$gte": 5}}, CTX)
    assert not matches({"header.x-priority": {"$gt": 7}}, CTX)
    assert matches({"header.x-priority": {"$in": [7, 8]}}, CTX)
    assert matches({"header.x-priority": "7"}, CTX)
    # A non-numeric header compared with a number is just false.
    assert not matches({"header.x-team": {"$gt": 1}}, CTX)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], "conditions: must be a JSON object, got list"),
        (
            {"modle": "gpt-4o"},
            "conditions.modle: unknown attribute 'modle' (did you mean 'model'?)",
        ),
        ({"metadata": {"tier": "gold"}}, "conditions.metadata: unknown attribute 'metadata'"),
        ({"header": "x"}, "conditions.header: unknown attribute 'header'"),
        ({"time.minute": 3}, "conditions.time.minute: unknown attribute 'time.minute'"),
        (
            {"$or": [{"model": "a"}, {"model": {"$in": "gpt-4o"}}]},
            "conditions.$or[1].model.$in: must be a list, got string",
        ),
        ({"$or": []}, "conditions.$or: must be a non-empty list of condition objects"),
        ({"$and": {"model": "a"}}, "conditions.$and: must be a non-empty list"),
        ({"$not": ["x"]}, "conditions.$not: must be a JSON object, got list"),
        ({"$nor": []}, "conditions.$nor: unknown logical operator '$nor'"),
        ({"$in": ["a"]}, "conditions.$in: unknown logical operator '$in'"),
        (
            {"model": {"$regx": "a"}},
            "conditions.model.$regx: unknown operator '$regx' (did you mean '$regex'?)",
        ),
        ({"model": {"$in": ["a"], "b": 1}}, "conditions.model.b: unknown operator 'b'"),
        ({"model": {}}, "conditions.model: empty operator object"),
        ({"model": {"name": "a"}}, "conditions.model: expected a literal or an operator object"),
        (
            {"model": ["a", "b"]},
            "conditions.model: a list is not a literal here; use {'$in': [...]}",
        ),
        ({"model": {"$regex": "("}}, "conditions.model.$regex: invalid regular expression"),
        ({"model": {"$regex": 5}}, "conditions.model.$regex: must be a string pattern"),
        ({"model": 4}, "conditions.model: expected a string, got number"),
        ({"model": None}, "conditions.model: null never matches here; use {'$exists': false}"),
        (
            {"input_tokens": {"$gt": "100"}},
            "conditions.input_tokens.$gt: expected a number, got string",
        ),
        (
            {"input_tokens": {"$regex": "1"}},
            "conditions.input_tokens.$regex: $regex needs a text attribute",
        ),
        ({"stream": "yes"}, "conditions.stream: expected true or false, got string"),
        ({"stream": {"$gt": False}}, "conditions.stream.$gt: $gt needs a number or text attribute"),
        ({"capabilities": "vison"}, "conditions.capabilities: unknown capability 'vison'"),
        (
            {"caller.groups": {"$in": ["a", 3]}},
            "conditions.caller.groups.$in[1]: expected a string",
        ),
        ({"time.hour": 24}, "conditions.time.hour: expected an hour, an integer between 0 and 23"),
        ({"time.hour": "9"}, "conditions.time.hour: expected an hour"),
        ({"time.weekday": "funday"}, "conditions.time.weekday: unknown weekday 'funday'"),
        ({"time.weekday": {"$in": [1, 9]}}, "conditions.time.weekday.$in[1]: expected a weekday"),
        (
            {"metadata.x": {"$exists": "yes"}},
            "conditions.metadata.x.$exists: must be true or false",
        ),
        ({"metadata.x": {"$gt": [1]}}, "conditions.metadata.x.$gt: a list is not a literal here"),
        ({"metadata.x": float("nan")}, "conditions.metadata.x: numbers must be finite"),
        (
            {"headers.x-team": "a"},
            "conditions.headers.x-team: unknown attribute 'headers.x-team' "
            "(did you mean 'header.x-team'?)",
        ),
    ],
)
def test_validation_paths_and_messages(conditions, expected):
    found = messages(conditions)
    assert any(m.startswith(expected) for m in found), found


def test_valid_conditions_have_no_issues():
    assert validate_conditions({}) == []
    assert (
        validate_conditions(
            {
                "$or": [
                    {"model": {"$in": ["gpt-4o", "gpt-4.1"]}},
                    {"metadata.tier": {"$exists": True}, "header.x-env": {"$regex": "^prod"}},
                ],
                "$not": {"time.weekday": {"$in": ["sat", "sun"]}},
                "time.hour": {"$gte": 8, "$lt": 20},
                "caller.groups": "enterprise",
                "metadata.priority": None,
            }
        )
        == []
    )


def test_validation_reports_every_issue_not_just_the_first():
    found = messages({"modle": "a", "stream": "no", "model": {"$in": 1}})
    assert len(found) == 3
