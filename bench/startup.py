"""Fixed costs: an `evalcore run` whose every unit is cached, and a shard launch.

- fixed cost: wall time of `python -m flows.cli.main run demo.yaml` (the demo's config: 60
  videos, 240 questions, `reference` and `random`) after a first run filled every cache,
  so the run decodes nothing and calls no model; once with a temporary Prefect server
  (none running), once against a server `evalcore serve` runs in the project (skipped,
  saying why, if it cannot start). `--baseline REV` times the same runs with the code of
  a git revision (exported with `git archive`), for a before/after on the same machine.
- shard launch: one torchrun shard of one sample (`reference` model, 1 rank; with
  `--transformers` also a tiny random-weight Qwen2.5-VL checkpoint), timed from
  the launch to the rank's phases (`started`, `ready`: the model built, `done`) and to
  torchrun's exit; the first launch of a process (it starts the preload server), the
  next ones (server running), and with `inference.preload: false` (the launch as it was:
  torchrun and the rank each import torch).

Ratios are "then / now" against the figures this work started from: 12-14 s fixed cost
(issue 13), 3.9 s per shard attempt before a rank answers (issue 13), and bench/README.md's
2.6 s launch -> `started`, 2.7 s -> `ready`, 3.7 s -> torchrun exited. The machine is
shared: each figure is the best of `--repeat` runs, with the load average beside it.

    .venv/bin/python bench/startup.py                   # about 2-3 minutes
    .venv/bin/python bench/startup.py --baseline 9e568bf --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ISSUE_FIXED_S = (12.0, 14.0)
ISSUE_SHARD_S = 3.9
README_SHARD = {"started": 2.6, "ready": 2.7, "exited": 3.7}
SERVE_TIMEOUT_S = 300


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def env_for(code: Path, home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    return env


def cli_module(code: Path) -> str:
    """The command line's module in that code (`flows.cli` before the move to flows/cli/)."""
    return "flows.cli.main" if (code / "flows" / "cli" / "main.py").exists() else "flows.cli"


def timed_run(code: Path, project: Path, config: Path, home: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", cli_module(code), "run", str(config)],
        cwd=project,
        env=env_for(code, home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"evalcore run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def fixed_costs(
    code: Path, project: Path, config: Path, repeat: int, label: str, serve: bool
) -> dict:
    """Best and median wall time of fully cached runs, temporary server, and (`serve`)
    against `evalcore serve` if it starts."""
    home = project / f"home-{label}"
    timed_run(code, project, config, home)  # fills the caches (and the Prefect database)
    out: dict = {}
    times = []
    for _ in range(repeat):
        seconds, log = timed_run(code, project, config, home)
        assert "Cached" in log, "a unit ran: not a fully cached run"
        times.append(seconds)
    out["temporary"] = summary(times)
    if not serve:
        return out

    served = project / "served"
    served.mkdir(exist_ok=True)
    for sub in ("data", "work", "outputs"):  # the same caches, seen from the served dir
        if not (served / sub).exists():
            (served / sub).symlink_to(project / sub, target_is_directory=True)
    port = free_port()
    serve_env = env_for(code, served / ".prefect")
    start = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "serve", "--port", str(port), "--videos", "60"],
        cwd=served,
        env=serve_env,
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT_S,
    )
    try:
        if start.returncode != 0:
            out["served"] = {"skipped": f"evalcore serve failed: {start.stderr[-500:]}"}
            return out
        times = []
        for i in range(repeat + 1):  # the first run creates the flow in that database
            seconds, log = timed_run(code, served, config, served / ".prefect")
            assert "using the server of `evalcore serve`" in log, log[-2000:]
            if i:
                times.append(seconds)
        out["served"] = summary(times)
    finally:
        subprocess.run(
            [sys.executable, "-m", "flows.cli.main", "stop"],
            cwd=served,
            env=serve_env,
            capture_output=True,
            timeout=120,
        )
    return out


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "best_s": round(ordered[0], 2),
        "median_s": round(ordered[len(ordered) // 2], 2),
        "runs": [round(t, 2) for t in times],
        "load": load(),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SHARD_LAUNCHES = """
import json, sys, time
from pathlib import Path
from evalcore.cell import Cell, extract_dataset_frames
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.workspace import Workspace

tsv, root = Path(sys.argv[1]), Path(sys.argv[2])
preload, launches = sys.argv[3] == "1", int(sys.argv[4])
model = ModelSpec.model_validate_json(sys.argv[5])
frames = FrameSettings(**(model.frames or {}))
dataset = DatasetSpec(tsv=tsv, limit=1)
shared = root / "shared"
extract_dataset_frames(dataset, frames, Workspace(shared, shared))
inference = InferenceSettings(launcher="torchrun", shards=1, ranks_per_shard=1, preload=preload)
(shard,) = plan_shards(dataset_videos(dataset), device_groups([], 1), 1)
cell = Cell(model=model, dataset=dataset, trial=0, seed=0, frames=frames)
for i in range(launches):
    work = root / f"launch-{int(preload)}-{i}"
    work.mkdir()
    for sub in ("frames", "frame-index"):
        (work / sub).symlink_to(shared / sub, target_is_directory=True)
    ws = Workspace(work, root / f"out-{i}")
    t0 = time.time()
    summary = infer_shard(cell, shard, inference, ws)
    (launch,) = shard_paths(cell, ws).root.glob("shard*/launch-*")
    begin = (launch / "job.json").stat().st_mtime  # written just before torchrun starts
    phases = json.loads((launch / "rank0.json").read_text())["phases"]
    print(json.dumps({
        **{k: round(v - begin, 3) for k, v in phases.items()},
        "exited": round(summary.launch_seconds, 3),  # from torchrun's start
        "shard_s": round(time.time() - t0, 3),
    }), flush=True)
"""


def shard_launches(code: Path, project: Path, tsv: Path, repeat: int, model: dict) -> dict:
    """Per mode, the best of `repeat` processes for launch 1 and of the later launches."""
    out = {}
    for preload in (True, False):
        first, later = [], []
        for _ in range(repeat):
            root = Path(tempfile.mkdtemp(dir=project, prefix="shards-"))
            done = subprocess.run(
                [sys.executable, "-c", SHARD_LAUNCHES, str(tsv), str(root), str(int(preload))]
                + ["3", json.dumps(model)],
                env={**env_for(code, project / "home-shards"), "HF_HUB_OFFLINE": "1"},
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise RuntimeError(f"shard launch failed:\n{done.stderr[-3000:]}")
            runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            first.append(runs[0])
            later += runs[1:]
            shutil.rmtree(root, ignore_errors=True)
        name = "preload" if preload else "no preload"
        out[name] = {
            "first launch": min(first, key=lambda r: r["ready"]),
            "next launches": min(later, key=lambda r: r["ready"]),
            "load": load(),
        }
    return out


def export(rev: str, into: Path) -> Path:
    """The tree of git revision `rev`, without touching any work tree."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", help="also time a git revision's code (e.g. 9e568bf)")
    parser.add_argument("--no-serve", action="store_true", help="skip the evalcore serve run")
    parser.add_argument(
        "--transformers",
        action="store_true",
        help="also time launches of a tiny random-weight Qwen2.5-VL (transformers kind)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from evalcore.dataset.synthetic import generate_benchmark

    figures: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_at_start": load(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        project = Path(tmp)
        tsv = generate_benchmark(project / "data" / "synthetic", n_videos=60, seed=0)
        config = project / "demo.yaml"  # flows.demo's config: both built-in models
        config.write_text(
            yaml.safe_dump(
                {
                    "datasets": [{"tsv": str(tsv.relative_to(project))}],
                    "models": [
                        {"name": "reference", "kind": "reference"},
                        {"name": "random", "kind": "random"},
                    ],
                }
            )
        )
        codes = {"now": REPO}
        if args.baseline:
            codes[f"baseline {args.baseline}"] = export(args.baseline, project / "baseline")
        for label, code in codes.items():  # a baseline has no served mode: it never used one
            serve = label == "now" and not args.no_serve
            figures[f"fixed cost ({label})"] = fixed_costs(
                code, project, config, args.repeat, label, serve
            )
        reference = {"name": "bench", "kind": "reference"}
        figures["shard launch"] = shard_launches(REPO, project, tsv, args.repeat, reference)
        if args.transformers:
            from evalcore.models.transformers import build_tiny_checkpoint

            checkpoint = build_tiny_checkpoint("qwen2_5_vl", project / "tiny-qwen2_5_vl")
            tiny = {
                "name": "tiny",
                "kind": "transformers",
                "params": {"model": str(checkpoint)},
                "generation": {"max_new_tokens": 8},
                "frames": {"fps": 2.0, "max_frames": 8, "max_side": None},
            }
            figures["shard launch, tiny Qwen2.5-VL"] = shard_launches(
                REPO, project, tsv, args.repeat, tiny
            )
    figures["load_at_end"] = load()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    report(figures)


def report(figures: dict) -> None:
    print(f"\nmachine: {figures['machine']}; load average at start {figures['load_at_start']}")
    print("\n| fixed cost, every unit cached | best s | median s | issue 13 (12-14 s) / best |")
    print("|---|---|---|---|")
    for key, value in figures.items():
        if not key.startswith("fixed cost"):
            continue
        for server, row in value.items():
            if "skipped" in row:
                print(f"| {key}, {server} server | skipped: {row['skipped']} | | |")
                continue
            lo, hi = (t / row["best_s"] for t in ISSUE_FIXED_S)
            print(
                f"| {key}, {server} server | {row['best_s']} | {row['median_s']} "
                f"| {lo:.1f}-{hi:.1f}x |"
            )
    print(
        "\n| shard launch, 1 sample | launch -> started | -> ready | -> done | torchrun exited "
        "| 3.9 s (issue) / ready | README 2.7 s / ready |"
    )
    print("|---|---|---|---|---|---|---|")
    for key in [k for k in figures if k.startswith("shard launch")]:
        model = key.partition(", ")[2] or "reference"
        for mode, rows in figures[key].items():
            for which in ("first launch", "next launches"):
                r = rows[which]
                print(
                    f"| {model}, {mode}, {which} | {r['started']} | {r['ready']} | {r['done']} "
                    f"| {r['exited']} | {ISSUE_SHARD_S / r['ready']:.1f}x "
                    f"| {README_SHARD['ready'] / r['ready']:.1f}x |"
                )
    print(f"\nload average at end {figures['load_at_end']}")


if __name__ == "__main__":
    main()
