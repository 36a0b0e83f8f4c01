"""Provider simulator: a real HTTP server speaking OpenAI, Azure OpenAI, Anthropic and Gemini
wire formats, with faults controllable per simulated provider name.

Tests and benchmarks use `SimulatorServer`; `manage.py run_simulator` calls `serve_forever`.
"""

from .catalog import DEFAULT_MODELS
from .faults import ALLOWED_ERROR_STATUSES, FaultSet, FaultValidationError
from .server import DEFAULT_PORT, SimulatorServer, serve_forever

__all__ = [
    "ALLOWED_ERROR_STATUSES",
    "DEFAULT_MODELS",
    "DEFAULT_PORT",
    "FaultSet",
    "FaultValidationError",
    "SimulatorServer",
    "serve_forever",
]
