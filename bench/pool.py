"""One run's shards on the flow's host (`placement: local`, today's path) against the same
shards placed on two other hosts' `gpu` workers (`placement: pool`), on simulated hosts
(tests/doubles/pool_world.py: root only), in one world, one after the other:

- the same 64 questions of the synthetic benchmark in 4 shards, answered by the scripted
  model at `--delay` seconds each (a stand-in for a model's time per sample);
- local: the flow host runs 2 device groups (2 shards at a time); pool: 2 GPU hosts with
  one group each (2 shards at a time), so the parallelism is equal and the difference is
  what placement costs: a flow run per shard (its worker's pickup, a fresh interpreter,
  the order rebuilt), against a thread of the eval flow.

Prints each run's wall time (the eval flow run's start to end, from the server), the
shards' own time (`seconds` of their summaries), the per-shard overhead of placement and
the ratio, with the machine's load. On this 2-core machine every "host" shares the same
two cores: the figure is the fixed cost per shard, not a speed-up from more hardware.

    .venv/bin/python bench/pool.py [--delay 0.3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the simulated cluster is a test double: tests.doubles
from tests.doubles.pool_world import config, pool_world  # noqa: E402


def seconds(start: str, end: str) -> float:
    parse = dt.datetime.fromisoformat
    return (parse(end) - parse(start)).total_seconds()


def run(world, name: str, delay: float, placement: str, groups: int) -> dict:
    calls = world.cluster.shared / f"calls-{name}.jsonl"
    run_id = world.run_eval(config(world, name, calls, delay, placement, groups))
    flow_run = world.wait_final(run_id, timeout=600)
    assert flow_run["state_type"] == "COMPLETED", flow_run["state"]["message"]
    shards = [t for t in world.task_runs(run_id) if t["name"].startswith("infer ")]
    summaries = [
        json.loads(p.read_text())
        for p in (world.project / "work" / "shards" / name).rglob("placed/*.json")
    ]
    placed = world.shard_runs(run_id)
    pickup = [seconds(r["expected_start_time"], r["start_time"]) for r in placed]
    return {
        "placement": placement,
        "wall_s": seconds(flow_run["start_time"], flow_run["end_time"]),
        "shard_tasks_s": sum(seconds(t["start_time"], t["end_time"]) for t in shards),
        "shard_work_s": sum(s["seconds"] for s in summaries),
        "pickup_s": sum(pickup) / len(pickup) if pickup else 0.0,
        "hosts": sorted({r["labels"].get("prefect.worker.name", "?") for r in placed}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.3, help="seconds per answer")
    args = parser.parse_args()
    pools = (("flow", "evalcore"), ("g1", "gpu"), ("g2", "gpu"))
    with pool_world(Path(tempfile.mkdtemp(prefix="evalcore-bench-pool-")), pools) as world:
        load = os.getloadavg()
        local = run(world, "local", args.delay, "local", 2)
        pool = run(world, "pool", args.delay, "pool", 1)
        after = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load {load[0]:.1f} before, {after[0]:.1f} after; "
        f"server on {world.database}; 64 questions, 4 shards, {args.delay} s per answer"
    )
    print("| placement | run wall s | shard tasks s (sum) | pickup s per shard run | hosts |")
    print("|---|---|---|---|---|")
    for r in (local, pool):
        print(
            f"| {r['placement']} | {r['wall_s']:.1f} | {r['shard_tasks_s']:.1f} | "
            f"{r['pickup_s']:.1f} | {', '.join(r['hosts']) or 'the flow host'} |"
        )
    extra = (pool["shard_tasks_s"] - local["shard_tasks_s"]) / 4
    print(
        f"pool / local wall time: {pool['wall_s'] / local['wall_s']:.2f}x; "
        f"placement costs {extra:.1f} s per shard (pool shard work itself: "
        f"{pool['shard_work_s']:.1f} s in all)"
    )


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"(bench {time.monotonic() - started:.0f} s)")
