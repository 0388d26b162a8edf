"""Chaos: a loopback server that fails a quarter of all requests in every way we know,
through the real path (response cache, Dask fan-out, retries)."""

from __future__ import annotations

from collections import defaultdict

from test_api_client import spec_for

from evalcore.api import ResponseCache, answer_jobs, dask_runner
from tests.doubles.chat_jobs import text_jobs

FAULTS = ("503", "500", "429", "empty", "blank", "malformed", "reset")
TYPED = {"ServerError", "RateLimited", "MalformedResponse", "EmptyResponse", "ConnectionError"}


def test_a_quarter_of_requests_fail_every_sample_ends_answered_or_typed(
    server, dask_cluster, tmp_path
):
    b = server.behaviour
    b.fault_rate, b.faults, b.seed = 0.25, FAULTS, 7
    b.retry_after, b.retry_after_ms = "1", None  # seconds, as most servers send it
    b.retry_after_statuses = frozenset({429, 500, 503})
    spec = spec_for(server, max_in_flight=16, max_attempts=5, timeout=5)
    outcomes = []
    with ResponseCache(tmp_path / "cache.sqlite3") as cache:
        stats = answer_jobs(
            text_jobs(200), spec, cache, dask_runner(dask_cluster, spec, None, 8), outcomes.append
        )
        cached = cache.stats().entries

    assert sorted(o.job_id for o in outcomes) == sorted(f"q{i}" for i in range(200))
    failed = [o for o in outcomes if not o.ok]
    assert all(o.text and o.text.strip() for o in outcomes if o.ok)  # never "" as an answer
    assert {o.error_type for o in failed} <= TYPED, [o.error for o in failed]
    assert cached == stats.answered == 200 - len(failed)  # failures are never cached
    faults_seen = {s.outcome for s in server.seen} - {"ok"}
    assert faults_seen == set(FAULTS)  # every kind of fault really happened

    # Every Retry-After was honoured: the next attempt at that prompt came >= 1 s later.
    by_prompt = defaultdict(list)
    for seen in server.seen:
        by_prompt[seen.prompt].append(seen)
    gaps = []
    for attempts in by_prompt.values():
        for before, after in zip(attempts, attempts[1:], strict=False):
            if before.outcome in {"429", "500", "503"}:
                gaps.append(after.at - before.at)
    assert len(gaps) >= 20
    assert min(gaps) >= 1.0, sorted(gaps)[:5]
