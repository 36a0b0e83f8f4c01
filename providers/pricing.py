"""The stored form of a model's price rules, and its validation.

A ProviderModel keeps its prices as USD per token: `input_price`, `output_price`,
`cached_input_price`, `cache_write_price`, `reasoning_price` (blank: billed as input, input,
output) and `price_tiers`, a list of long-context tiers
`{"above_input_tokens": N, "input": ..., "output": ..., ...}` that list only the rates that
change above N input tokens. How a call is billed under them is the routing engine's
(routing/engine/pricing.py, docs/providers.md#pricing); this module checks what an operator
or the price sync stores, naming every problem by its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The rate names a tier may set, and its threshold key (routing/engine/pricing.py reads them).
RATES = ("input", "cached_input", "cache_write", "output", "reasoning")
TIER_THRESHOLD = "above_input_tokens"
PER_MILLION = 1_000_000


def _is_price(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def tier_problems(tiers: Any) -> list[str]:
    """What is wrong with a stored tier list, one message per problem naming its path
    (`price_tiers[1].input`); empty when it is valid."""
    if not isinstance(tiers, list):
        return ["price_tiers: must be a list of tier objects"]
    problems = []
    previous = 0
    for i, tier in enumerate(tiers):
        path = f"price_tiers[{i}]"
        if not isinstance(tier, Mapping):
            problems.append(f"{path}: must be an object")
            continue
        unknown = sorted(set(tier) - {TIER_THRESHOLD, *RATES})
        if unknown:
            problems.append(
                f"{path}: unknown key(s) {', '.join(unknown)} "
                f"(allowed: {TIER_THRESHOLD}, {', '.join(RATES)})"
            )
        above = tier.get(TIER_THRESHOLD)
        if not isinstance(above, int) or isinstance(above, bool) or above < 1:
            problems.append(f"{path}.{TIER_THRESHOLD}: must be an integer >= 1")
        elif above <= previous:
            problems.append(f"{path}.{TIER_THRESHOLD}: must be larger than the previous tier's")
        else:
            previous = above
        if not any(k in tier for k in RATES):
            problems.append(f"{path}: must set at least one rate ({', '.join(RATES)})")
        for key in RATES:
            if key in tier and not _is_price(tier[key]):
                problems.append(f"{path}.{key}: must be a number >= 0 (USD per token)")
    return problems
