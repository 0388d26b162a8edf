"""One deployment over several hosts (`inference.placement: pool`), with real processes on
simulated hosts (tests/doubles/hosts.py):

- `srv`: the Prefect server (SQLite: PostgreSQL is what docs/cluster.md recommends for
  several hosts; not installable from the package registry here) and an S3 endpoint
  (`moto[server]`) holding the results-storage block's bucket;
- `flow`: a worker of the `evalcore` pool, running the eval flow run;
- `g1`, `g2`: workers of the `gpu` pool (`--limit 1`: one CPU device group each),
  running the `eval/shard` flow runs;
- the project (data, work dir, outputs) on the shared directory; each host's
  `local_dir` (SQLite files, device-group locks) on its own tmpfs.

Then, in order:
1. four shards land on both GPU hosts; `g2` is killed (its PID 1: the whole host) in
   the middle of a shard: the zombie automation marks its shard run Crashed, the shard
   task retries, `g1` resumes the shard from the shared logs; every sample is answered
   exactly once and at most the sample in flight on `g2` is asked twice;
2. the flow's host is killed mid-run: the flow run is marked Crashed, a worker on a
   new host takes the flow-run retry, and the shards finished before the kill are cache
   hits read through the S3 block.

About 4 minutes: marked slow (`make test-quick` skips it).
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.doubles.pool_world import (
    BIN,
    SILENCE_S,
    VIDEOS,
    World,
    answers,
    config,
    lock_holders,
    pool_world,
    records,
    worker_host,
)
from tests.doubles.scripted_model import read_calls

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    with pool_world(tmp_path_factory.mktemp("pool")) as world:
        yield world


def test_a_killed_gpu_host_loses_and_repeats_nothing(world):
    with world.explained():
        calls = world.cluster.shared / "calls-1.jsonl"
        run_id = world.run_eval(config(world, "slow", calls, delay_s=0.4))
        g1, g2 = world.workers["g1"], world.workers["g2"]

        def g2_mid_shard():
            """Shards hold their locks on both hosts, and the one running on g2 has answered
            two samples (more are to come: a shard holds 8 to 28)."""
            holders = lock_holders(world, "slow")
            if g1.hostname not in holders or g2.hostname not in holders:
                return None
            for r in world.shard_runs(run_id):
                if r["state_type"] == "RUNNING" and worker_host(r) == g2.hostname:
                    shard = r["parameters"]["order"]["shard"]
                    if records(world, "slow", f"shard{shard}-rank0.jsonl") >= 2:
                        return r, holders
            return None

        victim, holders = world._until(g2_mid_shard, 180, "a shard running on g2")
        asked_before = Counter(i for c in read_calls(calls) for i in c["ids"])
        killed_at = time.monotonic()
        g2.kill()
        assert g2.processes() == []  # nothing of the host is left
        assert g1.hostname in holders and g2.hostname in holders  # the shard locks name both

        run = world.wait_final(run_id)
        recovered_s = time.monotonic() - killed_at
        assert run["state_type"] == "COMPLETED", run["state"]["message"]
        crashed = world.get(f"flow_runs/{victim['id']}")
        assert crashed["state_type"] == "CRASHED" and "no heartbeat" in crashed["state"]["message"]

        # every sample answered exactly once, in the merged results
        total = 4 * VIDEOS
        counts = answers(world, "slow")
        assert len(counts) == total and set(counts.values()) == {1}
        report = world.project / "outputs" / "slow" / "slow_SyntheticVQA.json"
        samples = json.loads(report.read_text())["samples"]  # what the user reads
        assert len(samples) == total and {s["status"] for s in samples} == {"ok"}
        # asked twice: at most what was in flight on g2 (one rank, batch 1)
        asked = Counter(i for c in read_calls(calls) for i in c["ids"])
        twice = {i: n for i, n in asked.items() if n > 1}
        assert len(asked) == total and len(twice) <= 1, twice
        assert all(asked_before[i] == 1 for i in twice)  # asked on g2 before the kill
        # nothing of a shard is left on the host that lived: its worker and no more
        left = [world.cmdline(pid) for pid in g1.processes()]
        shard_parts = ("torchrun", "evalcore.inference", "prefect.engine", "flow-run execute")
        assert not [c for c in left if any(part in c for part in shard_parts)], left
        assert any("worker" in c for c in left), left
        runs = world.shard_runs(run_id)
        per_host = Counter(worker_host(r) for r in runs)
        print(
            f"\nshard runs per host {dict(per_host)}; recovered in {recovered_s:.0f} s "
            f"after the kill; asked twice: {len(twice)}"
        )


def test_a_killed_flow_host_is_retried_with_finished_shards_cached(world):
    with world.explained():
        calls = world.cluster.shared / "calls-2.jsonl"
        earlier = world.bucket_keys()  # the first run's results
        run_id = world.run_eval(config(world, "slow2", calls, delay_s=0.3))

        def some_shards_persisted():
            """Shard results in the bucket (Prefect writes one just after its task's
            Completed state), while other shards still run."""
            new = world.bucket_keys() - earlier
            return new if 0 < len(new) < 4 else None

        persisted = world._until(some_shards_persisted, 180, "a shard's result in the bucket")
        world.workers["flow"].kill()
        killed_at = time.monotonic()
        at_kill = world.bucket_keys() - earlier  # what the dead host wrote, all of it
        crashed = world.wait_final(run_id, timeout=SILENCE_S + 60)
        assert crashed["state_type"] == "CRASHED"
        crashed_s = time.monotonic() - killed_at

        world.start_worker("flow2", "evalcore")
        world._run([str(BIN / "prefect"), "flow-run", "retry", run_id])
        run = world.wait_final(run_id, attempt=2)
        assert run["state_type"] == "COMPLETED", run["state"]["message"]

        # the retry's shard tasks: those whose result the dead host stored are cache
        # hits, read through the S3 block; the others ran (and resumed)
        retried = [
            t
            for t in world.task_runs(run_id)
            if t["name"].startswith("infer ") and t["flow_run_run_count"] == 2
        ]
        cached = [t for t in retried if t["state_name"] == "Cached"]
        assert len(retried) == 4 and len(persisted) <= len(cached) <= len(at_kill), retried
        print(
            f"\nflow host killed: Crashed {crashed_s:.0f} s later, the retry done "
            f"{time.monotonic() - killed_at:.0f} s after the kill, {len(cached)} of 4 shards "
            f"cache hits from the bucket (server on {world.database})"
        )
        counts = answers(world, "slow2")
        assert len(counts) == 4 * VIDEOS and set(counts.values()) == {1}
        asked = Counter(i for c in read_calls(calls) for i in c["ids"])
        assert set(asked.values()) == {1}  # the GPU hosts lived: nothing asked twice
        # the unit results are in the bucket, not in the work dir
        assert not (world.project / "work" / "prefect-results").exists() or not any(
            (world.project / "work" / "prefect-results").iterdir()
        )
