"""Price rules of one model on one provider, and what a call costs under them.

Part of the pure engine: it compares expected costs with these rules for every target of every
request, and the gateway prices the request log's cost and baseline with the same function
(gateway.service.price), as does bench/replay_trace.py, so all of them always agree. The rules
arrive as plain data (routing/offers.py builds them from the catalogue rows, whose stored form
providers/pricing.py validates).

Token counts follow OpenAI's convention, which every adapter normalises to (docs/providers.md,
Pricing): `prompt_tokens` is every input token, including those read from the provider's
prompt cache (`cached_tokens`) and those written to it (`cache_write_tokens`);
`completion_tokens` is every output token, including the model's hidden thinking
(`reasoning_tokens`). Each part is billed at its own rate:

    (prompt - cached - cache_write) * input + cached * cached_input
    + cache_write * cache_write_rate
    + (completion - reasoning) * output + reasoning * reasoning_rate

A rate the provider does not set falls back: cached input and cache writes to the input rate,
reasoning to the output rate (how OpenAI, Anthropic and Google bill thinking today).

Long-context tiers are cliffs, as the providers publish them: when the prompt has more than
`above_input_tokens` tokens, every token of the call is billed at the tier's rates (Gemini 2.5
Pro above 200k input tokens, Claude Sonnet 4.5's long context). A tier lists only the rates
that change; the others keep their value below the threshold.

Prices are USD per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The rate names a tier may set, and its threshold key (the stored form, providers/pricing.py).
RATES = ("input", "cached_input", "cache_write", "output", "reasoning")
TIER_THRESHOLD = "above_input_tokens"


@dataclass(frozen=True, slots=True)
class Rates:
    """Every rate resolved to a number (fallbacks applied), for one tier."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    reasoning: float

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float:
        return (
            (prompt_tokens - cached_tokens - cache_write_tokens) * self.input
            + cached_tokens * self.cached_input
            + cache_write_tokens * self.cache_write
            + (completion_tokens - reasoning_tokens) * self.output
            + reasoning_tokens * self.reasoning
        )


@dataclass(frozen=True, slots=True)
class PriceRules:
    """A model's list prices: base rates and long-context tiers, ascending by threshold."""

    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()

    @classmethod
    def build(
        cls,
        input: float,
        output: float,
        cached_input: float | None = None,
        cache_write: float | None = None,
        reasoning: float | None = None,
        tiers: list[Mapping[str, Any]] | tuple[Mapping[str, Any], ...] = (),
    ) -> PriceRules:
        """Rules from the stored form: base rates (None = the fallback) and tier objects
        `{"above_input_tokens": N, "input": ..., ...}` (a missing rate keeps its base value),
        in any order. Raises ValueError or TypeError on a malformed tier; the catalogue
        validates tiers before they are stored (providers/pricing.py names every problem)."""
        stated = {
            "input": float(input),
            "output": float(output),
            "cached_input": None if cached_input is None else float(cached_input),
            "cache_write": None if cache_write is None else float(cache_write),
            "reasoning": None if reasoning is None else float(reasoning),
        }
        resolved = []
        for tier in tiers:
            if not isinstance(tier, Mapping):
                raise ValueError(f"a price tier must be an object, got {type(tier).__name__}")
            overrides = {k: float(v) for k, v in tier.items() if k in RATES}
            resolved.append((int(tier[TIER_THRESHOLD]), _resolve({**stated, **overrides})))
        resolved.sort(key=lambda pair: pair[0])
        return cls(_resolve(stated), tuple(resolved))

    def rates_for(self, prompt_tokens: int) -> Rates:
        rates = self.base
        for above, tier_rates in self.tiers:
            if prompt_tokens <= above:
                break
            rates = tier_rates
        return rates

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float:
        """USD for one call's tokens (see the module docstring for what each count holds)."""
        return self.rates_for(prompt_tokens).cost(
            prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens
        )


def _resolve(stated: Mapping[str, float | None]) -> Rates:
    input_rate, output_rate = stated["input"], stated["output"]
    return Rates(
        input=input_rate,
        output=output_rate,
        cached_input=input_rate if stated["cached_input"] is None else stated["cached_input"],
        cache_write=input_rate if stated["cache_write"] is None else stated["cache_write"],
        reasoning=output_rate if stated["reasoning"] is None else stated["reasoning"],
    )
