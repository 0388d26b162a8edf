"""Sharded local inference on CPU: 1 shard against 2, launch overhead, resume after a kill.

With the CPU-bound `reference` model on the synthetic benchmark (bench/data/, made once):

- scaling: the whole benchmark as 1 shard x 1 rank, then as 2 shards x 1 rank on two
  CPU device groups running side by side (as the flow runs them), each from empty
  logs; the ratio of the wall times is the speed-up (target >= 1.7x on 2 cores).
- launch overhead: a shard with one sample, split into torchrun + imports until the
  rank reports `started`, building the model (`ready`), and exit after `done`; and,
  from the scaling runs, launch wall time minus the ranks' inference time.
- resume: one shard killed halfway (SIGKILL to torchrun; the ranks die by their
  parent-death signal, checked), then the time to resume it from its log, against the
  time of the uninterrupted run.

Shards are called as the Prefect task calls them (`infer_shard`), without Prefect: its
per-task cost (~5-8 ms) is noise here. The machine may be shared: `--repeat N` keeps
the best of N for each timing.

    python bench/shards.py                  # 40 videos (~160 questions)
    python bench/shards.py --videos 16      # quicker, overhead weighs more
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evalcore.cell import Cell, CellTrials, extract_dataset_frames
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.dataset.synthetic import generate_benchmark
from evalcore.frames import FrameSettings
from evalcore.inference.torchrun.launch import ShardFailed
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.processes import alive
from evalcore.workspace import Workspace

DATA = Path(__file__).resolve().parent / "data"
FRAMES = FrameSettings()


def fresh_workspace(shared: Path, root: Path, name: str) -> Workspace:
    """Empty logs, the shared frame cache (symlinked, read-only)."""
    work = root / name
    work.mkdir(parents=True)
    for sub in ("frames", "frame-index"):
        (work / sub).symlink_to(shared / sub, target_is_directory=True)
    return Workspace(work, root / f"{name}-out")


def cell_of(model: ModelSpec, dataset: DatasetSpec) -> Cell:
    return Cell(model, dataset, trial=0, seed=0, frames=FRAMES)


def plan_cell_shards(dataset: DatasetSpec, inference: InferenceSettings):
    groups = device_groups([], inference.ranks_per_shard, 1, inference.cpu_groups)
    return plan_shards(dataset_videos(dataset), groups, inference.shards)


def read_predictions(ws: Workspace, model: ModelSpec, dataset: DatasetSpec) -> dict:
    cell = cell_of(model, dataset)
    return CellTrials.of([cell]).current_records(ws)[cell.trial].records


def run_cell(ws: Workspace, model: ModelSpec, dataset: DatasetSpec, inference: InferenceSettings):
    """All shards of the cell at once (one thread each, as the flow's task runner does)."""
    plan = plan_cell_shards(dataset, inference)
    cell = cell_of(model, dataset)
    started = time.perf_counter()
    with ThreadPoolExecutor(len(plan)) as pool:
        summaries = list(pool.map(lambda s: infer_shard(cell, s, inference, ws), plan))
    return time.perf_counter() - started, summaries


def rank_statuses(ws: Workspace, model: ModelSpec, dataset: DatasetSpec) -> list[dict]:
    root = shard_paths(cell_of(model, dataset), ws).root
    return [json.loads(p.read_text()) for p in sorted(root.glob("shard*/launch-*/rank*.json"))]


def launch_phases(ws: Workspace, model: ModelSpec, dataset: DatasetSpec) -> dict[str, float]:
    """Seconds from launch to each phase of the (single) rank of the (single) launch."""
    root = shard_paths(cell_of(model, dataset), ws).root
    (launch,) = root.glob("shard*/launch-*")
    begin = (launch / "job.json").stat().st_mtime
    (status,) = rank_statuses(ws, model, dataset)
    return {phase: t - begin for phase, t in status["phases"].items()}


def scaling(shared, root, model, dataset, repeat):
    out = {}
    for shards in (1, 2):
        best = None
        for i in range(repeat):
            ws = fresh_workspace(shared, root, f"scale-{shards}-{i}")
            inference = InferenceSettings(
                launcher="torchrun", shards=shards, ranks_per_shard=1, cpu_groups=shards
            )
            seconds, summaries = run_cell(ws, model, dataset, inference)
            answered = sum(s.answered for s in summaries)
            assert answered == len(read_predictions(ws, model, dataset))
            statuses = rank_statuses(ws, model, dataset)
            inference_s = max(st["summary"]["seconds"] for st in statuses)
            overhead = [
                s.launch_seconds - st["summary"]["seconds"]
                for s, st in zip(summaries, statuses, strict=True)
            ]
            run = {
                "wall_s": round(seconds, 2),
                "answered": answered,
                "rank_inference_s": round(inference_s, 2),
                "launch_overhead_s": [round(o, 2) for o in overhead],
            }
            if best is None or run["wall_s"] < best["wall_s"]:
                best = run
        out[f"{shards}_shard"] = best
    out["speedup"] = round(out["1_shard"]["wall_s"] / out["2_shard"]["wall_s"], 2)
    return out


def overhead(shared, root, model, small, repeat):
    best = None
    for i in range(repeat):
        ws = fresh_workspace(shared, root, f"overhead-{i}")
        inference = InferenceSettings(launcher="torchrun", shards=1, ranks_per_shard=1)
        seconds, (summary,) = run_cell(ws, model, small, inference)
        phases = launch_phases(ws, model, small)
        run = {
            "wall_s": round(seconds, 2),
            "to_started_s": round(phases["started"], 2),
            "to_ready_s": round(phases["ready"], 2),
            "to_done_s": round(phases["done"], 2),
            "exit_after_done_s": round(summary.launch_seconds - phases["done"], 2),
        }
        if best is None or run["wall_s"] < best["wall_s"]:
            best = run
    return best


def resume(shared, root, model, dataset, full_seconds):
    ws = fresh_workspace(shared, root, "resume")
    inference = InferenceSettings(launcher="torchrun", shards=1, ranks_per_shard=1)
    (shard,) = plan_cell_shards(dataset, inference)
    cell = cell_of(model, dataset)
    total = len(shard.ids)
    outcome: dict = {}

    def first_attempt():
        try:
            infer_shard(cell, shard, inference, ws)
        except ShardFailed as exc:
            outcome["error"] = str(exc).splitlines()[0]

    thread = threading.Thread(target=first_attempt)
    started = time.perf_counter()
    thread.start()
    while thread.is_alive() and len(read_predictions(ws, model, dataset)) < total // 2:
        time.sleep(0.05)
    launch = next(shard_paths(cell, ws).root.glob("shard*/launch-0"))
    os.killpg(int((launch / "torchrun.pid").read_text()), signal.SIGKILL)
    killed_at = time.perf_counter() - started
    thread.join()
    rank_pids = [st["pid"] for st in rank_statuses(ws, model, dataset)]
    time.sleep(0.5)
    orphans = [p for p in rank_pids if alive(p)]
    done_before = len(read_predictions(ws, model, dataset))
    t0 = time.perf_counter()
    summary = infer_shard(cell, shard, inference, ws)
    resume_s = time.perf_counter() - t0
    assert summary.skipped == done_before and len(read_predictions(ws, model, dataset)) == total
    return {
        "samples": total,
        "killed_after_s": round(killed_at, 2),
        "done_before_kill": done_before,
        "first_attempt_error": outcome.get("error", ""),
        "orphaned_ranks": len(orphans),
        "resume_s": round(resume_s, 2),
        "resume_answered": summary.answered,
        "uninterrupted_s": full_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--kind", default="reference", help="model kind (CPU-bound)")
    parser.add_argument("--params", default="{}", help="model params as JSON")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    tsv = generate_benchmark(
        DATA / f"shards-{args.videos}", n_videos=args.videos, seed=0, name="ShardBench"
    )
    dataset = DatasetSpec(tsv=tsv)
    small = DatasetSpec(tsv=tsv, limit=1)
    model = ModelSpec(name="bench", kind=args.kind, params=json.loads(args.params))
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        root = Path(tmp)
        shared = root / "shared"
        t0 = time.perf_counter()
        for d in (dataset, small):
            extract_dataset_frames(d, FRAMES, Workspace(shared, shared))
        frames_s = time.perf_counter() - t0

        results = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "load_avg_at_start": round(os.getloadavg()[0], 2),
            "model": args.kind,
            "videos": args.videos,
            "frames_s": round(frames_s, 2),
            "scaling": scaling(shared, root, model, dataset, args.repeat),
            "overhead_one_sample": overhead(shared, root, model, small, args.repeat),
        }
        full = results["scaling"]["1_shard"]["wall_s"]
        results["resume"] = resume(shared, root, model, dataset, full)
        results["load_avg_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=2))
    sc, ov, rs = results["scaling"], results["overhead_one_sample"], results["resume"]
    print(
        f"\n| run | wall s |\n|---|---|\n"
        f"| 1 shard x 1 rank, {sc['1_shard']['answered']} questions | {sc['1_shard']['wall_s']} |\n"
        f"| 2 shards x 1 rank (2 CPU groups) | {sc['2_shard']['wall_s']} |\n"
        f"| speed-up | {sc['speedup']}x |\n"
        f"| launch, 1 sample: to `started` / `ready` / `done` / exit | "
        f"{ov['to_started_s']} / {ov['to_ready_s']} / {ov['to_done_s']} / {ov['wall_s']} |\n"
        f"| killed at half ({rs['done_before_kill']}/{rs['samples']} done), resume | "
        f"{rs['resume_s']} (uninterrupted {rs['uninterrupted_s']}) |"
    )


if __name__ == "__main__":
    main()
