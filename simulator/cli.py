"""Command-line options shared by `manage.py run_simulator` and `python -m simulator`."""

from __future__ import annotations

import argparse
import os

from .latency import ENVIRONMENT, LatencyProfile, LatencyValidationError
from .server import DEFAULT_PORT, serve_forever

_RANGE_HELP = "milliseconds, N or LOW-HIGH (uniform per request)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--latency",
        metavar="MS",
        help=f"time before a non-streamed answer, {_RANGE_HELP} "
        f"(default ${ENVIRONMENT['latency_ms']} or none)",
    )
    parser.add_argument(
        "--first-token",
        metavar="MS",
        help=f"time before a stream's first event, {_RANGE_HELP} "
        f"(default ${ENVIRONMENT['first_token_ms']}, else --latency)",
    )
    parser.add_argument(
        "--stream-duration",
        metavar="MS",
        help=f"time from a stream's first event to its last, {_RANGE_HELP} "
        f"(default ${ENVIRONMENT['stream_duration_ms']} or none)",
    )
    parser.add_argument(
        "--latency-seed",
        type=int,
        help=f"seed of the latency draws (default ${ENVIRONMENT['seed']} or 0)",
    )


def profile_from_options(options: dict, environ=os.environ) -> LatencyProfile:
    """The environment's profile with the options given on the command line on top."""
    fields = LatencyProfile.from_environment(environ).as_dict()
    given = {
        "latency_ms": options.get("latency"),
        "first_token_ms": options.get("first_token"),
        "stream_duration_ms": options.get("stream_duration"),
        "seed": options.get("latency_seed"),
    }
    fields.update({name: value for name, value in given.items() if value is not None})
    return LatencyProfile.from_fields(fields)


def run(options: dict, error) -> None:
    """Serve until interrupted; `error(message)` reports a bad option and exits."""
    try:
        profile = profile_from_options(options)
    except LatencyValidationError as exc:
        error(f"{exc.field}: {exc.message}")
        return
    serve_forever(options["host"], options["port"], latency=profile)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Serve simulated AI providers over HTTP (see simulator/README.md).",
    )
    add_arguments(parser)
    run(vars(parser.parse_args(argv)), parser.error)
