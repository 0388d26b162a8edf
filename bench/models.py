"""Three model families on the same videos: decode once for the set, or once per sample.

Builds three tiny random-weight checkpoints of different families (`build_tiny_checkpoint`:
qwen2_5_vl, llava_onevision, internvl), generates 720p H.264 videos of 10-60 s once
(bench/data/, gitignored) and 2-4 multiple-choice questions per video (several samples
share a video, as in real benchmarks). Both paths sample at 2 frames per second over the
whole video at full size, so every sample gets the same number of frames on both sides;
each model loads once (not timed) and answers each sample alone (batch 1) with
`max_new_tokens=1`, torch on 1 thread. Then, side by side in one run, per model:

- **ours**: the pipeline's path. `extract_videos(jobs, FrameCache, FrameSettings(fps=2.0,
  max_frames=768, max_side=None))` with its 2 worker processes (PyAV, JPEG quality 90),
  called before each model as every cell calls it: the first model's call decodes, the
  next two find every video in the cache. Then per sample the real adapter:
  `build_model("transformers", {"model": ckpt})`, `load(Runtime())`, `generate([request],
  GenerationConfig(max_new_tokens=1))` with the request made by the runner's own
  `build_request`; inside it `entry.load()` reads the JPEGs into an array and the
  family's processor call makes the model inputs.
- **peers**: what the video-native adapters of VLMEvalKit and lmms-eval do through
  qwen-vl-utils (`qwen-vl-utils/src/qwen_vl_utils/vision_process.py` in QwenLM/Qwen3-VL):
  per sample, `fetch_video` -> `_read_video_decord`: a `decord.VideoReader` over the whole
  file (decord's default threads), the frame count from `smart_nframes` (fps 2,
  at least 4 frames, at most min(768, video frames), floored to a multiple of 2), indices
  `round(linspace(0, frames - 1, n))`, `get_batch`; then `smart_resize` (sides multiples of
  28 for patch 14, pixels per frame between 128 x 28 x 28 and min(768 x 28 x 28, the
  total-pixel budget 128000 x 28 x 28 x 0.9 / n x 2)) and torchvision's bicubic antialiased
  resize to float32, which is what the model's processor is given. The rules are
  reimplemented here from that file; the processor call (the same processor object,
  `do_sample_frames=False`, plus the sampling rate for Qwen2.5-VL as qwen-vl-utils returns
  it) and the generation (the adapter's own `model.generate` step) are the same as ours.

The peers' path is applied to all three families for a like-for-like count; in the
peers' own code only the Qwen adapters go through qwen-vl-utils (lmms-eval's
`llava_onevision.py` `load_video` also opens a `decord.VideoReader` per sample, but takes
a fixed count, `linspace(0, frames - 1, max_frames_num)`, and no resize). lmms-eval's
`qwen2_5_vl.py` also opens the video a second time to read one frame for its size, and
then keeps 32 of the decoded frames (`max_num_frames`); neither is counted here, so the
baseline is if anything cheaper than theirs. The older qwen-vl-utils in QwenLM/Qwen2-VL
rounds the frame count instead of flooring it and has a smaller total-pixel budget.

Reported: decoding CPU seconds (this process's CPU time plus, for ours, the extraction
workers': they are children of the multiprocessing forkserver, whose own and reaped
children's CPU is read from /proc) and wall seconds, per model and for the set; the same
for the whole (decoding + preprocessing + generation); the per-sample preprocessing
(frames -> processor inputs: JPEG -> array or resize, then the processor call); the
ratios peers / ours; the load average at start and end.

    python bench/models.py            # 6 videos (10-60 s) x 2 questions, 4-5 minutes
    python bench/models.py --quick    # 2 videos (10, 20 s) x 2 questions
    python bench/models.py --videos 4 --questions 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frames import HEIGHT, WIDTH, ensure_video  # bench/frames.py: the same videos' recipe

from evalcore.frames import FrameCache, FrameEntry, FrameSettings, VideoJob, extract_videos
from tests.doubles.videos import read_frame_number

# Heavy imports (torch, transformers, decord) stay inside functions: the extraction
# workers re-import this module, and must not pay for them.

DATA = Path(__file__).resolve().parent / "data"
ARCHS = ("qwen2_5_vl", "llava_onevision", "internvl")
SAMPLE_FPS = 2.0

# qwen-vl-utils' constants (vision_process.py, QwenLM/Qwen3-VL)
QWEN_FRAME_FACTOR = 2
QWEN_MIN_FRAMES = 4
QWEN_MAX_FRAMES = 768
QWEN_PATCH_FACTOR = 28  # image_patch_size 14 x spatial merge 2 (Qwen2/2.5-VL callers)
QWEN_MIN_PIXELS = 128 * 28 * 28
QWEN_MAX_PIXELS = 768 * 28 * 28
QWEN_TOTAL_PIXELS = 128000 * 28 * 28 * 0.9  # MODEL_SEQ_LEN x factor^2 x 0.9
QWEN_MAX_RATIO = 200

OURS = FrameSettings(fps=SAMPLE_FPS, max_frames=QWEN_MAX_FRAMES, max_side=None, workers=2)

QUESTIONS = (
    ("Which way does the texture move?", ("left", "right", "up", "down")),
    ("How many bars are white in the top band at the start?", ("2", "5", "7", "9")),
    ("What is the dominant colour?", ("red", "green", "blue", "grey")),
    ("Is there a scene cut?", ("yes", "no", "twice", "cannot tell")),
)


# ---------------------------------------------------------------- videos and samples


def ensure_videos(folder: Path, count: int) -> list[Path]:
    """`count` distinct videos of 10, 20, ... 60 s (then again from 10 s), encoded once
    with bench/frames.py's recipe."""
    videos = []
    for i in range(count):
        seconds = 10 * (1 + i % 6)
        path = folder / f"models_{i}_{seconds}s_720p.mp4"
        videos.append(ensure_video(path, seconds, seed=100 + i))
    return videos


def make_samples(videos: Sequence[Path], questions: int) -> list[Any]:
    from evalcore.dataset import Sample

    samples = []
    for path in videos:
        for q in range(questions):
            text, options = QUESTIONS[q % len(QUESTIONS)]
            samples.append(
                Sample(
                    dataset="bench-models",
                    sample_id=f"{path.stem}-q{q}",
                    video=path.stem,
                    video_path=path,
                    question=text,
                    options=options,
                    answer="A",
                )
            )
    return samples


# ---------------------------------------------------------------- measuring


@dataclass
class Tally:
    """Wall and CPU seconds per phase of one path for one model."""

    wall: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    samples: int = 0
    frames: int = 0  # frames given to the processor, summed over samples

    def add(self, phase: str, wall: float, cpu: float) -> None:
        self.wall[phase] += wall
        self.cpu[phase] += cpu

    def total(self, kind: str) -> float:
        return sum(getattr(self, kind).values())

    def per_sample_ms(self, *phases: str) -> float:
        return 1000 * sum(self.wall[p] for p in phases) / max(1, self.samples)


class Stopwatch:
    """Wall and process CPU time of a block (all threads of this process)."""

    def __enter__(self) -> Stopwatch:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def children_cpu() -> float:
    """CPU seconds of this process's direct children and of the children they reaped.

    The extraction workers are forked by multiprocessing's forkserver (a child of this
    process), which waits for them when they exit: their CPU time lands in its
    `children_user` / `children_system`, which psutil reads from /proc.
    """
    import psutil

    total = 0.0
    for child in psutil.Process().children():
        try:
            t = child.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class TimedFrames:
    """A cache entry whose `load()` (JPEG -> array) is timed into a tally."""

    def __init__(self, entry: FrameEntry, tally: Tally):
        self._entry, self._tally = entry, tally
        self.paths, self.timestamps = entry.paths, entry.timestamps

    def manifest(self) -> dict[str, Any]:
        return self._entry.manifest()

    def load(self) -> Any:
        with Stopwatch() as sw:
            frames = self._entry.load()
        self._tally.add("frames", sw.wall, sw.cpu)
        self._tally.frames += len(frames)
        return frames


def timed_method(method: Any, tally: Tally, phase: str) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with Stopwatch() as sw:
            result = method(*args, **kwargs)
        tally.add(phase, sw.wall, sw.cpu)
        return result

    return wrapper


# ---------------------------------------------------------------- the two paths


def run_ours(model: Any, samples: Sequence[Any], cache: FrameCache, verify: bool) -> Tally:
    """Extraction (decodes, or finds the cache filled), then the adapter per sample."""
    from evalcore.inference.runner import build_request
    from evalcore.models import GenerationConfig

    tally = Tally()
    jobs = [VideoJob(p) for p in dict.fromkeys(s.video_path for s in samples)]
    before = children_cpu()
    with Stopwatch() as sw:
        report = extract_videos(jobs, cache, OURS)
    tally.add("decode", sw.wall, sw.cpu + children_cpu() - before)
    assert not report.failures, report.failures
    entries = {job.path: report.results[job] for job in jobs}
    if verify:  # untimed: the frames are the ones the sampler chose
        for entry in entries.values():
            got = [read_frame_number(f) for f in entry.load()]
            assert got == list(entry.indices), f"wrong frames in {entry.dir}"

    model._process = timed_method(model._process, tally, "processor")  # the instance's
    try:
        for sample in samples:
            request = build_request(sample, TimedFrames(entries[sample.video_path], tally))
            with Stopwatch() as sw:
                [answer] = model.generate([request], GenerationConfig(max_new_tokens=1))
            assert isinstance(answer, str), answer
            tally.add("generate", sw.wall, sw.cpu)  # minus frames and processor, below
            tally.samples += 1
    finally:
        del model._process
    tally.wall["generate"] -= tally.wall["frames"] + tally.wall["processor"]
    tally.cpu["generate"] -= tally.cpu["frames"] + tally.cpu["processor"]
    return tally


def qwen_frame_count(total_frames: int, video_fps: float) -> int:
    """smart_nframes with fps 2: clamp duration x 2 to [4, min(768, frames)], floor to 2."""
    floor2 = QWEN_FRAME_FACTOR * math.floor(min(QWEN_MAX_FRAMES, total_frames) / QWEN_FRAME_FACTOR)
    least = QWEN_FRAME_FACTOR * math.ceil(QWEN_MIN_FRAMES / QWEN_FRAME_FACTOR)
    n = min(max(total_frames / video_fps * SAMPLE_FPS, least), floor2, total_frames)
    n = QWEN_FRAME_FACTOR * math.floor(n / QWEN_FRAME_FACTOR)
    if not QWEN_FRAME_FACTOR <= n <= total_frames:
        raise ValueError(f"{n} frames out of [{QWEN_FRAME_FACTOR}, {total_frames}]")
    return n


def qwen_indices(total_frames: int, n: int) -> list[int]:
    """n evenly spaced positions from the first to the last frame, rounded half to even."""
    import numpy as np

    return np.round(np.linspace(0, total_frames - 1, n)).astype(int).tolist()


def qwen_frame_size(height: int, width: int, n: int) -> tuple[int, int]:
    """smart_resize with fetch_video's video bounds: (height, width), multiples of 28."""
    f = QWEN_PATCH_FACTOR
    least = QWEN_MIN_PIXELS
    most = max(min(QWEN_MAX_PIXELS, QWEN_TOTAL_PIXELS / n * QWEN_FRAME_FACTOR), int(least * 1.05))
    if max(height, width) / min(height, width) > QWEN_MAX_RATIO:
        raise ValueError(f"aspect ratio of {width}x{height} above {QWEN_MAX_RATIO}")
    h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h * w > most:
        scale = math.sqrt(height * width / most)
        h, w = math.floor(height / scale / f) * f, math.floor(width / scale / f) * f
    elif h * w < least:
        scale = math.sqrt(least / (height * width))
        h, w = math.ceil(height * scale / f) * f, math.ceil(width * scale / f) * f
    return h, w


def run_peers(model: Any, samples: Sequence[Any], verify: bool) -> Tally:
    """Per sample: decord reads the raw video, qwen-vl-utils' rules pick and resize the
    frames, then the same processor and generation as ours."""
    import decord
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    from evalcore.models import GenerationConfig
    from evalcore.prompts import chat_messages, render_mcq_prompt

    tally = Tally()
    generation = GenerationConfig(max_new_tokens=1)
    for sample in samples:
        with Stopwatch() as sw:
            reader = decord.VideoReader(str(sample.video_path))
            total, video_fps = len(reader), reader.get_avg_fps()
            n = qwen_frame_count(total, video_fps)
            indices = qwen_indices(total, n)
            decoded = reader.get_batch(indices).asnumpy()
            del reader
        tally.add("decode", sw.wall, sw.cpu)
        if verify:  # untimed
            got = [read_frame_number(f) for f in decoded]
            assert got == indices, f"decord returned wrong frames for {sample.video_path}"
        with Stopwatch() as sw:
            video = torch.from_numpy(decoded).permute(0, 3, 1, 2)  # TCHW, as fetch_video
            size = qwen_frame_size(video.shape[2], video.shape[3], n)
            video = tvf.resize(
                video, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True
            ).float()
            del decoded
        tally.add("frames", sw.wall, sw.cpu)
        tally.frames += n
        prompt = render_mcq_prompt(sample.question, sample.options)
        with Stopwatch() as sw:
            chat, _ = model.family.conversation(chat_messages(prompt), prompt)
            text = model.processor.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True
            )
        template = sw
        with Stopwatch() as sw:
            inputs = model.processor(
                text=[text],
                videos=[video],
                padding=True,
                return_tensors="pt",
                **peer_video_kwargs(model, n / total * video_fps),
            )
        tally.add("processor", sw.wall, sw.cpu)
        with Stopwatch() as sw:
            [answer] = model._run(inputs, generation)  # the adapter's model.generate step
        assert isinstance(answer, str)
        tally.add("generate", sw.wall + template.wall, sw.cpu + template.cpu)
        tally.samples += 1
    return tally


def peer_video_kwargs(model: Any, sample_fps: float) -> dict[str, Any]:
    """qwen-vl-utils' video kwargs: no re-sampling; the sampling rate for Qwen2.5-VL."""
    kwargs: dict[str, Any] = {"do_sample_frames": False}
    if model.family.name == "qwen2_5_vl":
        kwargs["fps"] = sample_fps
    return kwargs


def warm_up(model: Any) -> None:
    """One untimed call down each path: lazy initialisation is paid before timing."""
    import numpy as np
    import torch

    from evalcore.models import GenerationConfig, VideoRequest
    from evalcore.prompts import chat_messages, render_mcq_prompt

    frames = np.random.default_rng(0).integers(0, 256, (4, HEIGHT, WIDTH, 3), dtype=np.uint8)

    @dataclass(frozen=True)
    class Clip:
        paths: tuple = ("", "", "", "")
        timestamps: tuple = (0.25, 0.75, 1.25, 1.75)

        def load(self) -> Any:
            return frames

    prompt = render_mcq_prompt(*QUESTIONS[0])
    request = VideoRequest(
        "warm-up", prompt, QUESTIONS[0][0], QUESTIONS[0][1], Clip(), "", chat_messages(prompt)
    )
    model.generate([request], GenerationConfig(max_new_tokens=1))
    chat, _ = model.family.conversation(chat_messages(prompt), prompt)
    text = model.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    inputs = model.processor(
        text=[text],
        videos=[video],
        padding=True,
        return_tensors="pt",
        **peer_video_kwargs(model, 2.0),
    )
    model._run(inputs, GenerationConfig(max_new_tokens=1))


# ---------------------------------------------------------------- report


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0.05 else "cache hit"


def print_tables(results: dict[str, dict[str, Tally]]) -> dict[str, Any]:
    rows = {**results, "set of 3": _set(results)}
    print("\ndecoding (ours: the extract_videos call before each model; peers: every sample)\n")
    print(
        "| model | ours CPU s | ours wall s | peers CPU s | peers wall s | peers/ours CPU "
        "| peers/ours wall |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        o, p = r["ours"], r["peers"]
        print(
            f"| {name} | {o.cpu['decode']:.2f} | {o.wall['decode']:.2f} | {p.cpu['decode']:.2f} "
            f"| {p.wall['decode']:.2f} | {_ratio(p.cpu['decode'], o.cpu['decode'])} "
            f"| {_ratio(p.wall['decode'], o.wall['decode'])} |"
        )
    print("\nwhole (decoding + preprocessing + generation)\n")
    print(
        "| model | samples | frames/sample | ours CPU s | ours wall s | peers CPU s "
        "| peers wall s | peers/ours CPU | peers/ours wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        o, p = r["ours"], r["peers"]
        frames = f"{o.frames / max(1, o.samples):.0f} / {p.frames / max(1, p.samples):.0f}"
        print(
            f"| {name} | {o.samples} | {frames} | {o.total('cpu'):.2f} | {o.total('wall'):.2f} "
            f"| {p.total('cpu'):.2f} | {p.total('wall'):.2f} "
            f"| {_ratio(p.total('cpu'), o.total('cpu'))} "
            f"| {_ratio(p.total('wall'), o.total('wall'))} |"
        )
    print("\nper sample, ms (mean; preprocessing = frames -> processor inputs)\n")
    print(
        "| model | ours JPEG -> array | ours processor | **ours preprocessing** "
        "| peers resize | peers processor | **peers preprocessing** | peers/ours "
        "| ours generate | peers generate | peers decode |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        o, p = r["ours"], r["peers"]
        ours_prep, peers_prep = (
            o.per_sample_ms("frames", "processor"),
            p.per_sample_ms("frames", "processor"),
        )
        print(
            f"| {name} | {o.per_sample_ms('frames'):.0f} | {o.per_sample_ms('processor'):.0f} "
            f"| **{ours_prep:.0f}** | {p.per_sample_ms('frames'):.0f} "
            f"| {p.per_sample_ms('processor'):.0f} | **{peers_prep:.0f}** "
            f"| {peers_prep / ours_prep:.2f}x | {o.per_sample_ms('generate'):.0f} "
            f"| {p.per_sample_ms('generate'):.0f} | {p.per_sample_ms('decode'):.0f} |"
        )
    return {
        name: {
            side: {
                "wall": dict(t.wall),
                "cpu": dict(t.cpu),
                "samples": t.samples,
                "frames": t.frames,
            }
            for side, t in r.items()
        }
        for name, r in rows.items()
    }


def _set(results: dict[str, dict[str, Tally]]) -> dict[str, Tally]:
    out = {"ours": Tally(), "peers": Tally()}
    for r in results.values():
        for side, t in r.items():
            for phase in t.wall:
                out[side].add(phase, t.wall[phase], t.cpu[phase])
            out[side].samples += t.samples
            out[side].frames += t.frames
    return out


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, help="videos of 10, 20, ... 60 s (default 6)")
    parser.add_argument("--questions", type=int, help="questions per video (default 2)")
    parser.add_argument("--quick", action="store_true", help="2 videos x 2 questions")
    parser.add_argument("--data", type=Path, default=DATA, help="where the videos are kept")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    n_videos = args.videos or (2 if args.quick else 6)
    n_questions = args.questions or 2

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tiny local checkpoints only
    videos = ensure_videos(args.data, n_videos)
    started, load_start = time.perf_counter(), _load()
    import decord
    import torch
    import torchvision
    import transformers
    from transformers.utils import logging as hf_logging

    from evalcore.models import Runtime, build_model
    from evalcore.models.transformers import build_tiny_checkpoint

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)  # as each production rank (1 thread per rank: more ran 7x slower here)
    samples = make_samples(videos, n_questions)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {_machine()}")
    print(
        f"# torch {torch.__version__}, torchvision {torchvision.__version__}, transformers "
        f"{transformers.__version__}, decord {decord.__version__}"
    )
    print(
        f"# {len(videos)} videos ({', '.join(p.stem.split('_')[2] for p in videos)}), "
        f"{n_questions} questions each, {len(samples)} samples per model; load average at "
        f"start {load_start}",
        flush=True,
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench-models-"))
    results: dict[str, dict[str, Tally]] = {}
    try:
        cache = FrameCache(scratch / "frames")
        for i, arch in enumerate(ARCHS):
            built = time.perf_counter()
            checkpoint = build_tiny_checkpoint(arch, scratch / arch)
            built = time.perf_counter() - built
            model = build_model("transformers", {"model": str(checkpoint)})
            model.load(Runtime())
            warm_up(model)
            ours = run_ours(model, samples, cache, verify=i == 0)
            peers = run_peers(model, samples, verify=i == 0)
            results[arch] = {"ours": ours, "peers": peers}
            model.close()
            print(
                f"{arch}: tiny checkpoint built in {built:.2f} s; "
                f"ours {ours.total('wall'):.1f} s (decode {ours.wall['decode']:.2f} s), "
                f"peers {peers.total('wall'):.1f} s (decode {peers.wall['decode']:.1f} s)",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = print_tables(results)
    load_end = _load()
    print(
        f"\nload average (1, 5, 15 min): start {load_start}, end {load_end}; "
        f"{os.cpu_count()} cores; run {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        figures["load_average"] = {"start": load_start, "end": load_end}
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
