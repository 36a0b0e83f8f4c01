"""Validation of stored price tiers (providers/pricing.py), and its agreement with the engine
that bills with them."""

import pytest

from providers import pricing
from routing.engine import pricing as engine_pricing


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"above_input_tokens": 1}, "price_tiers: must be a list"),
        (["x"], "price_tiers[0]: must be an object"),
        ([{"input": 1e-6}], "price_tiers[0].above_input_tokens: must be an integer >= 1"),
        ([{"above_input_tokens": 5}], "price_tiers[0]: must set at least one rate"),
        ([{"above_input_tokens": 5, "input": -1}], "price_tiers[0].input: must be a number >= 0"),
        ([{"above_input_tokens": 5, "inptu": 1e-6}], "price_tiers[0]: unknown key(s) inptu"),
        (
            [{"above_input_tokens": 5, "input": 1e-6}, {"above_input_tokens": 5, "input": 2e-6}],
            "price_tiers[1].above_input_tokens: must be larger than the previous tier's",
        ),
    ],
)
def test_malformed_tiers_are_named_by_path(tiers, message):
    problems = pricing.tier_problems(tiers)

    assert any(p.startswith(message) for p in problems), problems


def test_the_stored_form_and_the_engine_name_the_same_rates():
    assert pricing.RATES == engine_pricing.RATES
    assert pricing.TIER_THRESHOLD == engine_pricing.TIER_THRESHOLD
