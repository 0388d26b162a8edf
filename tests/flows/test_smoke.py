"""`evalcore smoke`: a tiny random-weight checkpoint of each family through the whole
flow, and the same predictions from the inline launcher and from 2 torchrun shards."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.smoke import SMOKE_FRAMES, run_smoke


@pytest.fixture(autouse=True)
def _offline(monkeypatch, subprocess_imports_tests):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a missing file fails instead of downloading


def predictions(root, arch: str) -> pd.Series:
    name = f"tiny-{arch.replace('_', '-')}"
    sheet = pd.read_excel(root / "outputs" / name / f"{name}_SyntheticVQA.xlsx")
    assert (sheet["status"] == "ok").all(), sheet[["status", "error_type", "error"]]
    return sheet.set_index("index")["prediction"]


@pytest.mark.parametrize("arch", sorted(SMOKE_FRAMES))
def test_smoke_answers_every_sample(prefect_harness, tmp_path, arch):
    outcome = run_smoke(arch, tmp_path, videos=3, launcher="inline")
    (row,) = outcome["leaderboard"]
    assert (row["n"], row["failed"]) == (12, 0)
    assert len(predictions(tmp_path, arch)) == 12


def test_inline_and_two_torchrun_shards_give_identical_predictions(prefect_harness, tmp_path):
    # Shards by a hash of the video: the first 4 synthetic videos all hash to shard 0.
    run_smoke("qwen2_5_vl", tmp_path / "inline", videos=5, launcher="inline")
    sharded = run_smoke("qwen2_5_vl", tmp_path / "sharded", videos=5, launcher="torchrun")
    assert sorted(s["shard"] for s in sharded["inference"]) == [0, 1]
    inline = predictions(tmp_path / "inline", "qwen2_5_vl")
    assert predictions(tmp_path / "sharded", "qwen2_5_vl").equals(inline)


def test_smoke_with_gpus_runs_on_cuda_in_bfloat16_one_shard_per_gpu(tmp_path):
    """What `evalcore smoke --gpus 0 1` asks for (run on a GPU by bench/gpu_check.sh)."""
    from evalcore.dataset.synthetic import generate_benchmark
    from evalcore.models.transformers import build_tiny_checkpoint
    from flows.smoke import smoke_config

    checkpoint = build_tiny_checkpoint("qwen2_5_vl", tmp_path / "ckpt")
    tsv = generate_benchmark(tmp_path / "data", n_videos=1, seed=0, max_seconds=2)
    inline = smoke_config("qwen2_5_vl", checkpoint, tsv, tmp_path, "inline", gpus=[0])
    (model,) = inline.models
    assert inline.inference.gpus == [0] and inline.device_class(model) == "cuda"
    assert model.params.get("dtype", "auto") == "auto"  # auto: bfloat16 on a GPU
    sharded = smoke_config("qwen2_5_vl", checkpoint, tsv, tmp_path, "torchrun", gpus=[0, 1])
    assert sharded.inference.launcher == "torchrun" and sharded.inference.gpus == [0, 1]
    assert sharded.inference.shards is None  # one per device group: one per GPU
    cpu = smoke_config("qwen2_5_vl", checkpoint, tsv, tmp_path, "inline")
    assert cpu.device_class(cpu.models[0]) == "cpu"
