"""The billing arithmetic of routing/engine/pricing.py, on hand-computed examples."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.engine import PriceRules

M = 1e-6  # USD per token for $1 per 1M tokens

# Gemini 2.5 Pro as published: $1.25 / $10 per 1M, cached $0.125; above 200k input tokens
# $2.50 / $15, cached $0.25.
GEMINI_PRO = PriceRules.build(
    1.25 * M,
    10 * M,
    cached_input=0.125 * M,
    tiers=[
        {
            "above_input_tokens": 200_000,
            "input": 2.5 * M,
            "output": 15 * M,
            "cached_input": 0.25 * M,
        }
    ],
)


def test_flat_prices_bill_input_and_output():
    rules = PriceRules.build(2.5 * M, 10 * M)

    assert rules.cost(1_000, 500) == pytest.approx(1_000 * 2.5 * M + 500 * 10 * M)


def test_cached_and_cache_write_tokens_are_parts_of_the_prompt():
    # Claude Sonnet 4.5: input $3, cache read $0.30, cache write $3.75, output $15 per 1M.
    rules = PriceRules.build(3 * M, 15 * M, cached_input=0.3 * M, cache_write=3.75 * M)

    cost = rules.cost(30_732, 67, cached_tokens=30_433, cache_write_tokens=287)

    assert cost == pytest.approx(12 * 3 * M + 30_433 * 0.3 * M + 287 * 3.75 * M + 67 * 15 * M)


def test_rates_left_blank_fall_back_to_input_and_output():
    rules = PriceRules.build(2 * M, 8 * M)

    assert rules.cost(100, 50, cached_tokens=40, cache_write_tokens=10, reasoning_tokens=30) == (
        pytest.approx(100 * 2 * M + 50 * 8 * M)
    )


def test_reasoning_tokens_at_their_own_rate_when_one_is_set():
    rules = PriceRules.build(1 * M, 4 * M, reasoning=2 * M)

    assert rules.cost(0, 100, reasoning_tokens=60) == pytest.approx(40 * 4 * M + 60 * 2 * M)


def test_long_context_tier_is_a_cliff_on_the_prompt_size():
    at_threshold = GEMINI_PRO.cost(200_000, 1_000)
    above = GEMINI_PRO.cost(200_001, 1_000)

    assert at_threshold == pytest.approx(200_000 * 1.25 * M + 1_000 * 10 * M)
    # Every token of the call, not just those above 200k, moves to the tier's rates.
    assert above == pytest.approx(200_001 * 2.5 * M + 1_000 * 15 * M)


def test_a_tier_keeps_the_base_value_of_rates_it_leaves_out():
    rules = PriceRules.build(
        1 * M, 2 * M, cached_input=0.1 * M, tiers=[{"above_input_tokens": 10, "input": 3 * M}]
    )

    assert rules.rates_for(11).cached_input == pytest.approx(0.1 * M)
    assert rules.rates_for(11).output == pytest.approx(2 * M)
    assert rules.rates_for(11).input == pytest.approx(3 * M)


def test_several_tiers_pick_the_highest_threshold_passed():
    rules = PriceRules.build(
        1 * M,
        1 * M,
        tiers=[
            {"above_input_tokens": 100, "input": 2 * M},
            {"above_input_tokens": 1_000, "input": 3 * M},
        ],
    )

    assert [rules.rates_for(n).input / M for n in (100, 101, 1_000, 1_001)] == pytest.approx(
        [1, 2, 2, 3]
    )


def test_tiers_are_applied_in_threshold_order_whatever_their_stored_order():
    rules = PriceRules.build(
        1 * M,
        1 * M,
        tiers=[
            {"above_input_tokens": 1_000, "input": 3 * M},
            {"above_input_tokens": 100, "input": 2 * M},
        ],
    )

    assert rules.rates_for(500).input == pytest.approx(2 * M)


tokens = st.integers(min_value=0, max_value=2_000_000)


@given(prompt=tokens, completion=tokens, data=st.data())
def test_cost_is_the_sum_of_the_parts_at_the_rates_in_force(prompt, completion, data):
    cached = data.draw(st.integers(0, prompt))
    cache_write = data.draw(st.integers(0, prompt - cached))
    reasoning = data.draw(st.integers(0, completion))
    tier = prompt > 200_000
    input_rate = (2.5 if tier else 1.25) * M
    cached_rate = (0.25 if tier else 0.125) * M
    output_rate = (15 if tier else 10) * M

    cost = GEMINI_PRO.cost(prompt, completion, cached, cache_write, reasoning)

    expected = (
        (prompt - cached) * input_rate  # cache writes billed as input (no own rate)
        + cached * cached_rate
        + completion * output_rate  # reasoning billed as output
    )
    assert cost == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert cost >= 0
