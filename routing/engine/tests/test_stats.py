"""Live statistics: peak-EWMA latency, error rate, in-flight, breaker, with a fake clock."""

import math
import threading

import pytest

from routing.engine import BreakerConfig, ProviderStats, StatsConfig, StatsView
from routing.engine.breaker import CircuitBreaker


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def stats(clock):
    return ProviderStats(StatsConfig(latency_decay_s=10.0), clock=clock)


def complete(stats, provider, latency, ok=True, error_type=None):
    stats.begin(provider)
    stats.end(provider, latency, ok, error_type)


# --- peak EWMA -------------------------------------------------------------------------------


def test_unknown_provider_is_fresh(stats):
    assert stats.view("nobody") == StatsView()
    assert stats.snapshot_view() == {}


def test_first_sample_is_the_estimate(stats):
    complete(stats, "p", 2.0)
    assert stats.view("p").latency_s == pytest.approx(2.0)


def test_a_slower_sample_replaces_the_estimate_at_once(stats, clock):
    complete(stats, "p", 1.0)
    clock.advance(0.001)
    complete(stats, "p", 8.0)
    assert stats.view("p").latency_s == pytest.approx(8.0, rel=1e-3)


def test_a_faster_sample_blends_in_by_elapsed_time(stats, clock):
    complete(stats, "p", 4.0)
    clock.advance(10.0)  # one decay constant: weight of the old estimate is 1/e
    complete(stats, "p", 1.0)
    w = math.exp(-1)
    assert stats.view("p").latency_s == pytest.approx(4.0 * w + 1.0 * (1 - w))


def test_fast_samples_in_quick_succession_barely_move_a_high_estimate(stats, clock):
    # "Recover cautiously": a burst of fast answers right after a spike is not trusted yet.
    complete(stats, "p", 10.0)
    for _ in range(5):
        clock.advance(0.1)
        complete(stats, "p", 0.5)
    assert stats.view("p").latency_s > 9.0


def test_estimate_decays_towards_zero_while_idle(stats, clock):
    complete(stats, "p", 6.0)
    clock.advance(20.0)
    assert stats.view("p").latency_s == pytest.approx(6.0 * math.exp(-2))
    # Reading does not change the state: the same instant gives the same figure.
    assert stats.view("p").latency_s == pytest.approx(6.0 * math.exp(-2))


def test_in_flight_without_history_reports_the_penalty(stats):
    stats.begin("new")
    assert stats.view("new").latency_s == StatsConfig().inflight_penalty_s
    assert stats.view("new").inflight == 1
    stats.end("new", 1.5, True)
    assert stats.view("new").latency_s == pytest.approx(1.5)
    assert stats.view("new").inflight == 0


def test_only_successes_and_timeouts_feed_latency(stats):
    complete(stats, "p", 0.003, ok=False, error_type="connection_error")
    complete(stats, "p", 0.05, ok=False, error_type="invalid_request")
    assert stats.view("p").latency_s is None
    complete(stats, "p", 30.0, ok=False, error_type="timeout")
    assert stats.view("p").latency_s == pytest.approx(30.0)


# --- error rate ------------------------------------------------------------------------------


def test_error_rate_is_an_ewma_of_outcomes(stats):
    complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
    assert stats.view("p").error_rate == pytest.approx(0.1)
    complete(stats, "p", 1.0, ok=False, error_type="rate_limited")
    assert stats.view("p").error_rate == pytest.approx(0.19)
    complete(stats, "p", 1.0)
    assert stats.view("p").error_rate == pytest.approx(0.171)


def test_error_rate_decays_while_idle(stats, clock):
    complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
    clock.advance(60.0)
    assert stats.view("p").error_rate == pytest.approx(0.1 * math.exp(-1))


def test_caller_errors_are_not_provider_failures(stats):
    for _ in range(10):
        complete(stats, "p", 0.1, ok=False, error_type="invalid_request")
        complete(stats, "p", 0.1, ok=False, error_type="context_length_exceeded")
    view = stats.view("p")
    assert view.error_rate == 0.0
    assert view.breaker_state == "closed"


def test_end_never_drives_inflight_negative(stats):
    stats.end("p", 1.0, True)
    assert stats.view("p").inflight == 0


# --- breaker through the registry ------------------------------------------------------------


def test_consecutive_failures_open_the_breaker_then_half_open_then_close(stats, clock):
    for _ in range(4):
        complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
    assert stats.view("p").breaker_state == "closed"
    complete(stats, "p", 1.0, ok=False, error_type="timeout")
    view = stats.view("p")
    assert (view.breaker_state, view.allows_request) == ("open", False)

    clock.advance(29.9)
    assert stats.view("p").allows_request is False
    clock.advance(0.1)
    view = stats.view("p")
    assert (view.breaker_state, view.allows_request) == ("half_open", True)

    # One trial at a time: while it runs nobody else is admitted.
    assert stats.begin("p") is True
    assert stats.view("p").allows_request is False
    assert stats.begin("p") is False
    stats.end("p", 1.0, True)
    stats.end("p", 1.0, True)
    view = stats.view("p")
    assert (view.breaker_state, view.allows_request) == ("closed", True)


def test_release_undoes_a_begin_that_was_not_sent(stats, clock):
    for _ in range(5):
        complete(stats, "p", 1.0, ok=False, error_type="connection_error")
    # Open: refused, counted, released; nothing is recorded.
    assert stats.begin("p") is False
    stats.release("p")
    assert stats.view("p").inflight == 0
    assert stats.view("p").breaker_state == "open"
    clock.advance(30.0)
    # Half-open: the trial slot goes back, so the next request may still be the trial.
    assert stats.begin("p") is True
    stats.release("p")
    assert stats.view("p").allows_request is True
    assert stats.begin("p") is True
    stats.end("p", 1.0, True)
    assert stats.view("p").breaker_state == "closed"
    stats.release("unknown")  # harmless


def test_a_failed_trial_reopens_for_another_cool_down(stats, clock):
    for _ in range(5):
        complete(stats, "p", 1.0, ok=False, error_type="connection_error")
    clock.advance(30.0)
    complete(stats, "p", 1.0, ok=False, error_type="connection_error")
    assert stats.view("p").breaker_state == "open"
    clock.advance(29.0)
    assert stats.view("p").breaker_state == "open"
    clock.advance(1.0)
    assert stats.view("p").breaker_state == "half_open"


def test_success_resets_the_consecutive_count_but_the_error_rate_still_counts(stats):
    def round_of_four_failures_and_a_success():
        for _ in range(4):
            complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
        complete(stats, "p", 1.0)

    for _ in range(3):
        round_of_four_failures_and_a_success()
    # 80% errors but never 5 in a row, and 15 requests are below the minimum volume of 20.
    assert stats.view("p").breaker_state == "closed"
    round_of_four_failures_and_a_success()
    complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
    assert stats.view("p").breaker_state == "open"


def test_error_rate_threshold_needs_the_minimum_volume(clock):
    config = StatsConfig(breaker=BreakerConfig(error_rate_threshold=0.5, min_volume=20))
    stats = ProviderStats(config, clock=clock)
    for _ in range(9):
        complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
        complete(stats, "p", 1.0)
    assert stats.view("p").breaker_state == "closed"  # 9/18: too little volume
    complete(stats, "p", 1.0)
    complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
    assert stats.view("p").breaker_state == "open"  # 10/20


def test_old_failures_leave_the_window(clock):
    config = StatsConfig(breaker=BreakerConfig(min_volume=10, window_s=60, buckets=6))
    stats = ProviderStats(config, clock=clock)
    for _ in range(4):
        complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
        complete(stats, "p", 1.0)
    clock.advance(120)
    for _ in range(5):
        complete(stats, "p", 1.0)
    complete(stats, "p", 1.0, ok=False, error_type="upstream_error")
    # Inside the window: 1 failure in 6; the old 4/8 no longer count.
    assert stats.view("p").breaker_state == "closed"


def test_snapshot_view_covers_every_seen_provider(stats):
    complete(stats, "a", 1.0)
    stats.begin("b")
    views = stats.snapshot_view()
    assert set(views) == {"a", "b"}
    assert views["b"].inflight == 1
    stats.forget("a")
    assert set(stats.snapshot_view()) == {"b"}


def test_live_view_reads_lazily_at_one_instant(stats, clock):
    complete(stats, "a", 2.0)
    complete(stats, "b", 1.0)
    live = stats.live_view()
    clock.advance(10.0)
    complete(stats, "c", 3.0)
    # Figures are those of the instant the view was taken, read when first asked for.
    assert live["a"].latency_s == pytest.approx(2.0)
    assert live.get("nobody") is None
    assert live.get("nobody", StatsView()) == StatsView()
    assert set(live) == {"a", "b", "c"}
    assert len(live) == 3
    with pytest.raises(KeyError):
        live["nobody"]
    assert dict(stats.live_view(now=clock.now)) == dict(stats.snapshot_view(now=clock.now))


def test_live_view_figures_are_reused_briefly(stats, clock):
    complete(stats, "a", 2.0)
    assert stats.live_view()["a"].inflight == 0
    stats.begin("a")
    # Within view_max_age_s (50 ms) another request sees the same figures ...
    clock.advance(0.01)
    assert stats.live_view()["a"].inflight == 0
    # ... after it, fresh ones; begin() itself is never cached.
    clock.advance(0.05)
    assert stats.live_view()["a"].inflight == 1
    assert stats.snapshot_view()["a"].inflight == 1


def test_explicit_now_overrides_the_clock(stats):
    stats.begin("p", now=5.0)
    stats.end("p", 2.0, True, now=5.0)
    assert stats.view("p", now=15.0).latency_s == pytest.approx(2.0 * math.exp(-1))


def test_concurrent_updates_are_consistent():
    stats = ProviderStats()
    errors = []

    def worker(n):
        try:
            for i in range(2000):
                stats.begin("p")
                stats.end("p", 0.5, ok=(i + n) % 50 != 0, error_type="upstream_error")
                stats.snapshot_view()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stats.view("p").inflight == 0


# --- breaker alone ---------------------------------------------------------------------------


def test_breaker_config_is_validated():
    with pytest.raises(ValueError):
        BreakerConfig(failure_threshold=0)
    with pytest.raises(ValueError):
        BreakerConfig(error_rate_threshold=1.5)
    with pytest.raises(ValueError):
        BreakerConfig(half_open_max_trials=0)


def test_breaker_needs_several_successful_trials_when_configured():
    breaker = CircuitBreaker(
        BreakerConfig(
            failure_threshold=1, cooldown_s=10, half_open_max_trials=2, success_threshold=2
        )
    )
    breaker.on_failure(0.0)
    assert breaker.state(0.0) == "open"
    assert breaker.state(10.0) == "half_open"
    assert breaker.on_begin(10.0) and breaker.on_begin(10.0)
    assert not breaker.allows(10.0)
    breaker.on_success(11.0)
    assert breaker.state(11.0) == "half_open"
    breaker.on_success(12.0)
    assert breaker.state(12.0) == "closed"
    assert breaker.opened_count == 1


def test_straggler_outcomes_while_open_change_nothing():
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=1, cooldown_s=10))
    breaker.on_failure(0.0)
    breaker.on_success(1.0)
    breaker.on_failure(2.0)
    assert breaker.state(5.0) == "open"
    assert breaker.state(10.0) == "half_open"  # cool-down counted from the first opening


def test_the_cool_down_starts_short_grows_while_trials_fail_and_resets_on_recovery():
    config = BreakerConfig(failure_threshold=1, cooldown_s=1, cooldown_max_s=5, cooldown_factor=2)
    breaker = CircuitBreaker(config, rng=lambda: 0.0)
    breaker.on_failure(0.0)  # opens: 1 s
    assert breaker.state(0.9) == "open" and breaker.state(1.0) == "half_open"
    expected_cooldowns = [2, 4, 5, 5]  # after each failed trial, capped
    now = 1.0
    for cooldown in expected_cooldowns:
        assert breaker.on_begin(now)
        breaker.on_failure(now)  # the trial fails
        assert breaker.seconds_until_trial(now) == cooldown
        assert breaker.state(now + cooldown - 0.01) == "open"
        now += cooldown
        assert breaker.state(now) == "half_open"
    # the provider is back: the trial closes it, and the next opening is short again
    assert breaker.on_begin(now)
    breaker.on_success(now)
    assert breaker.state(now) == "closed"
    breaker.on_failure(now)
    assert breaker.seconds_until_trial(now) == 1


def test_jitter_only_shortens_the_cool_down():
    config = BreakerConfig(failure_threshold=1, cooldown_s=4, cooldown_max_s=4, jitter=0.25)
    for draw, expected in ((0.0, 4.0), (0.5, 3.5), (0.999, 3.001)):
        breaker = CircuitBreaker(config, rng=lambda draw=draw: draw)
        breaker.on_failure(0.0)
        assert breaker.seconds_until_trial(0.0) == pytest.approx(expected)


def test_retry_after_is_the_soonest_trial_or_a_short_default(clock):
    config = StatsConfig(breaker=BreakerConfig(failure_threshold=1, cooldown_s=3))
    stats = ProviderStats(config, clock=clock)
    assert stats.retry_after_s(["a"]) == 1.0  # never seen: may be tried now
    stats.begin("a")
    stats.end("a", 0.1, ok=False, error_type="upstream_error")  # opens for 3 s
    clock.advance(1.0)
    stats.begin("b")
    stats.end("b", 0.1, ok=False, error_type="upstream_error")  # opens for 3 s, later
    assert stats.retry_after_s(["a", "b"]) == pytest.approx(2.0)
    assert stats.retry_after_s(["b"]) == pytest.approx(3.0)
    assert stats.retry_after_s() == pytest.approx(2.0)  # every known provider
    clock.advance(2.0)  # a is half-open: a trial may go now
    assert stats.retry_after_s(["a", "b"]) == 1.0


def test_a_longest_cool_down_below_the_first_is_refused():
    with pytest.raises(ValueError):
        BreakerConfig(cooldown_s=10, cooldown_max_s=5)
    with pytest.raises(ValueError):
        BreakerConfig(jitter=1.0)
