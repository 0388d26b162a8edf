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
