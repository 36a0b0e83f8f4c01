"""Provider simulator: a real HTTP server speaking OpenAI, Azure OpenAI, Anthropic and Gemini
wire formats, with faults controllable per simulated provider name and a default latency
profile.

Tests and benchmarks use `SimulatorServer`; `manage.py run_simulator` and
`python -m simulator` call `serve_forever`.
"""

from .catalog import DEFAULT_MODELS
from .faults import ALLOWED_ERROR_STATUSES, FaultSet, FaultValidationError
from .latency import LatencyProfile, LatencyValidationError
from .server import DEFAULT_PORT, SimulatorServer, serve_forever

__all__ = [
    "ALLOWED_ERROR_STATUSES",
    "DEFAULT_MODELS",
    "DEFAULT_PORT",
    "FaultSet",
    "FaultValidationError",
    "LatencyProfile",
    "LatencyValidationError",
    "SimulatorServer",
    "serve_forever",
]
