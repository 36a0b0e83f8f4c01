"""The web server's settings (auterity/server.py) and the scrape's clean-up of dead workers'
live gauges (auterity/exposition.py). The server itself runs in tests/test_web_server.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import Gauge
from prometheus_client.values import MultiProcessValue

from auterity import server
from auterity.exposition import drop_dead_workers_live_gauges

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_serve_the_asgi_app_on_uvloop_with_one_worker_per_core():
    options = server.server_options({})
    assert options["target"] == "auterity.asgi:application"
    assert (options["interface"], options["loop"]) == ("asgi", "uvloop")
    assert (options["address"], options["port"]) == ("127.0.0.1", 8000)
    assert options["workers"] == os.cpu_count()
    assert options["backpressure"] == 10000
    assert options["http1_header_read_timeout"] == 15
    assert options["respawn_interval"] == 15
    assert options["respawn_failed_workers"] is True
    assert options["workers_kill_timeout"] == 60
    assert options["workers_lifetime"] is None and options["workers_max_rss"] is None
    assert options["log_access"] is False
    assert options["log_dictconfig"] is not None  # JSON lines unless DEBUG


def test_settings_come_from_the_environment():
    options = server.server_options(
        {
            "WEB_BIND": "0.0.0.0:9000",
            "WEB_CONCURRENCY": "3",
            "WEB_MAX_CONNECTIONS": "800",
            "WEB_HEADER_TIMEOUT": "5",
            "WEB_GRACEFUL_TIMEOUT": "15",
            "WEB_WORKER_LIFETIME": "3600",
            "WEB_WORKER_MAX_RSS_MB": "512",
            "WEB_ACCESSLOG": "true",
            "WEB_LOGLEVEL": "WARNING",
            "DEBUG": "y",  # true to django-environ, so to the settings too
        }
    )
    assert (options["address"], options["port"]) == ("0.0.0.0", 9000)
    assert (options["workers"], options["backpressure"]) == (3, 800)
    assert options["http1_header_read_timeout"] == 5
    assert options["workers_kill_timeout"] == 15
    assert (options["workers_lifetime"], options["workers_max_rss"]) == (3600, 512)
    assert options["log_access"] is True
    assert options["log_level"] == "warning"
    assert options["log_dictconfig"] is None  # DEBUG: granian's plain lines


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"WEB_MAX_CONNECTIONS": "many"},
            "WEB_MAX_CONNECTIONS must be a whole number, got 'many'",
        ),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be at least 1, got 0"),
        ({"WEB_WORKER_LIFETIME": "10"}, "WEB_WORKER_LIFETIME must be at least 60, got 10"),
        ({"WEB_BIND": "8000"}, "WEB_BIND must be host:port, got '8000'"),
        ({"WEB_ACCESSLOG": "sometimes"}, "WEB_ACCESSLOG must be true or false, got 'sometimes'"),
        (
            {"WEB_LOGLEVEL": "loud"},
            "WEB_LOGLEVEL must be one of critical, error, warning, info, debug, got 'loud'",
        ),
    ],
)
def test_a_bad_setting_names_the_variable(env, message):
    with pytest.raises(server.ConfigError) as caught:
        server.server_options(env)
    assert str(caught.value) == message


def test_a_bad_setting_stops_the_server_before_it_starts():
    result = subprocess.run(
        [sys.executable, "-m", "auterity.server"],
        cwd=ROOT,
        env={**os.environ, "WEB_MAX_CONNECTIONS": "-3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "WEB_MAX_CONNECTIONS must be at least 1, got -3" in result.stderr


def test_the_metrics_directory_starts_empty_of_metric_files_only(tmp_path):
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")
    (directory / "README").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    assert server.prepare_metrics_dir(env) == str(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["README"]
    fresh = {}
    assert server.prepare_metrics_dir(fresh) == str(server.DEFAULT_MULTIPROC_DIR)
    assert fresh["PROMETHEUS_MULTIPROC_DIR"] == str(server.DEFAULT_MULTIPROC_DIR)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_scrape_drops_only_dead_processes_live_gauges(tmp_path, monkeypatch):
    directory = str(tmp_path)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", directory)
    dead, alive = _dead_pid(), os.getpid()
    for pid in (dead, alive):
        # what a worker with that pid leaves behind: a live gauge and a counter
        value_class = MultiProcessValue(process_identifier=lambda pid=pid: pid)
        monkeypatch.setattr("prometheus_client.values.ValueClass", value_class)
        monkeypatch.setattr("prometheus_client.metrics.values.ValueClass", value_class)
        Gauge("t_in_flight", "x", multiprocess_mode="livesum", registry=None).set(2)
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    assert (tmp_path / f"gauge_livesum_{dead}.db").exists()

    assert drop_dead_workers_live_gauges(directory) == [dead]

    assert not (tmp_path / f"gauge_livesum_{dead}.db").exists()
    assert (tmp_path / f"gauge_livesum_{alive}.db").exists()
    assert (tmp_path / f"counter_{dead}.db").exists()  # counts never go away
    assert drop_dead_workers_live_gauges(directory) == []
