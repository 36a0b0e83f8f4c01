"""Snapshot compilation: policy order, active filter, catalogue lookups and their repairs."""

from routing.engine import ProviderInfo, compile_snapshot

from .builders import catalogue, offer, policy, snapshot


def test_policies_are_ordered_by_priority_then_name_then_id():
    snap = snapshot(
        policy({}, name="b", priority=5, id="3"),
        policy({}, name="a", priority=5, id="9"),
        policy({}, name="a", priority=5, id="1"),
        policy({}, name="z", priority=1, id="7"),
    )
    assert [p.id for p in snap.policies] == ["7", "1", "9", "3"]


def test_only_active_policies_are_kept():
    snap = snapshot(
        policy({}, name="on"),
        policy({}, name="draft", status="draft"),
        policy({}, name="off", status="inactive"),
    )
    assert [p.name for p in snap.policies] == ["on"]


def test_duplicate_policy_ids_keep_the_first():
    snap = snapshot(policy({}, name="x", id="1"), policy({}, name="y", id="1"))
    assert [p.name for p in snap.policies] == ["x"]
    assert "duplicate policy id '1' ignored" in snap.warnings


def test_offer_lookups():
    snap = snapshot()
    assert snap.default_offers["gpt-4o"].provider_id == "openai"
    assert [o.provider_id for o in snap.offers_by_model["gpt-4o"]] == ["openai", "azure"]
    assert snap.offers[("azure", "gpt-4o")].upstream_model == "gpt-4o-2024-08-06"
    assert snap.providers["google"].avg_response_time == 0.9


def test_model_without_a_default_uses_the_cheapest_and_warns():
    providers = [ProviderInfo("a", "openai"), ProviderInfo("b", "openai")]
    offers = [offer("a", "m", 2e-6, 2e-6), offer("b", "m", 1e-6, 1e-6)]
    snap = compile_snapshot([], providers, offers, 1)
    assert snap.default_offers["m"].provider_id == "b"
    assert any("no default provider" in w for w in snap.warnings)


def test_two_defaults_pick_one_deterministically_and_warn():
    providers = [ProviderInfo("a", "openai"), ProviderInfo("b", "openai")]
    offers = [offer("b", "m", 1e-6, 1e-6, default=True), offer("a", "m", 1e-6, 1e-6, default=True)]
    for ordering in (offers, offers[::-1]):
        snap = compile_snapshot([], providers, ordering, 1)
        assert snap.default_offers["m"].provider_id == "a"
        assert any("2 default providers" in w for w in snap.warnings)


def test_policies_are_indexed_by_the_models_they_can_match():
    only_4o = policy({}, {"model": {"$in": ["gpt-4o", "gpt-4.1"]}}, name="4o", priority=1)
    any_model = policy({}, {"caller.team": "x"}, name="any", priority=2)
    only_mini = policy({}, {"model": "gpt-4o-mini"}, name="mini", priority=3)
    snap = snapshot(only_4o, any_model, only_mini)
    assert [p.name for p in snap.policy_index["gpt-4o"].unguarded] == ["4o"]
    assert [p.name for p in snap.policy_index["gpt-4o-mini"].unguarded] == ["mini"]
    # `any` is filed under its guard, caller.team == "x", for every model.
    assert snap.policy_index["gpt-4o"].size == 2
    assert snap.policy_index["gpt-4o-mini"].size == 2


def test_wildcard_targets_expand_to_every_provider_in_offer_order_without_duplicates():
    p = policy(
        {
            "targets": [
                {"provider": "azure", "model": "gpt-4o"},
                {"provider": "*", "model": "gpt-4o"},
                {"provider": "*", "model": "no-such-model"},
                {"provider": "ghost", "model": "gpt-4o"},
            ]
        }
    )
    snap = snapshot(p)
    expanded = [(c.provider_id, c.model, c.offer is not None) for c in snap.candidates[p.id]]
    assert expanded == [
        ("azure", "gpt-4o", True),
        ("openai", "gpt-4o", True),
        ("*", "no-such-model", False),
        ("ghost", "gpt-4o", False),
    ]
    assert [c.index for c in snap.candidates[p.id]] == [0, 1, 2, 3]


def test_duplicate_offers_and_providers_are_ignored_with_a_warning():
    providers, offers = catalogue()
    snap = compile_snapshot([], [*providers, providers[0]], [*offers, offers[0]], "v2")
    assert snap.version == "v2"
    assert "duplicate provider 'openai' ignored" in snap.warnings
    assert "duplicate offer openai/gpt-4o ignored" in snap.warnings


def test_snapshot_knows_whether_time_and_headers_are_needed():
    plain = snapshot(policy({}, {"metadata.tier": "gold"}))
    assert (plain.uses_time, plain.uses_headers) == (False, False)
    timed = snapshot(policy({}, {"$or": [{"time.hour": 3}, {"$not": {"header.x-a": "b"}}]}))
    assert (timed.uses_time, timed.uses_headers) == (True, True)
