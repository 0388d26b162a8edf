"""Frame extraction: our pipeline against VLMEvalKit's pattern, and PyAV against decord.

Generates 720p H.264 test videos once (bench/data/, gitignored), then times, per video
and frame count, side by side in one run:

- vlmevalkit: what VLMEvalKit's `save_video_frames` does: `decord.VideoReader(path)`
  (decord's default threading), indices `int(i * len / (n + 1))`, `vr[i]` one by one,
  a full-size PIL JPEG (quality 75) per frame, one video after another.
- ours full size: `extract_videos` into a fresh cache with max_side=None (like for like),
  including its worker-process start; and at default settings (448 px, quality 90).
- pyav / decord: the two decoders alone, in this process, one thread each, on our
  sampled indices; this is what picks the default backend.

Then the whole set in one `extract_videos` call (workers=2) against the VLMEvalKit loop,
and the same call again on the warm cache; and the fixed cost of one call (worker
processes starting) on a tiny video. Every frame our code returns is checked against
the frame number drawn into the video. Times are the best of --repeat runs: the
machine is shared, and the minimum is the run least disturbed by others.

    python bench/frames.py            # 10 s, 60 s and 300 s videos (several minutes)
    python bench/frames.py --quick    # 10 s and 60 s only
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from evalcore.frames import (
    FrameCache,
    FrameEntry,
    FrameSettings,
    VideoJob,
    extract_videos,
    sample_uniform,
)
from evalcore.frames.decoders import DecordSource, PyAVSource
from tests.doubles.videos import read_frame_number, write_video

DATA = Path(__file__).resolve().parent / "data"
DURATIONS = (10, 60, 300)
FPS, WIDTH, HEIGHT, GOP = 30, 1280, 720, 250  # GOP 250 = x264's default keyint
# Keyframes 150-250 frames apart at seeded random places, as scene cuts make them in real
# footage. A fixed 250-frame grid would put VLMEvalKit's indices int(i * n / 9) exactly
# on keyframes (1000, 2000, ... in 9000 frames) and make its decoding look free.
GOP_RANGE = (150, 250)


def ensure_videos(folder: Path, durations: tuple[int, ...]) -> list[Path]:
    """The benchmark videos, encoded once."""
    return [
        ensure_video(folder / f"h264_720p_{seconds}s_v2.mp4", seconds, seed=seconds)
        for seconds in durations
    ]


def ensure_video(path: Path, seconds: int, seed: int) -> Path:
    """One 720p H.264 benchmark video (ultrafast, crf 23, textured with grain, keyframes
    at seeded places), encoded once; bench/models.py uses the same videos' recipe."""
    if not path.exists():
        started = time.perf_counter()
        part = path.with_suffix(".part.mp4")
        write_video(
            part,
            n_frames=seconds * FPS,
            fps=FPS,
            width=WIDTH,
            height=HEIGHT,
            gop=GOP,
            preset="ultrafast",
            crf=23,
            textured=True,
            keyframes=_keyframes(seconds * FPS, seed=seed),
        )
        part.rename(path)
        print(f"encoded {path.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def _keyframes(n_frames: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    frames, at = [], 0
    while at < n_frames:
        frames.append(at)
        at += rng.randint(*GOP_RANGE)
    return frames


def vlmevalkit_pattern(path: Path, nframe: int, out: Path, ours: bool = False) -> list[int]:
    """VLMEvalKit's save_video_frames, minus its dataset plumbing; with `ours`, on our
    sampled indices instead of its own (the same frames, so the same decoding work)."""
    import decord

    vid = decord.VideoReader(str(path))
    if ours:
        indices = sample_uniform(len(vid), nframe)
    else:
        step_size = len(vid) / (nframe + 1)
        indices = [int(i * step_size) for i in range(1, nframe + 1)]
    images = [vid[i].asnumpy() for i in indices]
    images = [Image.fromarray(arr) for arr in images]
    for i, im in enumerate(images, start=1):
        im.save(out / f"frame-{i}-of-{nframe}.jpg")
    return indices


def decode_only(source_cls, path: Path, nframe: int) -> list[int]:
    """One decoder alone (one thread) on our sampled indices, frames as PIL images."""
    with source_cls(path, threads=1) as source:
        indices = sample_uniform(source.info.n_frames, nframe)
        return [read_frame_number(np.asarray(im)) - i for i, _, im in source.read(indices)]


def decode_work(path: Path, indices: list[int]) -> int:
    """Frames a keyframe-aware decoder must decode to reach `indices` (sorted): from a
    target's preceding keyframe, or onward from the last target in the same GOP."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None]
    packets.sort()
    keys = [i for i, (_, key) in enumerate(packets) if key]
    position, total = -1, 0
    for target in sorted(set(indices)):
        key = keys[bisect_right(keys, target) - 1]
        total += target - (key - 1 if key > position else position)
        position = target
    return total


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def _load_all(report) -> list[np.ndarray]:
    return [entry.load() for entry in report.results.values()]


def verify(entry, expected: tuple[int, ...] | None = None) -> None:
    assert isinstance(entry, FrameEntry), entry
    got = [read_frame_number(f) for f in entry.load()]
    assert got == list(entry.indices), f"wrong frames: {got} != {list(entry.indices)}"


def per_case(paths: list[Path], repeat: int, scratch: Path) -> list[dict]:
    rows = []
    for path in paths:
        for nframe in (8, 32):
            times: dict[str, list[float]] = {}
            work = {}
            for r in range(repeat):
                for label, on_ours in (("vlmevalkit", False), ("vlmevalkit_our_idx", True)):
                    out = scratch / f"{label}-{path.stem}-{nframe}-{r}"
                    out.mkdir()
                    t, indices = timed(vlmevalkit_pattern, path, nframe, out, on_ours)
                    times.setdefault(label, []).append(t)
                    files = sorted(out.iterdir())
                    got = [read_frame_number(np.asarray(Image.open(p))) for p in files]
                    assert sorted(got) == sorted(indices), "VLMEvalKit pattern got wrong frames"
                    work[label] = decode_work(path, indices)
                job = VideoJob(path)
                for label, settings in (
                    ("ours_full", FrameSettings(nframe=nframe, max_side=None)),
                    ("ours_default", FrameSettings(nframe=nframe)),
                ):
                    cache = FrameCache(scratch / f"{label}-{path.stem}-{nframe}-{r}")
                    t, report = timed(extract_videos, [job], cache, settings)
                    verify(report.results[job])
                    times.setdefault(label, []).append(t)
                for label, cls in (("pyav", PyAVSource), ("decord", DecordSource)):
                    t, errors = timed(decode_only, cls, path, nframe)
                    assert not any(errors), f"{label} returned wrong frames"
                    times.setdefault(label, []).append(t)
            row: dict[str, Any] = {"video": path.stem.removesuffix("_v2"), "nframe": nframe}
            row["work_vlmevalkit"] = work["vlmevalkit"]
            row["work_ours"] = work["vlmevalkit_our_idx"]
            row.update({k: min(v) for k, v in times.items()})
            rows.append(row)
            print(_case_line(row), flush=True)
    return rows


def whole_set(paths: list[Path], repeat: int, scratch: Path) -> list[dict]:
    rows = []
    jobs = [VideoJob(p) for p in paths]
    for nframe in (8, 32):
        times: dict[str, list[float]] = {}
        for r in range(repeat):
            for label, on_ours in (("vlmevalkit", False), ("vlmevalkit_our_idx", True)):
                out = scratch / f"set-{label}-{nframe}-{r}"
                started = time.perf_counter()
                for i, path in enumerate(paths):
                    (out / str(i)).mkdir(parents=True)
                    vlmevalkit_pattern(path, nframe, out / str(i), on_ours)
                times.setdefault(label, []).append(time.perf_counter() - started)
            for label, settings in (
                ("ours_full", FrameSettings(nframe=nframe, max_side=None, workers=2)),
                ("ours_default", FrameSettings(nframe=nframe, workers=2)),
            ):
                cache = FrameCache(scratch / f"set-{label}-{nframe}-{r}")
                t, report = timed(extract_videos, jobs, cache, settings)
                assert report.decoded == len(paths), report
                for entry in report.results.values():
                    verify(entry)
                times.setdefault(label, []).append(t)
                t, again = timed(extract_videos, jobs, cache, settings)
                assert again.hits == len(paths)
                times.setdefault(f"{label}_hit", []).append(t)
                if label == "ours_default":
                    t, _ = timed(_load_all, again)
                    times.setdefault("load_default", []).append(t)
        row = {"nframe": nframe, "videos": len(paths)}
        row.update({k: min(v) for k, v in times.items()})
        rows.append(row)
        print(_set_line(row), flush=True)
    return rows


def call_overhead(scratch: Path, repeat: int) -> float:
    """Seconds one extract_videos call costs beyond decoding: a 10-frame 160x120 video."""
    tiny = write_video(scratch / "tiny.mp4", n_frames=10)
    best = float("inf")
    for r in range(max(3, repeat)):
        cache = FrameCache(scratch / f"tiny-{r}")
        t, report = timed(extract_videos, [VideoJob(tiny)], cache, FrameSettings())
        assert report.decoded == 1
        best = min(best, t)
    return best


def _case_line(r: dict) -> str:
    same = r["vlmevalkit_our_idx"]
    return (
        f"| {r['video']} | {r['nframe']} | {r['work_vlmevalkit']} / {r['work_ours']} | "
        f"{r['vlmevalkit']:.2f} | {same:.2f} | {r['ours_full']:.2f} | "
        f"**{same / r['ours_full']:.2f}x** | {r['ours_default']:.2f} | "
        f"{same / r['ours_default']:.2f}x | {r['pyav']:.2f} | {r['decord']:.2f} | "
        f"{r['decord'] / r['pyav']:.2f}x |"
    )


def _set_line(r: dict) -> str:
    n, frames, same = r["videos"], r["videos"] * r["nframe"], r["vlmevalkit_our_idx"]
    return (
        f"| {r['nframe']} | {r['vlmevalkit']:.2f} | {same:.2f} ({n / same:.2f} videos/s) | "
        f"{r['ours_full']:.2f} ({n / r['ours_full']:.2f} videos/s, "
        f"{frames / r['ours_full']:.0f} frames/s) | **{same / r['ours_full']:.2f}x** | "
        f"{r['ours_default']:.2f} | {same / r['ours_default']:.2f}x | "
        f"{1000 * r['ours_default_hit']:.0f} ms | {1000 * r['load_default']:.0f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the 10 s and 60 s videos")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument("--data", type=Path, default=DATA, help="where the videos are kept")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    paths = ensure_videos(args.data, DURATIONS[:2] if args.quick else DURATIONS)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {_machine()}")
    print(
        f"# best of {args.repeat}; seconds; ratio = VLMEvalKit pattern on the same frames / ours\n"
    )
    print(
        "| video | nframe | frames to decode: VLMEvalKit idx / ours | VLMEvalKit | "
        "VLMEvalKit on our idx | ours full-size | ratio | ours default | ratio "
        "| PyAV alone | decord alone | decord/PyAV |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    scratch = Path(tempfile.mkdtemp(prefix="bench-frames-"))
    try:
        cases = per_case(paths, args.repeat, scratch)
        print(f"\nwhole set ({len(paths)} videos, one call, workers=2), seconds:\n")
        print(
            "| nframe | VLMEvalKit loop | VLMEvalKit loop on our idx | ours full-size | ratio "
            "| ours default | ratio | cache hit (whole set) | load all frames (default) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        sets = whole_set(paths, args.repeat, scratch)
        overhead = call_overhead(scratch, args.repeat)
        print(f"\nfixed cost of one extract_videos call (tiny video): {overhead:.2f} s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        figures = {"cases": cases, "sets": sets, "call_overhead": overhead}
        args.json.write_text(json.dumps(figures, indent=1))


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


if __name__ == "__main__":
    main()
