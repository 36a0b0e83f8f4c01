"""The policy index: model filters, guards, and that it never changes which policy matches."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.engine import Caller, compile_policy, compile_snapshot, validate_conditions
from routing.engine.conditions import facts_for
from routing.engine.index import (
    KeyGuard,
    RangeGuard,
    guard,
    guard_and_residual,
    index_key,
    model_filter,
)

from .builders import catalogue, request, snapshot

MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5"]


def accepted(conditions):
    f = model_filter(conditions)
    return [m for m in MODELS if f is None or f(m)]


def test_model_filter_resolves_model_conditions_against_known_models():
    assert model_filter({}) is None
    assert model_filter({"caller.team": "x"}) is None
    assert accepted({"model": "gpt-4o"}) == ["gpt-4o"]
    assert accepted({"model": {"$in": ["gpt-4o", "gpt-4.1"]}}) == ["gpt-4o", "gpt-4.1"]
    assert accepted({"model": {"$in": ["gpt-4o", "gpt-4.1"], "$eq": "gpt-4.1"}}) == ["gpt-4.1"]
    assert accepted({"model": {"$regex": "^gpt-4o"}}) == ["gpt-4o", "gpt-4o-mini"]
    assert accepted({"model": {"$ne": "gpt-4o"}}) == ["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5"]
    assert accepted({"model": {"$nin": ["gpt-4o", "gpt-4.1"]}}) == [
        "gpt-4o-mini",
        "claude-sonnet-4-5",
    ]
    assert accepted({"model": {"$gte": "gpt"}}) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]
    assert accepted({"model": {"$exists": False}}) == []
    assert accepted({"$and": [{"model": {"$regex": "gpt"}}, {"model": {"$ne": "gpt-4.1"}}]}) == [
        "gpt-4o",
        "gpt-4o-mini",
    ]
    assert accepted({"$or": [{"model": "gpt-4.1"}, {"model": {"$regex": "^claude"}}]}) == [
        "gpt-4.1",
        "claude-sonnet-4-5",
    ]
    # Conservative where it cannot be sure.
    assert model_filter({"$or": [{"model": "gpt-4.1"}, {"stream": True}]}) is None
    assert model_filter({"$not": {"model": "gpt-4o"}}) is None


def test_guards_pick_a_necessary_equality():
    assert guard({}) is None
    assert guard({"model": "gpt-4o"}) is None  # models have their own index
    assert guard({"metadata.tier": "gold", "stream": True}) == (
        KeyGuard("metadata.tier", frozenset({"gold"})),
    )
    # A user id is more selective than a group.
    assert guard({"caller.groups": "enterprise", "caller.user": "42"}) == (
        KeyGuard("caller.user", frozenset({"42"})),
    )
    assert guard({"caller.groups": {"$in": ["a", "b"]}}) == (
        KeyGuard("caller.groups", frozenset({"a", "b"})),
    )
    assert guard({"$or": [{"metadata.tier": "gold"}, {"caller.team": "ops"}]}) == (
        KeyGuard("metadata.tier", frozenset({"gold"})),
        KeyGuard("caller.team", frozenset({"ops"})),
    )
    assert guard({"$and": [{"stream": True}, {"header.x-team": "search"}]}) == (
        KeyGuard("header.x-team", frozenset({"search"})),
    )


def test_guards_are_not_taken_where_they_would_not_be_necessary():
    assert guard({"$not": {"metadata.tier": "gold"}}) is None
    assert guard({"$or": [{"metadata.tier": "gold"}, {"stream": True}]}) is None
    assert guard({"metadata.tier": {"$ne": "gold"}}) is None
    assert guard({"metadata.tier": {"$regex": "^g"}}) is None
    assert guard({"header.x-priority": 5}) is None  # headers compare numerically then
    assert guard({"time.hour": {"$exists": False}}) is None  # holds when the clock is missing
    assert guard({"time.hour": {"$ne": 3}}) is None


def test_number_and_time_guards():
    assert guard({"input_tokens": {"$gt": 1000, "$lte": 5000}}) == (
        RangeGuard("input_tokens", 1000, False, 5000, True),
    )
    assert guard({"input_tokens": {"$gte": 10, "$gt": 10}}) == (
        RangeGuard("input_tokens", 10, False, math.inf, False),
    )
    assert guard({"max_tokens": {"$in": [256, 512]}}) == (
        KeyGuard("max_tokens", frozenset({index_key(256), index_key(512)})),
    )
    assert guard({"time.hour": {"$gte": 9, "$lt": 12}}) == (
        KeyGuard("time.hour", frozenset(index_key(h) for h in (9, 10, 11))),
    )
    assert guard({"time.weekday": {"$in": ["sat", "sun"]}}) == (
        KeyGuard("time.weekday", frozenset({index_key(5), index_key(6)})),
    )
    # Any equality beats a token range, a range beats a time window.
    assert guard({"input_tokens": {"$gt": 5}, "metadata.x": "y"})[0].path == "metadata.x"
    assert guard({"input_tokens": {"$gt": 5}, "time.hour": 3})[0].path == "input_tokens"


def test_residual_drops_only_a_condition_the_guard_fully_covers():
    conditions = {"metadata.tier": "gold", "stream": True}
    assert guard_and_residual(conditions)[1] == {"stream": True}
    ranged = {"input_tokens": {"$gt": 1000, "$lte": 5000}, "caller.team": {"$regex": "^ops"}}
    assert guard_and_residual(ranged)[1] == {"caller.team": {"$regex": "^ops"}}
    # $in plus $ne on the same attribute: the guard only covers the $in.
    partial = {"caller.team": {"$in": ["a", "b"], "$ne": "a"}}
    assert guard_and_residual(partial) == (
        (KeyGuard("caller.team", frozenset({"a", "b"})),),
        None,
    )
    # Guards from inside $and/$or narrow the search but are evaluated again.
    assert guard_and_residual({"$and": [{"metadata.tier": "gold"}]})[1] is None
    assert guard_and_residual({"stream": True}) == (None, None)


def test_index_keys_follow_condition_equality():
    assert index_key(1) == index_key(1.0)
    assert index_key(True) != index_key(1)
    assert index_key("1") != index_key(1)
    assert index_key(None) == ("null",)
    assert index_key({"a": 1}) is None


def test_candidates_are_the_unguarded_plus_the_guard_hits_in_order():
    def p(name, priority, conditions):
        return compile_policy(name, name, priority, conditions, {})

    snap = snapshot(
        p("tier-gold", 1, {"metadata.tier": "gold"}),
        p("free-for-all", 2, {"stream": True}),
        p("ops-team", 3, {"caller.team": "ops"}),
        p("enterprise", 4, {"caller.groups": "enterprise"}),
        p("big", 5, {"input_tokens": {"$gt": 100_000}}),
    )
    index = snap.policy_index["gpt-4o"]
    assert [x.name for x in index.unguarded] == ["free-for-all"]
    ctx = request(
        metadata={"tier": "gold"},
        caller=Caller(team="research", groups=frozenset({"enterprise", "beta"})),
        input_tokens=200_000,
    )
    names = [x.name for x in index.candidates(facts_for(ctx))]
    assert names == ["tier-gold", "free-for-all", "enterprise", "big"]
    assert [x.name for x in index.candidates(facts_for(request()))] == ["free-for-all"]


def test_range_guards_respect_inclusive_bounds():
    def p(name, conditions):
        return compile_policy(name, name, 1, conditions, {})

    snap = snapshot(
        p("from-1000", {"input_tokens": {"$gte": 1000}}),
        p("above-1000", {"input_tokens": {"$gt": 1000}}),
        p("up-to-1000", {"input_tokens": {"$lte": 1000}}),
        p("below-1000", {"input_tokens": {"$lt": 1000}}),
        p("exactly-1000", {"input_tokens": 1000}),
    )
    index = snap.policy_index["gpt-4o"]

    def names(tokens):
        return {x.name for x in index.candidates(facts_for(request(input_tokens=tokens)))}

    assert names(999) == {"up-to-1000", "below-1000"}
    assert names(1000) == {"from-1000", "up-to-1000", "exactly-1000"}
    assert names(1001) == {"from-1000", "above-1000"}


# --- the index never changes the answer ------------------------------------------------------

STRINGS = ["a", "b", "gold", "7"]
NUMBERS = [0, 1, 7, 1000, 2.5]
MODEL_NAMES = ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]
models = st.sampled_from(MODEL_NAMES)
# Values each attribute's conditions and requests draw from, so equalities hit often.
POOLS = {
    "model": MODEL_NAMES,
    "input_tokens": [0, 7, 1000, 5000],
    "max_tokens": [1, 7, 1000],
    "stream": [True, False],
    "capabilities": ["tools", "vision", "streaming"],
    "metadata.tier": [*STRINGS, 7, True, None],
    "metadata.n": [*NUMBERS, "7", False],
    "metadata.tags": STRINGS,
    "metadata.org.region": STRINGS,
    "header.x-team": [*STRINGS, 7],
    "caller.groups": STRINGS,
    "caller.team": STRINGS,
    "caller.user": STRINGS,
    "time.hour": [0, 7, 14, 23],
    "time.weekday": [0, 3, 6, "mon", "sat"],
}
OPS = ["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists"]


@st.composite
def leaf(draw):
    """One attribute: a literal, or an operator object with one or two operators."""
    path = draw(st.sampled_from(sorted(POOLS)))
    values = st.sampled_from(POOLS[path])
    ops = draw(st.lists(st.sampled_from([None, None, "$in", *OPS]), min_size=1, max_size=2))
    if ops[0] is None:
        return {path: draw(values)}
    operators = {}
    for op in ops:
        if op is None:
            continue
        if op in ("$in", "$nin"):
            operators[op] = draw(st.lists(values, max_size=3))
        elif op == "$exists":
            operators[op] = draw(st.booleans())
        else:
            operators[op] = draw(values)
    return {path: operators}


conditions = st.recursive(
    st.lists(leaf(), max_size=3).map(lambda leaves: {k: v for d in leaves for k, v in d.items()}),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
        inner.map(lambda x: {"$not": x}),
        st.tuples(inner, leaf()).map(lambda t: {**t[0], **t[1]}),
    ),
    max_leaves=6,
)


def pool(path, *extra):
    return st.sampled_from([*POOLS[path], *extra])


requests = st.builds(
    lambda model, tokens, max_tokens, stream, meta, team, groups, user, hour, x_team: request(
        model,
        input_tokens=tokens,
        max_tokens=max_tokens,
        stream=stream,
        metadata=meta,
        headers={} if x_team is None else {"x-team": x_team},
        caller=Caller(user_id=user, team=team, groups=frozenset(groups)),
        now=None if hour is None else datetime(2026, 3, 2 + hour % 7, hour, tzinfo=UTC),
    ),
    models,
    pool("input_tokens"),
    pool("max_tokens", None),
    st.booleans(),
    st.fixed_dictionaries(
        {},
        optional={
            "tier": pool("metadata.tier"),
            "n": pool("metadata.n"),
            "tags": st.one_of(st.lists(pool("metadata.tags"), max_size=2), pool("metadata.tags")),
            "org": st.one_of(
                st.fixed_dictionaries({"region": pool("metadata.org.region")}), pool("metadata.n")
            ),
        },
    ),
    pool("caller.team", None),
    st.lists(pool("caller.groups"), max_size=2),
    pool("caller.user", None),
    st.sampled_from([None, 0, 7, 14, 23]),
    st.sampled_from([None, "a", "7", "gold", "07"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conditions, min_size=1, max_size=8), st.lists(requests, min_size=1, max_size=4))
def test_index_gives_the_same_first_match_as_a_linear_scan(condition_list, ctxs):
    valid = [c for c in condition_list if not validate_conditions(c)]
    policies = [compile_policy(str(i), f"p{i}", i % 3, c, {}) for i, c in enumerate(valid)]
    providers, offers = catalogue()
    snap = compile_snapshot(policies, providers, offers, 1)
    for ctx in ctxs:
        facts = facts_for(ctx)
        matching = [p.id for p in snap.policies if p.predicate(facts)]
        candidates = [p.id for p in snap.policy_index[ctx.model].candidates(facts)]
        # Every policy that matches is a candidate, and candidates keep snapshot order.
        assert set(matching) <= set(candidates)
        order = [p.id for p in snap.policies]
        assert candidates == sorted(candidates, key=order.index)
        # For a candidate, what is left after the guard decides exactly like the whole.
        for p in snap.policy_index[ctx.model].candidates(facts):
            assert p.residual(facts) == p.predicate(facts), (p.conditions, p.guard)
