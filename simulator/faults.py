"""Run-time faults of one simulated provider, and the per-request draw that applies them.

A `FaultSet` is the validated configuration an operator or a test puts on a provider name
(`PUT /_sim/faults/<name>` or `SimulatorServer.set_fault`). Each set owns a `random.Random`
seeded from its `seed` field, so the same sequence of requests meets the same faults every
run. Rates of exactly 0.0 and 1.0 never consult the generator, so they are exact.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields

# Statuses an operator may inject. 529 is Anthropic's "overloaded"; on the other wire formats
# it is sent with a generic server-error body, as a misbehaving upstream would.
ALLOWED_ERROR_STATUSES = (429, 500, 502, 503, 504, 529)

MAX_LATENCY_MS = 600_000
MAX_CHUNK_DELAY_MS = 60_000
MAX_HANG_SECONDS = 300
MAX_RETRY_AFTER = 3600


class FaultValidationError(ValueError):
    """A fault field was unknown or had a value outside its range; `field` names it."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def _number(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultValidationError(name, f"{name} must be a number")
    if not low <= value <= high:
        raise FaultValidationError(name, f"{name} must be between {low} and {high}")
    return value


def _integer(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultValidationError(name, f"{name} must be an integer")
    if not low <= value <= high:
        raise FaultValidationError(name, f"{name} must be between {low} and {high}")
    return value


def _rate(name, value):
    return float(_number(name, value, 0, 1))


def _status(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value not in ALLOWED_ERROR_STATUSES:
        allowed = ", ".join(str(s) for s in ALLOWED_ERROR_STATUSES)
        raise FaultValidationError(name, f"{name} must be one of {allowed}")
    return value


def _boolean(name, value):
    if not isinstance(value, bool):
        raise FaultValidationError(name, f"{name} must be true or false")
    return value


_VALIDATORS = {
    "latency_ms": lambda n, v: float(_number(n, v, 0, MAX_LATENCY_MS)),
    "chunk_delay_ms": lambda n, v: float(_number(n, v, 0, MAX_CHUNK_DELAY_MS)),
    "error_rate": _rate,
    "error_status": _status,
    "retry_after": lambda n, v: _integer(n, v, 0, MAX_RETRY_AFTER),
    "timeout_rate": _rate,
    "hang_seconds": lambda n, v: float(_number(n, v, 0, MAX_HANG_SECONDS)),
    "reset_rate": _rate,
    "malformed_rate": _rate,
    "cut_stream_rate": _rate,
    "down": _boolean,
    "seed": lambda n, v: _integer(n, v, -(2**63), 2**63 - 1),
}


@dataclass
class FaultSet:
    """Faults applied to every request under one provider name.

    latency_ms        added before any response (before the first byte of a stream)
    chunk_delay_ms    added between the events of a stream
    error_rate        share of requests answered with `error_status` in the wire format's
                      error body; a 429 carries `Retry-After: <retry_after>`
    timeout_rate      share of requests that get no answer: the connection is held for
                      `hang_seconds` (or until the server stops), then closed
    reset_rate        share of requests whose connection is reset (RST, SO_LINGER 0)
    malformed_rate    share of requests answered 200 with a body that is not valid JSON
    cut_stream_rate   share of streaming requests cut after about half their events, without
                      the final events or the chunked terminator
    down              every request under the name gets 503 in its wire format's error body
    seed              seed of this set's random generator
    """

    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    retry_after: int = 1
    timeout_rate: float = 0.0
    hang_seconds: float = 30.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    cut_stream_rate: float = 0.0
    down: bool = False
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def from_fields(cls, data, base: FaultSet | None = None) -> FaultSet:
        """Validate `data` (a mapping of field -> value) over `base` or the defaults."""
        if not isinstance(data, dict):
            raise FaultValidationError(None, "the body must be a JSON object of fault fields")
        values = base.as_dict() if base is not None else {}
        for name, value in data.items():
            validator = _VALIDATORS.get(name)
            if validator is None:
                known = ", ".join(_VALIDATORS)
                raise FaultValidationError(name, f"unknown fault field {name!r}; known: {known}")
            values[name] = validator(name, value)
        return cls(**values)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def _hit(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < rate

    def draw(self, streaming: bool) -> FaultPlan:
        """Decide which faults this request meets; draws happen in a fixed order."""
        if self.down:
            return FaultPlan(down=True)
        if self._hit(self.reset_rate):
            return FaultPlan(latency_s=self.latency_ms / 1000, reset=True)
        if self._hit(self.timeout_rate):
            return FaultPlan(latency_s=self.latency_ms / 1000, hang_s=self.hang_seconds)
        error_status = self.error_status if self._hit(self.error_rate) else None
        malformed = error_status is None and self._hit(self.malformed_rate)
        cut = streaming and error_status is None and not malformed
        cut = cut and self._hit(self.cut_stream_rate)
        return FaultPlan(
            latency_s=self.latency_ms / 1000,
            chunk_delay_s=self.chunk_delay_ms / 1000,
            error_status=error_status,
            retry_after=self.retry_after,
            malformed=malformed,
            cut_stream=cut,
        )


@dataclass(frozen=True)
class FaultPlan:
    """What happens to one request; the server acts on it in field order."""

    down: bool = False
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    reset: bool = False
    hang_s: float | None = None
    error_status: int | None = None
    retry_after: int = 1
    malformed: bool = False
    cut_stream: bool = False


NO_FAULTS = FaultPlan()


class FaultRegistry:
    """Fault sets by provider name; names without a set get no faults."""

    def __init__(self):
        self._sets: dict[str, FaultSet] = {}
        self._lock = threading.Lock()

    def put(self, name: str, data: dict) -> FaultSet:
        """Replace the name's fault set (unset fields take their defaults)."""
        fault_set = FaultSet.from_fields(data)
        with self._lock:
            self._sets[name] = fault_set
        return fault_set

    def patch(self, name: str, data: dict) -> FaultSet:
        """Change only the given fields of the name's fault set."""
        with self._lock:
            fault_set = FaultSet.from_fields(data, base=self._sets.get(name))
            self._sets[name] = fault_set
        return fault_set

    def get(self, name: str) -> FaultSet | None:
        return self._sets.get(name)

    def clear(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._sets.clear()
            else:
                self._sets.pop(name, None)

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {name: fs.as_dict() for name, fs in sorted(self._sets.items())}

    def draw(self, name: str, streaming: bool) -> FaultPlan:
        fault_set = self._sets.get(name)
        if fault_set is None:
            return NO_FAULTS
        return fault_set.draw(streaming)
