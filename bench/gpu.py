"""Real-size video LLMs on a GPU: is the GPU kept busy, ours against the peers' loop.

Models: Qwen2.5-VL-7B and LLaVA-OneVision-7B shapes with random weights, built from their
published config numbers on the device in bfloat16 (bench/gpu_model.py: no download, no
checkpoint on disk), answering with a fixed length (min = max new tokens) so that every
run does the same work. Videos: evalcore's synthetic benchmark at 1280x720, 30 fps,
20-32 s (`generate_benchmark`), several questions per video. Frame modes: 64 frames per
clip (`nframe64`) and 2 frames per second capped at 64 (`fps2`), at full size on both
sides; the processors resize (Qwen2.5-VL: qwen-vl-utils' 128-768 tokens per frame, so
1008x560; LLaVA-OneVision: 384x384).

Per model and mode, in one process, one model build shared by the runs:

- **ours, cold**: an empty frame cache; the frame extraction starts on a thread (its
  decoding processes) and `infer_inline` (the inline launcher: the runner's batches,
  longest first, out-of-memory halving, frames read ahead) starts once the frame index
  has begun, answering clips as they arrive: what the `eval` flow does, without Prefect.
- **ours, warm**: the same again with the frame cache filled and the answers deleted.
- **peers**: what VLMEvalKit's and lmms-eval's video-native wrappers do, per sample and
  batch 1: Qwen2.5-VL through qwen-vl-utils' `fetch_video` (decord, the frame count from
  `nframes` or `fps`, the resize to the same pixel bounds, float32), LLaVA-OneVision
  through a `decord.VideoReader` per sample (`linspace` indices, as lmms-eval's
  `load_video`); then the same processor object and the adapter's own generation step.

Reported per run: samples/s and the ratio to the peers; GPU busy, the mean of the
driver's utilization samples (NVML: the share of time a kernel ran) over the inference
phase, from the first generation step's start to the last one's end; host busy, the
share of that phase spent inside generation steps (on the CPU the only busy figure);
time to first answer from the run's start; peak GPU memory against the weights and an
estimate of the largest batch's activations (its KV cache plus the text MLP's transient).

    python bench/gpu.py                       # both models, both modes (CUDA)
    python bench/gpu.py --archs qwen2_5_vl --modes nframe64 --videos 4
    python bench/gpu.py --tiny                # tiny shapes on the CPU (CI runs this)

Needs evalcore, torch, transformers, decord and qwen-vl-utils; no Prefect.
bench/gpu_wheels.sh fetches what a bare CUDA machine lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KIND = "gpu_model:RandomWeightsModel"  # bench/ is on sys.path when this file runs
MODES = ("nframe64", "fps2")


@dataclass(frozen=True)
class Workload:
    """The videos, the questions and the answers' length of one benchmark run."""

    videos: int
    questions: int
    min_seconds: float
    max_seconds: float
    frames: int  # nframe, and the cap of fps sampling
    answer_tokens: int
    batch_size: int
    scale: str  # 7b or tiny
    width: int = 1280
    height: int = 720

    def frame_plan(self, mode: str) -> dict[str, Any]:
        if mode == "nframe64":
            return {"nframe": self.frames, "max_side": None}
        return {"nframe": None, "fps": 2.0, "max_frames": self.frames, "max_side": None}


FULL = Workload(
    videos=4,
    questions=2,
    min_seconds=20,
    max_seconds=32,
    frames=64,
    answer_tokens=16,
    batch_size=4,
    scale="7b",
)
TINY = Workload(
    videos=2,
    questions=2,
    min_seconds=4,
    max_seconds=4.5,
    frames=8,
    answer_tokens=4,
    batch_size=4,
    scale="tiny",
    width=640,
    height=360,
)


@dataclass
class RunFigures:
    """One run's figures (seconds, fractions, bytes)."""

    run: str
    samples: int
    answered: int
    frames_per_sample: float
    wall_s: float
    first_answer_s: float
    phase_s: float
    host_busy: float
    gpu_busy: float | None
    peak_bytes: int | None
    largest_batch: tuple[int, int] = (0, 0)  # (requests, prompt width)
    decode_s: float = 0.0  # peers: decoding and resizing, summed over samples

    @property
    def per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s else 0.0


# ---------------------------------------------------------------- measuring


class GpuBusy:
    """The driver's utilization samples of one GPU, collected on a thread; `mean(t0, t1)`
    is their mean over a window of `time.time()` seconds. NVML samples every 1/6 to 1 s,
    so a window of a few seconds is only roughly measured."""

    def __init__(self, cuda_index: int, nvml: Any = None, handle: Any = None) -> None:
        if nvml is None:
            import pynvml as nvml

            nvml.nvmlInit()
        self._nvml = nvml
        self._handle = handle if handle is not None else _nvml_handle(nvml, cuda_index)
        self._samples: list[tuple[float, float]] = []  # (time.time(), percent)
        self._last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="gpu-busy", daemon=True)

    def __enter__(self) -> GpuBusy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        nvml = self._nvml
        while not self._stop.wait(0.2):
            try:
                _, samples = nvml.nvmlDeviceGetSamples(
                    self._handle, nvml.NVML_GPU_UTILIZATION_SAMPLES, self._last
                )
                for s in samples:
                    self._samples.append((s.timeStamp / 1e6, float(s.sampleValue.uiVal)))
                    self._last = max(self._last, s.timeStamp)
            except nvml.NVMLError_NotFound:  # no new sample since the last call
                continue
            except nvml.NVMLError:  # no sample buffer here: the current rate instead
                rate = nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
                self._samples.append((time.time(), float(rate)))

    def mean(self, t0: float, t1: float) -> float | None:
        inside = [v for t, v in list(self._samples) if t0 <= t <= t1]
        return statistics.fmean(inside) / 100 if inside else None


def _nvml_handle(pynvml: Any, cuda_index: int) -> Any:
    """The NVML handle of CUDA device `cuda_index` (CUDA_VISIBLE_DEVICES renumbers)."""
    import torch

    uuid_ = str(getattr(torch.cuda.get_device_properties(cuda_index), "uuid", ""))
    for name in (uuid_, f"GPU-{uuid_}"):
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(name)
        except Exception:  # noqa: BLE001 - try the next spelling, then the index
            continue
    return pynvml.nvmlDeviceGetHandleByIndex(cuda_index)


def _gpu_busy(device: str) -> GpuBusy | None:
    """The sampler of `device`'s utilization; None on the CPU or without NVML."""
    if not device.startswith("cuda"):
        return None
    try:
        return GpuBusy(int(device.split(":")[1]))
    except Exception as exc:  # noqa: BLE001 - the other figures stand without it
        print(f"no GPU busy figure: NVML unavailable ({exc!r}; pip install nvidia-ml-py)")
        return None


class Clock:
    """`perf_counter` readings turned into `time.time()` (NVML's timestamps)."""

    def __init__(self) -> None:
        self.offset = time.time() - time.perf_counter()

    def wall(self, perf: float) -> float:
        return perf + self.offset


# ---------------------------------------------------------------- the runs


def benchmark_tsv(root: Path, work: Workload) -> Path:
    from evalcore.dataset.synthetic import generate_benchmark

    return generate_benchmark(
        root,
        n_videos=work.videos,
        seed=0,
        questions_per_video=work.questions,
        width=work.width,
        height=work.height,
        fps=30,
        min_seconds=work.min_seconds,
        max_seconds=work.max_seconds,
        name=f"GpuBench{work.width}",
    )


def eval_config(
    tsv: Path,
    arch: str,
    mode: str,
    work: Workload,
    device: str,
    root: Path,
    attn: str | None,
    workers: int,
) -> Any:
    from evalcore.config import DatasetSpec, EvalConfig, InferenceSettings, ModelSpec

    gpus = [int(device.split(":")[1])] if device.startswith("cuda") else []
    return EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[
            ModelSpec(
                name=f"{arch}-{work.scale}",
                kind=KIND,
                params={"arch": arch, "scale": work.scale, "attn_implementation": attn},
                generation={"max_new_tokens": work.answer_tokens},
                frames=work.frame_plan(mode),
                batch_size=work.batch_size,
            )
        ],
        frames={"workers": workers},
        inference=InferenceSettings(gpus=gpus),
        work_dir=root / "work",
        output_dir=root / "outputs",
    )


def run_ours(config: Any, device: str, label: str, busy: GpuBusy | None) -> RunFigures:
    """Extraction on a thread, `infer_inline` from the moment the frame index has begun
    (as the flow); the answers of an earlier run are deleted first."""
    import gpu_model

    from evalcore.cell import cells_of, extract_dataset_frames, frame_plans
    from evalcore.frames import FrameCache
    from evalcore.frames.index import index_run, read_frame_index
    from evalcore.inference import infer_inline
    from evalcore.models import Runtime
    from evalcore.workspace import Workspace

    ws = Workspace(config.work_dir, config.output_dir)
    shutil.rmtree(ws.work_dir / "predictions", ignore_errors=True)
    (cell,) = cells_of(config)
    ((dataset, frames),) = frame_plans([cell])
    index_path = frames.index_path(dataset, ws)
    run = uuid.uuid4().hex
    clock = Clock()
    _reset_peak(device)
    gpu_model.CALLS.clear()
    started = time.perf_counter()
    extraction: dict[str, Any] = {}

    def extract() -> None:
        try:
            extraction["summary"] = extract_dataset_frames(dataset, frames, ws, None, run)
        except BaseException as exc:  # noqa: BLE001 - reported below, in this thread
            extraction["error"] = exc

    worker = threading.Thread(target=extract, name="extract", daemon=True)
    worker.start()
    while index_run(index_path) != run:
        if not worker.is_alive():
            break
        time.sleep(0.01)
    summary = infer_inline(cell, ws, Runtime(device=device), prefetch=4)
    wall = time.perf_counter() - started
    worker.join()
    if "error" in extraction:
        raise extraction["error"]
    index = read_frame_index(index_path, FrameCache(ws.frame_cache_dir))
    ids = [s for s in index.videos]
    counts = [len(index.frames_for(i).paths) for i in ids]
    return _figures(
        label,
        len(ids),
        summary.answered,
        statistics.fmean(counts) if counts else 0.0,
        started,
        wall,
        clock,
        busy,
        device,
    )


def run_peers(config: Any, kind: Any, device: str, busy: GpuBusy | None) -> RunFigures:
    """Per sample: decode the video the peers' way, the processor, the adapter's
    generation step; batch 1."""
    import gpu_model

    from evalcore.benchmarks import adapter_of, load_samples

    (dataset,) = config.datasets
    (model,) = config.models
    benchmark = adapter_of(dataset)
    generation = model.generation
    samples = load_samples(dataset)
    clock = Clock()
    _reset_peak(device)
    gpu_model.CALLS.clear()
    decode_s, frames_seen, answered = 0.0, 0, 0
    started = time.perf_counter()
    for sample in samples:
        t0 = time.perf_counter()
        video, kwargs = peer_frames(kind, sample.video_path, model.frames)
        decode_s += time.perf_counter() - t0
        frames_seen += len(video)
        [answer] = kind._run(peer_inputs(kind, benchmark, sample, video, kwargs), generation)
        answered += isinstance(answer.text, str)
    wall = time.perf_counter() - started
    figures = _figures(
        "peers",
        len(samples),
        answered,
        frames_seen / len(samples),
        started,
        wall,
        clock,
        busy,
        device,
    )
    figures.decode_s = decode_s
    return figures


def peer_frames(kind: Any, path: Path, plan: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The clip as the peers hand it to the processor, and the processor's video kwargs."""
    import decord
    import numpy as np
    from qwen_vl_utils import vision_process as qvu

    count = {"nframes": plan["nframe"]} if plan.get("nframe") else {"fps": plan["fps"]}
    if kind.family.name == "qwen2_5_vl":
        video_processor = kind.processor.video_processor
        element = {
            "video": str(path),
            **count,
            "max_frames": plan.get("max_frames") or plan.get("nframe"),
            "min_pixels": video_processor.size["shortest_edge"],
            "max_pixels": video_processor.size["longest_edge"],
        }
        video, sample_fps = qvu.fetch_video(element, return_video_sample_fps=True)
        return video, {"do_sample_frames": False, "fps": sample_fps}
    reader = decord.VideoReader(str(path))  # lmms-eval's load_video, one reader per sample
    total, fps = len(reader), reader.get_avg_fps()
    n = plan["nframe"] or qvu.smart_nframes({**count, "max_frames": plan["max_frames"]}, total, fps)
    frames = reader.get_batch(np.linspace(0, total - 1, n, dtype=int).tolist()).asnumpy()
    return frames, {"do_sample_frames": False}


def peer_inputs(kind: Any, benchmark: Any, sample: Any, video: Any, kwargs: dict) -> Any:
    """The processor's inputs for one sample: the same chat as ours, batch 1."""
    from evalcore.inference.runner import prompt_text

    messages = benchmark.messages(sample, ())
    chat, prefill = kind.family.conversation(messages, prompt_text(messages))
    text = kind.processor.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
    )
    return kind.processor(
        text=[text], videos=[video], padding=True, return_tensors="pt", videos_kwargs=kwargs
    )


def _figures(
    label: str,
    samples: int,
    answered: int,
    frames: float,
    started: float,
    wall: float,
    clock: Clock,
    busy: GpuBusy | None,
    device: str,
) -> RunFigures:
    import gpu_model

    calls = list(gpu_model.CALLS)
    if not calls:
        raise RuntimeError(f"{label}: no generation step ran")
    first, last = calls[0][0], max(end for _, end, *_ in calls)
    phase = last - first
    in_steps = sum(end - start for start, end, *_ in calls)
    gpu = busy.mean(clock.wall(first), clock.wall(last)) if busy is not None else None
    largest = max(((n, width) for *_, n, width in calls), key=lambda c: c[0] * c[1])
    return RunFigures(
        run=label,
        samples=samples,
        answered=answered,
        frames_per_sample=frames,
        wall_s=wall,
        first_answer_s=calls[0][1] - started,
        phase_s=phase,
        host_busy=min(1.0, in_steps / phase) if phase > 0 else 1.0,
        gpu_busy=gpu,
        peak_bytes=_peak(device),
        largest_batch=largest,
    )


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return int(torch.cuda.max_memory_allocated(device))


def activation_estimate(model: Any, requests: int, width: int, answer_tokens: int) -> int:
    """Bytes of the largest batch beyond the weights, estimated: its KV cache (prompt and
    answer) plus the text MLP's transient over the prompt (gate, up and their product).
    The vision tower's activations and the attention mask are left out."""
    text = model.config.text_config
    size = 2 if "16" in str(model.dtype) else 4
    heads = getattr(text, "num_key_value_heads", text.num_attention_heads)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    tokens = requests * (width + answer_tokens)
    kv = 2 * text.num_hidden_layers * heads * head_dim * tokens * size
    text_mlp = 3 * requests * width * text.intermediate_size * size
    return kv + text_mlp


# ---------------------------------------------------------------- report


def _gib(n: int | None) -> str:
    return f"{n / 2**30:.1f}" if n is not None else "n/a"


def _pct(x: float | None) -> str:
    return f"{100 * x:.0f}%" if x is not None else "n/a"


def report(arch: str, mode: str, runs: list[RunFigures], weights: int, estimate: int) -> list[str]:
    peers = next(r for r in runs if r.run == "peers")
    lines = [
        f"\n{arch}, {mode}: weights {_gib(weights)} GiB, largest batch "
        f"{max(r.largest_batch for r in runs)} (requests, prompt tokens)\n",
        "| run | samples | frames/sample | samples/s | / peers | GPU busy | host busy "
        "| first answer s | peak GiB | weights + est. activations GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        ratio = f"{r.per_s / peers.per_s:.2f}x" if peers.per_s else "n/a"
        lines.append(
            f"| {r.run} | {r.answered}/{r.samples} | {r.frames_per_sample:.0f} "
            f"| {r.per_s:.3f} | {ratio} | {_pct(r.gpu_busy)} | {_pct(r.host_busy)} "
            f"| {r.first_answer_s:.2f} | {_gib(r.peak_bytes)} | {_gib(weights + estimate)} |"
        )
    lines.append(
        f"(peers: {peers.decode_s:.1f} s of decoding and resizing in {peers.wall_s:.1f} s)"
    )
    return lines


def goals(runs: dict[str, dict[str, RunFigures]], memory: dict[str, tuple[int, int]]) -> list[str]:
    """The issue's goals, met or not, per model and mode (n/a without a GPU)."""
    out = []
    for key, by_run in runs.items():
        warm, cold, peers = by_run["ours-warm"], by_run["ours-cold"], by_run["peers"]
        weights, estimate = memory[key]
        peak = max((r.peak_bytes or 0) for r in by_run.values()) or None

        def verdict(ok: bool | None) -> str:
            return "n/a" if ok is None else ("met" if ok else "NOT met")

        busy_warm = None if warm.gpu_busy is None else warm.gpu_busy >= 0.9
        busy_cold = None if cold.gpu_busy is None else cold.gpu_busy >= 0.8
        speed = warm.per_s >= 2 * peers.per_s
        within = (
            None if peak is None else abs(peak - weights - estimate) <= 0.1 * (weights + estimate)
        )
        out.append(
            f"goals {key}: busy warm >= 90% {verdict(busy_warm)}; busy cold >= 80% "
            f"{verdict(busy_cold)}; >= 2x peers {verdict(speed)} "
            f"({warm.per_s / peers.per_s:.2f}x warm, {cold.per_s / peers.per_s:.2f}x cold); "
            f"peak within 10% of weights + activations {verdict(within)}"
        )
    return out


def _versions() -> str:
    import decord
    import torch
    import transformers

    return (
        f"torch {torch.__version__}, transformers {transformers.__version__}, decord "
        f"{decord.__version__}, Python {platform.python_version()}"
    )


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(device)
    return f"CPU, {os.cpu_count()} cores"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, small videos (CPU)")
    parser.add_argument("--archs", nargs="+", default=["qwen2_5_vl", "llava_onevision"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--videos", type=int, help="videos (default 4; --tiny 2)")
    parser.add_argument("--questions", type=int, help="questions per video (default 2)")
    parser.add_argument("--batch-size", type=int, help="requests per model call (default 4)")
    parser.add_argument("--answer-tokens", type=int, help="new tokens per answer (16; tiny 4)")
    parser.add_argument(
        "--attn", default=None, help="attn_implementation (default: transformers' choice, sdpa)"
    )
    parser.add_argument("--workers", type=int, help="decoding processes (default: cores / 4)")
    parser.add_argument("--device", help="default: cuda:0 if there is a GPU, else cpu")
    parser.add_argument("--dir", type=Path, help="keep videos and caches here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")  # as VLMEvalKit's set-up
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    work = TINY if args.tiny else FULL
    overrides = {
        "videos": args.videos,
        "questions": args.questions,
        "batch_size": args.batch_size,
        "answer_tokens": args.answer_tokens,
    }
    work = Workload(**{**asdict(work), **{k: v for k, v in overrides.items() if v}})
    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(1)  # as the inline launcher on the CPU
    workers = args.workers or max(2, (os.cpu_count() or 2) // 4)
    busy = _gpu_busy(device)
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {_device_name(device)}; {_versions()}; "
        f"{work.videos} videos x {work.questions} questions, {work.width}x{work.height}, "
        f"{work.min_seconds:g}-{work.max_seconds:g} s; {work.scale} shapes, batch "
        f"{work.batch_size}, {work.answer_tokens} answer tokens; {workers} decoders; load "
        f"average {_load()}",
        flush=True,
    )
    results: dict[str, dict[str, RunFigures]] = {}
    memory: dict[str, tuple[int, int]] = {}
    lines: list[str] = []

    def done(key: str, table: list[str]) -> None:
        """Each model and mode's figures as soon as they exist: a run cut short by a time
        limit keeps what it measured."""
        lines.extend(table)
        print("\n".join([*table, *goals({key: results[key]}, memory)]), flush=True)
        if args.json:
            figures = {k: {r: asdict(f) for r, f in v.items()} for k, v in results.items()}
            args.json.write_text(json.dumps(figures, indent=1))

    try:
        tsv = benchmark_tsv(scratch / "data", work)
        with busy if busy is not None else _nothing():
            for arch in args.archs:
                run_arch(
                    arch, args, work, tsv, device, scratch, workers, busy, results, memory, done
                )
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n# all figures" + "\n".join(["", *lines, *goals(results, memory)]))
    print(f"load average at the end {_load()}")
    failed = [
        f"{k} {r}" for k, v in results.items() for r, f in v.items() if f.answered < f.samples
    ]
    if failed:
        print(f"unanswered samples in: {', '.join(failed)}")
        return 1
    return 0


def run_arch(
    arch: str,
    args: argparse.Namespace,
    work: Workload,
    tsv: Path,
    device: str,
    scratch: Path,
    workers: int,
    busy: GpuBusy | None,
    results: dict[str, dict[str, RunFigures]],
    memory: dict[str, tuple[int, int]],
    done: Any,
) -> None:
    """Every mode of one model: build once, warm up untimed, then cold, warm and peers;
    `done(key, table)` after each mode."""
    import gpu_model

    from evalcore.models import Runtime, build_model

    started = time.perf_counter()
    params = {"arch": arch, "scale": work.scale, "attn_implementation": args.attn}
    kind = build_model(KIND, params)
    kind.load(Runtime(device=device))
    weights = gpu_model.parameter_bytes(kind.model)
    print(
        f"{arch}: built in {time.perf_counter() - started:.1f} s, {_gib(weights)} GiB", flush=True
    )
    for mode in args.modes:
        root = scratch / f"{arch}-{mode}"
        config = eval_config(tsv, arch, mode, work, device, root, args.attn, workers)
        warm_up(config, kind)
        runs = [
            run_ours(config, device, "ours-cold", busy),
            run_ours(config, device, "ours-warm", busy),
            run_peers(config, kind, device, busy),
        ]
        for r in runs:
            print(
                f"{arch} {mode} {r.run}: {r.answered}/{r.samples} in {r.wall_s:.1f} s, "
                f"first answer {r.first_answer_s:.2f} s, GPU busy {_pct(r.gpu_busy)}, host "
                f"busy {_pct(r.host_busy)}, peak {_gib(r.peak_bytes)} GiB",
                flush=True,
            )
        width = max(r.largest_batch for r in runs)
        estimate = activation_estimate(kind.model, *width, work.answer_tokens)
        key = f"{arch} {mode}"
        results[key] = {r.run: r for r in runs}
        memory[key] = (weights, estimate)
        done(key, report(arch, mode, runs, weights, estimate))
        shutil.rmtree(root, ignore_errors=True)
    kind.close()
    gpu_model.RandomWeightsModel.release()


def warm_up(config: Any, kind: Any) -> None:
    """One untimed peers-style answer: CUDA's lazy start, the kernels' first calls."""
    import gpu_model

    from evalcore.benchmarks import adapter_of, load_samples
    from evalcore.models import GenerationConfig

    (dataset,) = config.datasets
    (model,) = config.models
    sample = load_samples(dataset)[0]
    video, kwargs = peer_frames(kind, sample.video_path, model.frames)
    inputs = peer_inputs(kind, adapter_of(dataset), sample, video, kwargs)
    kind._run(inputs, GenerationConfig(max_new_tokens=2))
    gpu_model.CALLS.clear()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
