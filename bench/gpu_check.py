"""The GPU paths run once: one line per check, PASS or FAIL (bench/gpu_check.sh runs this,
then bench/gpu.py).

Every check runs the pipeline's own pieces without Prefect (what the `eval` flow calls:
`extract_dataset_frames`, `infer_inline`, `infer_shard`), so it needs evalcore alone and
runs on a bare CUDA machine. The model is `evalcore smoke`'s tiny random-weight
checkpoint of each family (`build_tiny_checkpoint`, `flows.smoke.smoke_config` with
`gpus=[0]`), loaded by `CheckModel`: the `transformers` adapter itself, which also writes
what it saw (device, dtype, CUDA_VISIBLE_DEVICES, the GPU's UUID) and the size of each
batch it was asked, and can force a real CUDA out-of-memory error on large batches.

- `smoke <arch>`: each family inline on cuda:0 with `dtype: auto` (bfloat16 expected);
  every sample answered, the weights on the GPU in bfloat16.
- `torchrun shard`: one torchrun shard on GPU 0; the rank sees exactly one GPU
  (CUDA_VISIBLE_DEVICES and --virtual-local-rank), the same physical GPU as this process's
  cuda:0, and answers every sample.
- `oom halving`: batches of 8 where any batch of 3 or more allocates past the GPU's
  memory (a real `torch.OutOfMemoryError` from the allocator): the runner halves 8 -> 4
  -> 2, every sample is answered, and the memory is given back.
- `identity cuda/cpu`: the same model and dataset with `gpus: []` has other answer keys,
  so the CUDA answers of the first check are pending for a CPU run, and none are pending
  for the CUDA config.

    python bench/gpu_check.py                 # on cuda:0
    python bench/gpu_check.py --device cpu    # the same steps on the CPU (OOM simulated)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from evalcore.models.transformers import TransformersModel
from evalcore.models.transformers.adapter import TransformersParams

KIND = "gpu_check:CheckModel"  # bench/ on sys.path (gpu_check.sh sets PYTHONPATH for ranks)


class CheckParams(TransformersParams):
    probe_dir: str = Field(default="", description="Where the model writes what it saw.")
    oom_batch: int = Field(default=0, description="Batches this large run out of memory.")


class CheckModel(TransformersModel):
    """The `transformers` adapter, telling what it saw; optionally out of memory."""

    Params = CheckParams

    def load(self, runtime: Any) -> None:
        import torch

        super().load(runtime)
        seen = {
            "pid": os.getpid(),
            "device": runtime.device,
            "weights": str(next(self.model.parameters()).device),
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "local_rank": os.environ.get("LOCAL_RANK"),
        }
        if runtime.device_class == "cuda":
            seen["device_count"] = torch.cuda.device_count()
            seen["uuid"] = _uuid(0)
        self._probe(f"load-{os.getpid()}.json", json.dumps(seen))

    def generate(self, requests: Sequence[Any], generation: Any) -> list[Any]:
        if self.params.oom_batch and len(requests) >= self.params.oom_batch:
            self._probe("batches.txt", f"{len(requests)} oom\n")
            _run_out_of_memory(self.runtime.device)
        self._probe("batches.txt", f"{len(requests)} ok\n")
        return super().generate(requests, generation)

    def _probe(self, name: str, text: str) -> None:
        if self.params.probe_dir:
            with open(Path(self.params.probe_dir) / name, "a", encoding="utf-8") as f:
                f.write(text)


def _run_out_of_memory(device: str) -> None:
    """A real CUDA out-of-memory error: ask the allocator for twice the GPU. On the CPU
    (a dry run of this script) the same exception type, raised by hand."""
    import torch

    if device.startswith("cuda"):
        total = torch.cuda.get_device_properties(device).total_memory
        torch.empty(2 * total, dtype=torch.uint8, device=device)
    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated on the CPU)")


def _uuid(index: int) -> str:
    import torch

    return str(getattr(torch.cuda.get_device_properties(index), "uuid", ""))


# ---------------------------------------------------------------- running a config


def run_config(config: Any, device: str) -> dict[str, Any]:
    """The config's frames, then its cells (inline on `device`, or its torchrun shards
    as the flow plans them); the records that count, by sample id."""
    from evalcore.benchmarks import load_samples
    from evalcore.cell import cells_of, extract_dataset_frames, frame_plans
    from evalcore.frames.index import read_index_videos
    from evalcore.inference import infer_inline
    from evalcore.inference.runner import UnitState
    from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
    from evalcore.inference.torchrun.shard import infer_shard
    from evalcore.models import Runtime
    from evalcore.workspace import Workspace

    ws = Workspace(config.work_dir, config.output_dir)
    cells = cells_of(config)
    for dataset, frames in frame_plans(cells):
        extract_dataset_frames(dataset, frames, ws)
    settings = config.inference
    records = {}
    for cell in cells:
        if settings.launcher == "torchrun":
            groups = device_groups(
                settings.gpus, settings.ranks_per_shard, settings.gpus_per_rank, settings.cpu_groups
            )
            run = uuid.uuid4().hex
            for shard in plan_shards(dataset_videos(cell.dataset), groups, settings.shards):
                infer_shard(cell, shard, settings, ws, run)  # one at a time per group
        else:
            infer_inline(cell, ws, Runtime(device=device), prefetch=settings.prefetch)
        samples = load_samples(cell.dataset)
        videos = read_index_videos(cell.frame_index_path(ws))
        records.update(UnitState.read(cell, samples, videos, ws).records)
    return records


def smoke_setup(arch: str, root: Path, device: str, launcher: str = "inline", **params: Any):
    """`evalcore smoke`'s checkpoint, benchmark and config, on `device`, with CheckModel."""
    from evalcore.config import EvalConfig
    from evalcore.dataset.synthetic import generate_benchmark
    from evalcore.models.transformers import build_tiny_checkpoint
    from flows.smoke import smoke_config

    checkpoint = build_tiny_checkpoint(arch, root / "checkpoint")
    tsv = generate_benchmark(root / "data", n_videos=4, seed=0, max_seconds=6)
    gpus = [int(device.split(":")[1])] if device.startswith("cuda") else []
    config = smoke_config(arch, checkpoint, tsv, root, launcher, gpus).model_dump()
    probe = root / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    (model,) = config["models"]
    model.update(kind=KIND, params={**model["params"], "probe_dir": str(probe), **params})
    return EvalConfig.model_validate(config), probe


def probes(probe: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(probe.glob("load-*.json"))]


def all_answered(records: dict[str, Any], expected: int) -> str | None:
    ok = sum(r.ok for r in records.values())
    if ok == expected:
        return None
    bad = [f"{r.error_type}: {str(r.error)[:200]}" for r in records.values() if not r.ok]
    return f"{ok}/{expected} answered; {bad[:2]}"


# ---------------------------------------------------------------- the checks


def check_smoke(arch: str, root: Path, device: str) -> str:
    config, probe = smoke_setup(arch, root, device)
    records = run_config(config, device)
    failure = all_answered(records, len(records) or 1)
    (seen,) = probes(probe)
    want = "bfloat16" if device.startswith("cuda") else "float32"
    if failure:
        raise AssertionError(failure)
    if seen["dtype"] != want or not seen["weights"].startswith(device.split(":")[0]):
        raise AssertionError(f"weights {seen['dtype']} on {seen['weights']}, expected {want}")
    return f"{len(records)} answered, {seen['dtype']} on {seen['weights']}"


def check_torchrun(root: Path, device: str) -> str:
    config, probe = smoke_setup("qwen2_5_vl", root, device, launcher="torchrun")
    records = run_config(config, device)
    if failure := all_answered(records, len(records) or 1):
        raise AssertionError(failure)
    seen = probes(probe)
    if not device.startswith("cuda"):
        return f"{len(records)} answered by {len(seen)} CPU rank(s)"
    (rank,) = seen
    mine = _uuid(int(device.split(":")[1]))
    if rank["cuda_visible_devices"] != device.split(":")[1] or rank["device_count"] != 1:
        raise AssertionError(f"rank not pinned: {rank}")
    if rank["uuid"] != mine or rank["pid"] == os.getpid():
        raise AssertionError(f"rank on GPU {rank['uuid']}, expected {mine}")
    return (
        f"{len(records)} answered; rank pid {rank['pid']} saw CUDA_VISIBLE_DEVICES="
        f"{rank['cuda_visible_devices']}, 1 device, this process's GPU, {rank['dtype']}"
    )


def check_oom(root: Path, device: str) -> str:
    config, probe = smoke_setup("qwen2_5_vl", root, device, oom_batch=3)
    config = config.model_copy(
        update={"models": [config.models[0].model_copy(update={"batch_size": 8})]}
    )
    before = _allocated(device)
    records = run_config(config, device)
    if failure := all_answered(records, len(records) or 1):
        raise AssertionError(failure)
    batches = (probe / "batches.txt").read_text().split("\n")
    tried = [line for line in batches if line]
    if (
        not any(t.endswith("oom") for t in tried)
        or max(int(t.split()[0]) for t in tried if t.endswith("ok")) >= 3
    ):
        raise AssertionError(f"no halving below the OOM size: {tried}")
    after = _allocated(device)
    if after is not None and after > before + 64 * 2**20:
        raise AssertionError(f"{(after - before) / 2**20:.0f} MiB not given back after the OOM")
    simulated = "" if device.startswith("cuda") else " (simulated on the CPU)"
    return f"{len(records)} answered; batches {', '.join(tried)}{simulated}"


def check_identity(root: Path, device: str) -> str:
    from evalcore.benchmarks import load_samples
    from evalcore.cell import cells_of
    from evalcore.frames.index import read_index_videos
    from evalcore.inference.runner import UnitState
    from evalcore.workspace import Workspace

    config, _ = smoke_setup("qwen2_5_vl", root, device)
    records = run_config(config, device)
    other_device = (
        {"gpus": []} if device.startswith("cuda") else {"gpus": [0]}
    )  # the other device class: the keys must differ
    other = config.model_copy(
        update={"inference": config.inference.model_copy(update=other_device)}
    )
    ws = Workspace(config.work_dir, config.output_dir)
    states = []
    for cfg in (config, other):
        (cell,) = cells_of(cfg)
        samples = load_samples(cell.dataset)
        videos = read_index_videos(cell.frame_index_path(ws))
        state = UnitState.read(cell, samples, videos, ws)
        states.append((cfg.device_class(cfg.models[0]), state, samples))
    (here, mine, samples), (there, theirs, _) = states
    ids = [s.sample_id for s in samples]
    if mine.pending(ids) or len(theirs.pending(ids)) != len(ids):
        raise AssertionError(
            f"{here}: {len(mine.pending(ids))} pending, {there}: {len(theirs.pending(ids))}"
        )
    if set(mine.answer_keys.values()) & set(theirs.answer_keys.values()):
        raise AssertionError(f"{here} and {there} share answer keys")
    return f"{len(records)} {here} answers; all {len(ids)} pending for {there} (other keys)"


def _allocated(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    import gc

    import torch

    gc.collect()
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device)


def run_check(name: str, check: Callable[[], str]) -> bool:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # noqa: BLE001 - every check reports, the next one runs
        detail, ok = f"{type(exc).__name__}: {str(exc)[:400]}", False
    print(
        f"{'PASS' if ok else 'FAIL'} {name}: {detail} ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    from evalcore.models.transformers import TINY_ARCHS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for a dry run")
    parser.add_argument("--archs", nargs="+", default=list(TINY_ARCHS), choices=TINY_ARCHS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    here = str(Path(__file__).resolve().parent)  # torchrun ranks import this module
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, str(Path(here).parent), os.environ.get("PYTHONPATH")) if p
    )
    if here not in sys.path:
        sys.path.insert(0, here)
    device = args.device
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        checks: list[tuple[str, Callable[[], str]]] = [
            (f"smoke {arch} {device}", lambda a=arch: check_smoke(a, root / a, device))
            for arch in args.archs
        ]
        checks += [
            ("torchrun shard pinned", lambda: check_torchrun(root / "torchrun", device)),
            ("oom halving", lambda: check_oom(root / "oom", device)),
            ("identity cuda/cpu", lambda: check_identity(root / "identity", device)),
        ]
        results = [run_check(name, check) for name, check in checks]
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
