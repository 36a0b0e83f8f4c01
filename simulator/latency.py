"""The simulator's default latency profile: how long a "model" takes when no fault says more.

Real providers take time: a completion arrives after a second or more, a stream's first token
after a few hundred milliseconds and its last after seconds. Benchmarks and load scenarios
need that shape from the simulator, so a profile is set at start (`run_simulator --latency
...`, the `SIMULATOR_*` environment variables, `SimulatorServer(latency=...)`) or at run time
(`PUT /_sim/latency`). It applies to every name, to endpoints that generate an answer (chat
completions, messages, generateContent, embeddings), never to model lists, token counts or
the control API. A name's fault set (`latency_ms`, `chunk_delay_ms`) adds on top.

Each field is milliseconds, one value or a `LOW-HIGH` range drawn uniformly per request from
a generator seeded with `seed`, so a run repeats:

latency_ms          time before a non-streamed answer (and before a stream's first event
                    when `first_token_ms` is not set)
first_token_ms      time before a stream's first event
stream_duration_ms  time from a stream's first event to its last, spread evenly between the
                    events (20 events over 2,000 ms: one every ~105 ms)
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

MAX_MS = 600_000

ENVIRONMENT = {
    "latency_ms": "SIMULATOR_LATENCY_MS",
    "first_token_ms": "SIMULATOR_FIRST_TOKEN_MS",
    "stream_duration_ms": "SIMULATOR_STREAM_DURATION_MS",
    "seed": "SIMULATOR_LATENCY_SEED",
}


class LatencyValidationError(ValueError):
    """A profile field was unknown or malformed; `field` names it."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def parse_range(name: str, value) -> tuple[float, float] | None:
    """`value` as a (low, high) range in ms: a number, "N", "LOW-HIGH", [LOW, HIGH] or None."""
    if value is None or value == "":
        return None
    low = high = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int | float):
        low = high = float(value)
    elif isinstance(value, str):
        first, dash, second = value.strip().partition("-")
        try:
            low = float(first)
            high = float(second) if dash else low
        except ValueError:
            low = high = None
    elif (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        low, high = float(value[0]), float(value[1])
    if low is None or high is None:
        raise LatencyValidationError(
            name, f"{name} must be milliseconds: a number, 'LOW-HIGH' or [LOW, HIGH]"
        )
    if not 0 <= low <= high <= MAX_MS:
        raise LatencyValidationError(name, f"{name} must satisfy 0 <= LOW <= HIGH <= {MAX_MS}")
    return (low, high)


@dataclass
class LatencyProfile:
    latency_ms: tuple[float, float] | None = None
    first_token_ms: tuple[float, float] | None = None
    stream_duration_ms: tuple[float, float] | None = None
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._rng = random.Random(self.seed)

    @classmethod
    def from_fields(cls, data) -> LatencyProfile:
        """Validate a mapping of field -> value (ms values, ranges, seed)."""
        if not isinstance(data, dict):
            raise LatencyValidationError(None, "the body must be a JSON object of profile fields")
        values = {}
        for name, value in data.items():
            if name == "seed":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise LatencyValidationError(name, "seed must be an integer")
                values[name] = value
            elif name in ENVIRONMENT:
                values[name] = parse_range(name, value)
            else:
                known = ", ".join(ENVIRONMENT)
                raise LatencyValidationError(
                    name, f"unknown profile field {name!r}; known: {known}"
                )
        return cls(**values)

    @classmethod
    def from_environment(cls, environ=os.environ) -> LatencyProfile:
        data = {}
        for name, variable in ENVIRONMENT.items():
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            if name == "seed":
                try:
                    data[name] = int(raw)
                except ValueError as exc:
                    raise LatencyValidationError(
                        variable, f"{variable} must be an integer"
                    ) from exc
            else:
                data[name] = raw
        return cls.from_fields(data)

    def as_dict(self) -> dict:
        def show(value):
            return None if value is None else list(value)

        return {
            "latency_ms": show(self.latency_ms),
            "first_token_ms": show(self.first_token_ms),
            "stream_duration_ms": show(self.stream_duration_ms),
            "seed": self.seed,
        }

    @property
    def active(self) -> bool:
        return any((self.latency_ms, self.first_token_ms, self.stream_duration_ms))

    def _draw(self, bounds: tuple[float, float] | None) -> float:
        if bounds is None:
            return 0.0
        low, high = bounds
        # Only the event loop's thread draws, so the generator needs no lock.
        return (low if low == high else self._rng.uniform(low, high)) / 1000

    def first_byte_s(self, streaming: bool) -> float:
        """Seconds before the answer (a stream: its first event)."""
        if streaming and self.first_token_ms is not None:
            return self._draw(self.first_token_ms)
        return self._draw(self.latency_ms)

    def event_gap_s(self, events: int) -> float:
        """Seconds between two events of a stream of `events` events."""
        if self.stream_duration_ms is None or events < 2:
            return 0.0
        return self._draw(self.stream_duration_ms) / (events - 1)
