"""Where to extract frames when a run's shards are on several GPU hosts: on the flow's
host (one extraction of the whole dataset) or beside the shards (each host extracts the
videos of its own shards), both into one frame cache on the shared work dir.

Each extractor is its own process (a host), forked from this one (evalcore imported, as
in a shard's flow run) and waiting; all of a variant's processes are then told to go at
the same moment, and each runs
`prepare_frames` (what `extract_dataset_frames` runs) on its samples, with its own
index journal and its own fingerprint memo (host-local), into a fresh cache shared by
the variant. A clip counts as available when its line is in the index (`on_done`). The
shards are the run's: `plan_shards(dataset_videos(dataset), [DeviceGroup(0)], 4)`;
with H hosts, shard k is on host k mod H (as shard k runs on device group k mod G).

- (a) flow host: one process extracts every video. Figures: its total time, and per
  shard the time until its first clip and until all its clips are available.
- (b) beside the shards: 2 (then 4) processes at once, each only its shards' videos.
  Figures: wall time until every clip is available, each process's time, the same
  per-shard times; the ratio (b) / (a).
- Hosts with their own cores, emulated: (a) pinned to one core against (b) as 2
  processes pinned to one core each (this machine has only 2).

Two datasets: the synthetic benchmark (48 videos, 320x240, 2-20 s) and a longer variant
(16 videos, 640x360, 60-120 s), both at the default frame plan (8 frames, 448 px).
Videos are generated once into bench/data/ (the long set takes about a minute).
Variants run interleaved, `--repeat` rounds; each variant shows its round with the
shortest wall time (the least disturbed by the machine's other users), and the load
average when the set began and ended.

    python bench/extraction_placement.py              # both sets, 2 rounds (2-3 minutes)
    python bench/extraction_placement.py --set short  # one set
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalcore.benchmarks import load_samples
from evalcore.config import DatasetSpec
from evalcore.dataset.synthetic import generate_benchmark
from evalcore.frames import FrameCache, FrameSettings
from evalcore.frames.index import prepare_frames
from evalcore.inference.torchrun.plan import DeviceGroup, Shard, dataset_videos, plan_shards

DATA = Path(__file__).resolve().parent / "data"
SHARDS = 4
SETS: dict[str, dict[str, Any]] = {
    "short": {"n_videos": 48, "seed": 0},
    "long": {
        "n_videos": 16,
        "seed": 0,
        "width": 640,
        "height": 360,
        "min_seconds": 60.0,
        "max_seconds": 120.0,
    },
}


@dataclass(frozen=True)
class Variant:
    label: str
    hosts: int
    cores: tuple[tuple[int, ...] | None, ...]  # per host: the CPUs it may use (None: all)


VARIANTS = (
    Variant("(a) flow host", 1, (None,)),
    Variant("(b) 2 hosts", 2, (None, None)),
    Variant("(b) 4 hosts", 4, (None, None, None, None)),
    Variant("(a) flow host, 1 core", 1, ((0,),)),
    Variant("(b) 2 hosts, 1 core each", 2, ((0,), (1,))),
)


def host(spec: dict[str, Any], go: Any, results: Any) -> None:
    """One extracting host (a forked process, evalcore already imported, as in a shard's
    flow run): waits for `go`, runs `prepare_frames` on its samples and sends when each
    clip became available (monotonic clock, the same in every process)."""
    if spec["cpus"] is not None:
        os.sched_setaffinity(0, spec["cpus"])  # its decoding processes inherit it
    go.wait()
    begun = time.monotonic()
    wanted = set(spec["ids"])
    samples = [s for s in load_samples(DatasetSpec(tsv=spec["tsv"])) if s.sample_id in wanted]
    cache = FrameCache(Path(spec["cache"]), Path(spec["memo"]))
    arrivals: dict[str, float] = {}

    def on_done(job, result) -> None:
        arrivals[str(job.path)] = time.monotonic()

    summary = prepare_frames(samples, FrameSettings(), cache, Path(spec["index"]), on_done)
    ended = time.monotonic()
    assert summary.decoded == summary.videos and not summary.failed, summary
    results.put({"host": spec["host"], "begun": begun, "ended": ended, "arrivals": arrivals})


def run_variant(variant: Variant, tsv: Path, plan: list[Shard], scratch: Path) -> dict[str, Any]:
    """The variant once, into a fresh cache: seconds from `go` to each event."""
    if scratch.exists():
        shutil.rmtree(scratch)
    # fork: the hosts start with this process's imports; each starts its own decoding
    # processes (a forkserver of its own: this process never starts one)
    context = multiprocessing.get_context("fork")
    go, results = context.Event(), context.Queue()
    hosts = []
    for h in range(variant.hosts):
        spec = {
            "host": h,
            "tsv": str(tsv),
            "ids": [i for shard in plan if shard.index % variant.hosts == h for i in shard.ids],
            "cache": str(scratch / "shared" / "frames"),
            "memo": str(scratch / f"host{h}-local" / "fingerprints.sqlite"),
            "index": str(scratch / "shared" / "frame-index" / f"host{h}.jsonl"),
            "cpus": variant.cores[h],
        }
        proc = context.Process(target=host, args=(spec, go, results))
        proc.start()
        hosts.append(proc)
    time.sleep(0.2)  # every host forked and waiting
    started = time.monotonic()
    go.set()
    reports = []
    while len(reports) < len(hosts):
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in hosts if p.exitcode not in (None, 0)]
            assert not failed, f"an extracting process failed (exit codes {failed})"
    reports.sort(key=lambda r: r["host"])
    for proc in hosts:
        proc.join()
        assert proc.exitcode == 0, f"an extracting process failed ({proc.exitcode})"
    arrivals = {path: t - started for r in reports for path, t in r["arrivals"].items()}
    return {
        "wall": max(arrivals.values()),
        "hosts": [r["ended"] - started for r in reports],
        "start_lag": max(r["begun"] - started for r in reports),
        "arrivals": arrivals,
    }


def shard_times(run: dict[str, Any], shard_videos: list[set[str]]) -> list[tuple[float, float]]:
    """Per shard: seconds until its first clip and until all its clips are available."""
    out = []
    for videos in shard_videos:
        times = [run["arrivals"][v] for v in videos]
        out.append((min(times), max(times)))
    return out


def measure_set(name: str, repeat: int, scratch: Path) -> None:
    tsv = generate_benchmark(DATA / f"placement-{name}", name="PlacementBench", **SETS[name])
    dataset = DatasetSpec(tsv=tsv)
    samples = {s.sample_id: s for s in load_samples(dataset)}
    plan = plan_shards(dataset_videos(dataset), [DeviceGroup(0)], SHARDS)
    shard_videos = [{str(samples[i].video_path) for i in shard.ids} for shard in plan]
    n_videos = len(set().union(*shard_videos))
    per_video = len(samples) / n_videos

    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {v.label: [] for v in VARIANTS}
    smallest = min(set().union(*shard_videos), key=lambda v: Path(v).stat().st_size)
    ids = tuple(i for i, s in samples.items() if str(s.video_path) == smallest)
    one_video = [Shard(0, 1, ids, plan[0].group)]
    fixed_runs = []
    for _ in range(repeat):
        for variant in VARIANTS:
            runs[variant.label].append(run_variant(variant, tsv, plan, scratch / "run"))
        fixed_runs.append(run_variant(VARIANTS[3], tsv, one_video, scratch / "run")["wall"])
    load_after = os.getloadavg()
    best = {label: min(rs, key=lambda r: r["wall"]) for label, rs in runs.items()}

    spec = SETS[name]
    print(
        f"\n## {name}: {n_videos} videos ({spec.get('width', 320)}x{spec.get('height', 240)}, "
        f"{spec.get('min_seconds', 2.0):g}-{spec.get('max_seconds', 20.0):g} s), "
        f"{len(samples)} questions, {SHARDS} shards of "
        f"{', '.join(str(len(v)) for v in shard_videos)} videos; best of {repeat}"
    )
    print(f"load average {_load(load_before)} at the start, {_load(load_after)} at the end\n")
    base = best["(a) flow host"]["wall"]
    base_1 = best["(a) flow host, 1 core"]["wall"]
    print(
        "| placement | processes | cores each | all frames available s | each process s | (b)/(a) |"
    )
    print("|---|---|---|---|---|---|")
    for variant in VARIANTS:
        run = best[variant.label]
        cores = "1" if variant.cores[0] is not None else f"{os.cpu_count()}, shared"
        ref = base_1 if variant.cores[0] is not None else base
        hosts = ", ".join(f"{t:.2f}" for t in run["hosts"])
        print(
            f"| {variant.label} | {variant.hosts} | {cores} | {run['wall']:.2f} | {hosts} | "
            f"{run['wall'] / ref:.2f} |"
        )

    print(
        "\nper shard, seconds until its first clip / all its clips are available "
        "(ratio: all clips, (b)/(a) with the same cores):\n"
    )
    print("| shard | videos | " + " | ".join(v.label for v in VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    a_times = {
        pinned: shard_times(best[label], shard_videos)
        for pinned, label in ((False, "(a) flow host"), (True, "(a) flow host, 1 core"))
    }
    for k, videos in enumerate(shard_videos):
        cells = []
        for variant in VARIANTS:
            first, last = shard_times(best[variant.label], shard_videos)[k]
            a_last = a_times[variant.cores[0] is not None][k][1]
            ratio = "" if variant.hosts == 1 else f" ({last / a_last:.2f})"
            cells.append(f"{first:.2f} / {last:.2f}{ratio}")
        print(f"| {plan[k].label} | {len(videos)} | " + " | ".join(cells) + " |")

    fixed = min(fixed_runs)
    rate = n_videos / base
    marginal = (base_1 - fixed) / (n_videos - 1)
    print(
        f"\nfixed cost of an extracting process on 1 core: {fixed:.2f} s until the one clip "
        "of a one-video dataset (its smallest) is available: fingerprinting, the decoding "
        "processes' start (a forkserver importing PyAV, numpy, PIL), one decode"
    )
    print(
        f"decoding: {1000 * marginal:.0f} ms of one core per further video ((a) on 1 core, "
        f"less the fixed cost); the flow host here makes {rate:.1f} videos/s on "
        f"{os.cpu_count()} cores ({1000 / rate:.0f} ms per video, fixed cost included)"
    )
    print(
        f"{SHARDS} shards asking {per_video:.1f} questions per video take "
        f"{SHARDS}/({per_video:.1f} t) videos/s at t s per question: they would wait on "
        f"this flow host (after its first clip) only at t < {SHARDS / (rate * per_video):.3f} s "
        "per question"
    )
    lag = max(r["start_lag"] for rs in runs.values() for r in rs)
    print(f"(largest delay from `go` to a process starting its work: {1000 * lag:.0f} ms)")


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.2f}" for x in avg)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=[*SETS, "both"], default="both")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every variant")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {_machine()}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-placement-"))
    try:
        for name in SETS if args.set == "both" else [args.set]:
            measure_set(name, args.repeat, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
