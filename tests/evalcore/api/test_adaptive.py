"""`max_in_flight: auto`: the controller alone (fed by hand), then against a loopback
server that enforces a requests-per-minute limit with 429 + Retry-After."""

from __future__ import annotations

import pytest
from chat_jobs import text_jobs
from test_api_client import spec_for

from evalcore.api import fan_out
from evalcore.api.adaptive import AdaptiveLimit


def feed(limit: AdaptiveLimit, n: int, latency=0.1, throttled=False, now: float = 0.0) -> None:
    for _ in range(n):
        limit.record(None if throttled else latency, throttled, now=now)


def test_slow_start_doubles_each_calm_round_up_to_the_ceiling():
    limit = AdaptiveLimit(level=8, ceiling=100)
    levels = []
    for _ in range(6):
        feed(limit, limit.level)  # one round: as many answers as the level
        levels.append(limit.level)
    assert levels == [16, 32, 64, 100, 100, 100]


def test_429s_set_a_pace_from_the_admitted_rate_and_cut_the_level_then_probing_is_slow():
    limit = AdaptiveLimit(level=8, ceiling=1000, probe_seconds=5.0)
    feed(limit, 8, now=0.0)
    feed(limit, 16, now=0.5)
    assert limit.level == 32 and limit.slow_start and limit.rate is None
    feed(limit, 24, now=1.0)
    feed(limit, 8, throttled=True, now=1.0)  # 8 of the round's 32 refused: 0.75 through
    # 48 answers in the 1.0 s since the first: paced at 0.95 x 48/s; level 32 x 0.75
    assert not limit.slow_start and limit.rate == pytest.approx(45.6)
    assert limit.level == 24
    assert not limit.record(None, True, epoch=limit.changes - 1, now=1.1)  # old epoch
    for t in (2.0, 3.0, 4.0, 5.0):  # calm rounds, but not yet probe_seconds since the cut
        feed(limit, 24, now=t)
    assert limit.level == 24 and limit.rate == pytest.approx(45.6)
    feed(limit, 24, now=6.0)  # 5 s after the cut: one step up, pace +2%
    assert limit.level == 25 and limit.rate == pytest.approx(45.6 * 1.02)
    feed(limit, 20, now=7.0)
    feed(limit, 5, throttled=True, now=7.0)  # a few refused at the probe
    # the pace: 0.95 x the answers of the last second (24 at 6.0, 20 at 7.0)
    assert limit.rate == pytest.approx(0.95 * 44) and limit.level == 20  # 25 x 0.8
    feed(limit, 20, throttled=True, now=7.1)  # all refused: level halved
    assert limit.level == 10 and limit.rate == pytest.approx(0.95 * 20)  # 20 at 7.0
    assert limit.describe() == "auto: 10 now, peak 32, paced at 19.0 req/s"


def test_rising_latency_cuts_the_level_before_any_429():
    limit = AdaptiveLimit(level=16)
    feed(limit, 16, latency=0.1)
    assert limit.level == 32
    feed(limit, 32, latency=0.2)  # the median doubled: the server is queueing
    assert limit.level == 28 and not limit.slow_start


def test_auto_finds_a_rate_limit_then_keeps_to_it(server, dask_cluster):
    """100 requests a second at 50 ms: about 5 in flight suffice. Slow start overshoots
    (the server's one-second burst allowance hides the limit at first), the 429s cut the
    level back near 5; the next cell on that endpoint starts from what was learnt and
    has few requests refused."""
    server.behaviour.latency = 0.05
    server.behaviour.requests_per_minute = 6000
    spec = spec_for(server, max_in_flight="auto", max_attempts=20, timeout=5)
    outcomes, levels = [], []
    first = fan_out(
        dask_cluster, text_jobs(400, "a"), spec, None, 8, outcomes.extend, None, levels.append
    )
    assert server.rate_limited > 0, "auto never met the limit"
    peak = max(levels)
    assert peak >= 16 and 3 <= levels[-1] <= 10, levels  # grew, then came back near 5
    assert first.in_flight.startswith(f"auto: {levels[-1]} now, peak {peak}, paced at ")

    refused_before = server.rate_limited
    second = fan_out(dask_cluster, text_jobs(400, "b"), spec, None, 8, outcomes.extend)
    assert second.in_flight.startswith("auto: ")
    assert server.rate_limited - refused_before <= 0.03 * 400, levels
    failed = [(o.error_type, o.error) for o in outcomes if not o.ok]
    assert len(outcomes) == 800 and not failed, failed[:3]
