"""`evalcore smoke --arch X`: check an install without downloading weights.

Builds a tiny random-weight checkpoint of a real architecture (a locally trained
tokenizer, the family's real processor config) in a temporary folder, then runs it
through the whole `eval` flow (frames, inference, scoring, leaderboard) on a small
synthetic benchmark. Passes when every sample got an answer: random weights answer at
chance, so the score says nothing; a failure record says what broke.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalcore.config import EvalConfig

# (The CLI reads SMOKE_FRAMES to parse its arguments: this module imports nothing heavy.)
# Small versions of each family's usual sampling: the Qwen family samples by rate at
# native size (its processor resizes), the others a fixed number of frames.
SMOKE_FRAMES: dict[str, dict] = {
    "qwen2_vl": {"fps": 2.0, "max_frames": 8, "max_side": None},
    "qwen2_5_vl": {"fps": 2.0, "max_frames": 8, "max_side": None},
    "qwen3_vl": {"fps": 2.0, "max_frames": 8, "max_side": None},
    "llava_onevision": {"nframe": 8},
    "llava_next_video": {"nframe": 8},
    "internvl": {"nframe": 4},
}


def smoke_config(
    arch: str,
    checkpoint: Path,
    tsv: Path,
    root: Path,
    launcher: str = "inline",
    gpus: Sequence[int] = (),
) -> EvalConfig:
    """`gpus`: CUDA device ids (the model then loads in bfloat16); none: the CPU. With
    torchrun on the CPU, 2 shards; on GPUs, one shard per GPU (each rank pinned to its
    GPU with CUDA_VISIBLE_DEVICES and --virtual-local-rank)."""
    from evalcore.config import DatasetSpec, EvalConfig, InferenceSettings, ModelSpec

    if launcher == "torchrun" and gpus:
        inference = InferenceSettings(launcher="torchrun", gpus=list(gpus), watchdog_s=120)
    elif launcher == "torchrun":
        inference = InferenceSettings(launcher="torchrun", shards=2, cpu_groups=2, watchdog_s=120)
    else:
        inference = InferenceSettings(gpus=list(gpus))
    return EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[
            ModelSpec(
                name=f"tiny-{arch.replace('_', '-')}",
                kind="transformers",
                params={"model": str(checkpoint)},
                generation={"max_new_tokens": 8},
                frames=SMOKE_FRAMES[arch],
                batch_size=4,
            )
        ],
        inference=inference,
        output_dir=root / "outputs",
        work_dir=root / "work",
    )


def run_smoke(
    arch: str, root: Path | None, videos: int, launcher: str, gpus: Sequence[int] = ()
) -> dict:
    """Build, evaluate, and return the flow's outcome (its leaderboard row has `failed`)."""
    from evalcore.dataset.synthetic import generate_benchmark
    from evalcore.models.transformers import build_tiny_checkpoint
    from flows.eval import eval_flow

    with tempfile.TemporaryDirectory(prefix=f"evalcore-smoke-{arch}-") as tmp:
        where = Path(root) if root else Path(tmp)
        checkpoint = build_tiny_checkpoint(arch, where / "checkpoint")
        tsv = generate_benchmark(where / "data", n_videos=videos, seed=0, max_seconds=6)
        return eval_flow(smoke_config(arch, checkpoint, tsv, where, launcher, gpus))
