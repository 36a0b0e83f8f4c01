"""How long an answer is expected to be, before it is asked for: the cost guard's numbers.

Pure data, no Django, no I/O. The gateway builds one `OutputEstimates` from the request log's
observed lengths (routing/output_estimates.py, refreshed off the request path) and the engine
reads it per request with dictionary lookups only.

Visible output, in this order (docs/policies.md#expected-cost-and-latency):

1. the request's `max_tokens` / `max_completion_tokens`, when given (an upper bound: what the
   caller allows is what the guard must be ready to pay);
2. the observed p90 (the percentile is a setting) of visible output tokens of the same model
   for the same caller (user and API key), once they have `min_samples` successful calls;
3. the same for the model, over every caller;
4. the default (`ROUTING_EXPECTED_OUTPUT_DEFAULT`).

Thinking, per target model: the observed p90 of its reasoning tokens once it has
`min_samples` calls, else the offer's `thinking_tokens` (the catalogue's expectation for a
model that thinks; 0 for one that does not). Thinking is billed as output and counts against
`max_tokens` at OpenAI and Google, so with `max_tokens` the whole output is capped there, and
at the target's maximum output. decide.py's `_Checker.cost` applies these rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_EMPTY: Mapping = MappingProxyType({})

# Visible output tokens assumed when nothing better is known: the p90 of GeneratedTokens in
# Azure's LLM conversation trace (2023, 19,366 production requests), shared/data/.
DEFAULT_EXPECTED_OUTPUT_TOKENS = 424


@dataclass(frozen=True, slots=True)
class OutputEstimates:
    """Observed output lengths. Keys: `by_caller[(model, user_id, api_key_name)]`,
    `by_model[model]`, `thinking[model]`, each a token count (the percentile's value)."""

    by_caller: Mapping[tuple[str, str, str], int] = field(default_factory=lambda: _EMPTY)
    by_model: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    thinking: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    default_output: int = DEFAULT_EXPECTED_OUTPUT_TOKENS
    version: str = ""

    def output_tokens(self, model: str, user_id: str | None, api_key: str | None) -> int:
        """Expected visible output of a request without `max_tokens` (steps 2-4 above)."""
        by_caller = self.by_caller.get((model, user_id or "", api_key or ""))
        if by_caller is not None:
            return by_caller
        by_model = self.by_model.get(model)
        return by_model if by_model is not None else self.default_output


NO_ESTIMATES = OutputEstimates()
