"""The Dask fan-out: batches, the cluster-wide in-flight bound, the rate limit, and the
cache in front of it all (an external scheduler: test_api_cell.py)."""

from __future__ import annotations

import time

from test_api_client import spec_for

from evalcore.api import ResponseCache, answer_jobs, dask_runner, fan_out, local_runner
from evalcore.judge.prompt import JudgeItem, judge
from tests.doubles.chat_jobs import text_jobs


def collect(client, jobs, spec, per_task=4):
    handed: list[list] = []
    fan_out(client, jobs, spec, None, per_task, handed.append)
    return handed


def test_answers_stream_back_one_by_one_and_the_bound_holds_across_workers(server, dask_cluster):
    server.behaviour.latency = 0.05
    spec = spec_for(server, max_in_flight=3)
    handed: list[list] = []
    done = fan_out(dask_cluster, text_jobs(40), spec, None, 5, handed.append)
    assert done.tasks == 8  # 8 batches of 5
    # each answer is handed on as its worker logs it, not a batch at a time (with one
    # answer every ~50 ms per slot and 3 slots, most come alone)
    assert len(handed) > 8
    outcomes = [o for h in handed for o in h]
    assert sorted(o.job_id for o in outcomes) == sorted(f"q{i}" for i in range(40))
    assert all(o.ok for o in outcomes)
    assert server.max_in_flight == 3  # 2 workers x 2 slots x 5 requests queued, 3 on the wire


def test_requests_per_minute_limit(server, dask_cluster):
    spec = spec_for(server, max_in_flight=2, requests_per_minute=600)  # 10/s
    started = time.monotonic()
    collect(dask_cluster, text_jobs(12), spec, per_task=3)
    assert time.monotonic() - started >= 0.9  # 12 requests at <= 10/s, 2 at once
    assert len(server.seen) == 12


def test_cache_hits_never_reach_the_server_and_failures_are_not_stored(
    server, dask_cluster, tmp_path
):
    server.behaviour.scripted = {"prompt q3": ["400"]}
    spec = spec_for(server)
    outcomes = []
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        runner = dask_runner(dask_cluster, spec, None, 4)
        first = answer_jobs(text_jobs(10), spec, cache, runner, outcomes.append)
        assert (first.answered, first.failed, first.cache_hits) == (9, 1, 0)
        assert first.failures == {"BadRequest": 1}
        assert cache.stats().entries == 9

        server.reset_log()
        outcomes.clear()
        second = answer_jobs(text_jobs(10), spec, cache, runner, outcomes.append)
    assert second.cache_hits == 9 and second.requests == 1  # only the failure is re-sent
    assert [s.prompt for s in server.seen] == ["prompt q3"]
    assert sum(o.cached for o in outcomes) == 9


def test_judge_uses_the_same_cache_and_runner(server, tmp_path):
    server.behaviour.answer = lambda prompt, _: "The answer is B." if "clearly" in prompt else "Z"
    items = [
        JudgeItem("i1", "Which animal?", ("cat", "tiger"), "it is clearly a tiger"),
        JudgeItem("i2", "Which animal?", ("cat", "tiger"), "no idea"),
    ]
    spec = spec_for(server)
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        verdicts, stats = judge(items, spec, cache, local_runner(spec, None))
        assert verdicts["i1"].letter == "B" and verdicts["i2"].letter is None
        assert stats.answered == 2
        again, stats = judge(items, spec, cache, local_runner(spec, None))
    assert stats.cache_hits == 2 and len(server.seen) == 2
    assert again == verdicts


def test_a_named_key_never_enters_the_task_graph(server, dask_cluster, monkeypatch):
    """With `api_key_env`, the graph carries the resolver's name; each worker reads the
    key from its own environment (a missing one fails the batch as ApiKeyMissing)."""
    from pydantic import SecretStr

    from evalcore.api import EndpointSpec

    planted = "sk-planted-key-123456"
    monkeypatch.setenv("EVALCORE_TEST_GRAPH_KEY", planted)
    server.behaviour.api_key = planted
    spec = EndpointSpec(
        base_url=server.url, model="m", api_key_env="EVALCORE_TEST_GRAPH_KEY", timeout=2
    )
    shipped: list[dict] = []

    class SpyClient:  # records what goes into the graph
        def __init__(self, client) -> None:
            self.client, self.loop, self.id = client, client.loop, client.id

        def __getattr__(self, name):  # the rest (topics, nthreads) as the real client
            return getattr(self.client, name)

        def submit(self, fn, *args, **kwargs):
            shipped.append({"args": args, **kwargs})
            return self.client.submit(fn, *args, **kwargs)

        def cancel(self, futures) -> None:
            self.client.cancel(futures)

    outcomes: list = []
    resolver = "tasks.secrets:resolve_api_key"
    fan_out(
        SpyClient(dask_cluster),
        text_jobs(4),
        spec,
        SecretStr(planted),
        2,
        outcomes.extend,
        resolver,
    )
    assert len(outcomes) == 4 and all(o.ok for o in outcomes)  # the workers found the key
    assert shipped and all("api_key" not in kw for kw in shipped)
    assert planted not in repr(shipped)
