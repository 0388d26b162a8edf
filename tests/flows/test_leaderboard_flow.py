"""The nightly `leaderboard` flow through Prefect: a change between two nights is tested
on the same questions and marked, and the run summary lists the questions that flipped."""

from __future__ import annotations

import json

from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from flows.hooks import SUMMARY_KEY
from flows.leaderboard import leaderboard_flow


def summaries() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[SUMMARY_KEY]))
        )
    return [a.data for a in sorted(artifacts, key=lambda a: a.created)]


def test_nightly_marks_a_significant_change_and_lists_its_flips(
    prefect_harness, small_bench, tmp_path
):
    def config(ref_kind: str) -> EvalConfig:
        return EvalConfig(
            datasets=[DatasetSpec(tsv=small_bench)],
            models=[
                ModelSpec(name="ref", kind=ref_kind),
                ModelSpec(name="rnd", kind="random"),
            ],
            output_dir=tmp_path / "outputs",
            work_dir=tmp_path / "work",
        )

    first = leaderboard_flow(config("reference"))["leaderboard"]
    assert all(r["delta"] is None for r in first)  # the first night: nothing to compare
    assert all(r["accuracy_low"] <= r["accuracy"] <= r["accuracy_high"] for r in first)

    # the next night "ref" is a different model (chance level): its answers change; rnd's do not
    before = len(summaries())
    second = {r["model"]: r for r in leaderboard_flow(config("random"))["leaderboard"]}
    ref, rnd = second["ref"], second["rnd"]
    assert ref["delta"] < -0.4 and ref["delta_significant"] and ref["delta_p"] < 0.001
    assert ref["delta_losses"] > 20 and ref["delta_high"] < 0
    assert rnd["delta"] == 0.0 and rnd["delta_p"] == 1.0 and not rnd["delta_significant"]

    board = (tmp_path / "outputs/leaderboard.md").read_text()
    assert f"**{ref['delta']:+.3f}** (p<0.001)" in board and "| +0.000 (p=1.000) |" in board
    snapshots = sorted((tmp_path / "outputs/history").glob("leaderboard-*.json"))
    assert len(snapshots) == 2
    # rnd's outcomes did not change: both snapshots share its stored file
    first_samples, second_samples = (json.loads(p.read_text())["samples"] for p in snapshots)
    assert first_samples["rnd/Tiny"] == second_samples["rnd/Tiny"]
    assert first_samples["ref/Tiny"] != second_samples["ref/Tiny"]

    (summary,) = summaries()[before:]  # the one eval subflow: only ref was evaluated again
    assert "## Changes since the snapshot of" in summary
    assert "### ref x Tiny" in summary and "### rnd x Tiny" not in summary
    assert f"right → wrong ({ref['delta_losses']}):" in summary
    assert "significant at 5%" in summary
