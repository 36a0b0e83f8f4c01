"""How the simulator serves: its latency profile, its commands, and slow requests that hold no
thread. Real HTTP and real processes; no timing assertions (figures are in bench/README.md).
"""

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from simulator import LatencyProfile, LatencyValidationError, SimulatorServer
from simulator.cli import profile_from_options

ROOT = Path(__file__).resolve().parents[2]
OPENAI_AUTH = {"Authorization": "Bearer test-key"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}


def _data_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


# --- the latency profile --------------------------------------------------------------------


def test_profile_fields_take_a_value_or_a_range():
    profile = LatencyProfile.from_fields(
        {"latency_ms": 1000, "first_token_ms": "200-800", "stream_duration_ms": [2000, 4000]}
    )

    assert profile.as_dict() == {
        "latency_ms": [1000.0, 1000.0],
        "first_token_ms": [200.0, 800.0],
        "stream_duration_ms": [2000.0, 4000.0],
        "seed": 0,
    }
    assert profile.first_byte_s(streaming=False) == 1.0
    assert all(0.2 <= profile.first_byte_s(streaming=True) <= 0.8 for _ in range(50))
    assert all(2.0 / 19 <= profile.event_gap_s(20) <= 4.0 / 19 for _ in range(50))


def test_profile_draws_repeat_with_the_seed():
    def draws(seed):
        profile = LatencyProfile.from_fields({"first_token_ms": "200-800", "seed": seed})
        return [profile.first_byte_s(streaming=True) for _ in range(5)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_streams_wait_for_the_latency_when_no_first_token_is_set():
    profile = LatencyProfile.from_fields({"latency_ms": 300})

    assert profile.first_byte_s(streaming=True) == 0.3
    assert profile.event_gap_s(20) == 0.0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"first_token_ms": "800-200"}, "first_token_ms"),
        ({"stream_duration_ms": -1}, "stream_duration_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"seed": "x"}, "seed"),
        ({"jitter_ms": 5}, "jitter_ms"),
    ],
)
def test_profile_rejects_bad_fields_naming_them(fields, field):
    with pytest.raises(LatencyValidationError) as caught:
        LatencyProfile.from_fields(fields)

    assert caught.value.field == field


def test_command_options_override_the_environment():
    environ = {"SIMULATOR_LATENCY_MS": "900", "SIMULATOR_FIRST_TOKEN_MS": "100-200"}

    profile = profile_from_options({"first_token": "300-400", "latency_seed": 3}, environ)

    assert profile.as_dict() == {
        "latency_ms": [900.0, 900.0],
        "first_token_ms": [300.0, 400.0],
        "stream_duration_ms": None,
        "seed": 3,
    }


def test_profile_is_set_at_start_and_changed_through_the_control_api():
    with SimulatorServer(latency={"latency_ms": "1-2", "stream_duration_ms": 40}) as sim:
        shown = requests.get(f"{sim.url}/_sim/latency", timeout=5).json()
        stream = requests.post(
            f"{sim.base_url('openai')}/v1/chat/completions",
            json={**CHAT, "stream": True, "max_tokens": 5},
            headers=OPENAI_AUTH,
            timeout=10,
        )
        changed = requests.put(
            f"{sim.url}/_sim/latency", json={"first_token_ms": "5-10"}, timeout=5
        )
        rejected = requests.put(f"{sim.url}/_sim/latency", json={"latency_ms": "x"}, timeout=5)

        assert shown["latency"]["latency_ms"] == [1.0, 2.0]
        assert shown["latency"]["stream_duration_ms"] == [40.0, 40.0]
        # every event arrives, spread out or not
        events = _data_events(stream.text)
        assert len(events) == 8 and events[-1] == "[DONE]"
        assert changed.status_code == 200
        assert changed.json()["latency"]["first_token_ms"] == [5.0, 10.0]
        assert changed.json()["latency"]["latency_ms"] is None
        assert rejected.status_code == 400
        assert rejected.json()["error"]["field"] == "latency_ms"
        assert sim.latency()["first_token_ms"] == [5.0, 10.0]
        assert sim.set_latency()["first_token_ms"] is None


# --- slow requests hold no thread -----------------------------------------------------------


def test_hundreds_of_hung_calls_leave_the_server_answering():
    with SimulatorServer() as sim:
        sim.set_fault("stuck", timeout_rate=1.0, hang_seconds=300)
        outcomes = []

        def call():
            try:
                requests.post(
                    f"{sim.base_url('stuck')}/v1/chat/completions",
                    json=CHAT,
                    headers=OPENAI_AUTH,
                    timeout=60,
                )
                outcomes.append("answered")
            except requests.exceptions.ConnectionError:
                outcomes.append("closed")

        callers = [threading.Thread(target=call) for _ in range(300)]
        for caller in callers:
            caller.start()
        while sim.stats("stuck")["requests"] < 300:
            threading.Event().wait(0.05)

        # when 300 calls hang, another name still answers
        ok = requests.post(
            f"{sim.base_url('openai')}/v1/chat/completions",
            json=CHAT,
            headers=OPENAI_AUTH,
            timeout=10,
        )
        assert ok.status_code == 200

        # stopping ends the hung calls instead of waiting out their 300 s
        sim.stop()
        for caller in callers:
            caller.join(timeout=30)
        assert not any(caller.is_alive() for caller in callers)
        assert outcomes == ["closed"] * 300


# --- the commands ---------------------------------------------------------------------------


def _start(args, env=None):
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = process.stdout.readline()
    match = re.search(r"listening on (http://\S+) ", line)
    if match is None:
        process.kill()
        raise AssertionError(f"no listening line: {line!r} {process.stderr.read()}")
    return process, match[1]


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "simulator"],
        [sys.executable, "manage.py", "run_simulator"],
    ],
    ids=["python -m simulator", "manage.py run_simulator"],
)
def test_command_serves_with_the_profile_and_stops_on_sigterm(command):
    process, url = _start(
        [*command, "--port", "0", "--first-token", "200-800", "--stream-duration", "3000"],
        env={"SIMULATOR_LATENCY_MS": "1000"},
    )
    try:
        profile = requests.get(f"{url}/_sim/latency", timeout=5).json()["latency"]
        models = requests.get(f"{url}/openai/v1/models", headers=OPENAI_AUTH, timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=20)

    assert profile["latency_ms"] == [1000.0, 1000.0]
    assert profile["first_token_ms"] == [200.0, 800.0]
    assert profile["stream_duration_ms"] == [3000.0, 3000.0]
    # model lists are not "generated": no latency, and the answer is the list
    assert models.status_code == 200 and models.json()["object"] == "list"
    assert returncode == 0


def test_command_rejects_a_bad_latency_naming_the_option():
    result = subprocess.run(
        [sys.executable, "manage.py", "run_simulator", "--port", "0", "--latency", "soon"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "latency_ms" in result.stderr
    assert "listening" not in result.stdout
