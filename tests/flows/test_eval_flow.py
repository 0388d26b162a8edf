"""The `eval` flow through Prefect on the small synthetic benchmark."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from doubles.frames import HeldClip
from doubles.models import COUNTING, read_calls

from evalcore.benchmarks import load_samples
from evalcore.cell import find_cell
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.frames import VideoJob
from evalcore.frames.index import index_run
from evalcore.predictions import read_records
from evalcore.workspace import Workspace
from flows.cli.head_start import begin, started
from flows.eval import eval_flow


def config_for(tsv: Path, tmp: Path, models: list[ModelSpec], **kw) -> EvalConfig:
    return EvalConfig(
        datasets=[DatasetSpec(tsv=tsv, **kw)],
        models=models,
        output_dir=tmp / "outputs",
        work_dir=tmp / "work",
    )


def test_eval_end_to_end_then_rerun_does_nothing(prefect_harness, small_bench, tmp_path):
    calls = tmp_path / "calls.txt"
    models = [
        ModelSpec(name="ref", kind=COUNTING, params={"calls_file": str(calls)}),
        ModelSpec(name="random", kind="random"),
    ]
    config = config_for(small_bench, tmp_path, models)
    first = eval_flow(config)

    board = {r["model"]: r for r in json.loads((tmp_path / "outputs/leaderboard.json").read_text())}
    assert board["ref"]["accuracy"] >= 0.8
    assert board["random"]["accuracy"] <= 0.5
    assert board["ref"]["n"] == 48 and board["ref"]["failed"] == 0
    assert set(board["ref"]["per_category"]) >= {"count", "order", "motion"}
    sheet = pd.read_excel(tmp_path / "outputs/ref/ref_Tiny.xlsx")
    assert {"index", "question", "answer", "prediction", "extracted", "hit", "status"} <= set(
        sheet.columns
    )
    assert (sheet["status"] == "ok").all() and len(sheet) == 48
    assert (tmp_path / "outputs/leaderboard.md").read_text().startswith("# Leaderboard")
    assert (tmp_path / "outputs/leaderboard.xlsx").exists()
    assert first["frames"][0]["decoded"] == 12
    assert sorted(read_calls(calls)) == sorted(str(i) for i in range(48))  # each sample once

    second = eval_flow(config)
    assert second["frames"][0]["decoded"] == 0 and second["frames"][0]["hits"] == 12
    assert len(read_calls(calls)) == 48  # no model call on the re-run
    assert [r["accuracy"] for r in second["leaderboard"]] == [
        r["accuracy"] for r in first["leaderboard"]
    ]

    # Logs removed: a persisted Prefect result must not stand in for predictions.
    shutil.rmtree(tmp_path / "work/predictions/ref")
    third = eval_flow(config)
    assert len(read_calls(calls)) == 96
    assert {r["model"]: r["accuracy"] for r in third["leaderboard"]}["ref"] >= 0.8


def test_bad_videos_fail_alone_with_their_reason(prefect_harness, small_bench, tmp_path):
    root = tmp_path / "bench"
    (root / "videos").mkdir(parents=True)
    good = sorted((small_bench.parent / "videos").glob("*.mp4"))[:2]
    for g in good:
        shutil.copy(g, root / "videos" / g.name)
    data = good[0].read_bytes()
    (root / "videos/truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "videos/empty.mp4").write_bytes(b"")
    (root / "videos/notes.mp4").write_text("this is not a video\n")
    rows = [(g.name, "ok") for g in good] + [
        ("truncated.mp4", "bad"),
        ("empty.mp4", "bad"),
        ("notes.mp4", "bad"),
        ("missing.mp4", "bad"),
        ("../../outside.mp4", "bad"),
    ]
    lines = ["index\tvideo\tvideo_path\tquestion\tanswer\tcandidates\tcategory"]
    for i, (name, kind) in enumerate(rows):
        lines.append(
            f"{i}\t{name}\tvideos/{name}\tHow many shapes are visible at the end of the video?"
            f"\tA\t['1', '2', '3', '4']\t{kind}"
        )
    tsv = root / "Broken.tsv"
    tsv.write_text("\n".join(lines) + "\n")

    config = config_for(tsv, tmp_path, [ModelSpec(name="ref", kind="reference")])
    outcome = eval_flow(config)
    sheet = pd.read_excel(tmp_path / "outputs/ref/ref_Broken.xlsx").set_index("index")
    assert list(sheet.loc[[0, 1], "status"]) == ["ok", "ok"]
    bad = sheet.loc[[2, 3, 4, 5, 6]]
    assert (bad["status"] == "failed").all() and (bad["hit"] == 0).all()
    assert bad["error"].notna().all()
    assert "VideoNotFound" in bad.loc[5, "error_type"]
    assert bad.loc[6, "error_type"] == "InvalidPath" and "escapes" in bad.loc[6, "error"]
    (row,) = outcome["leaderboard"]
    assert row["failed"] == 5 and row["n"] == 7

    # Permanent failures do not churn: a re-run records nothing new (no attempts+1)
    # until the input changes; then exactly the changed sample is tried again.
    logs = tmp_path / "work/predictions"
    records = list(read_records(next(logs.glob("ref/Broken/*/trial-0"))))
    eval_flow(config)
    assert list(read_records(next(logs.glob("ref/Broken/*/trial-0")))) == records
    shutil.copy(good[0], root / "videos/missing.mp4")  # the missing video appears
    eval_flow(config)
    sheet = pd.read_excel(tmp_path / "outputs/ref/ref_Broken.xlsx").set_index("index")
    assert sheet.loc[5, "status"] == "ok" and list(sheet["status"]).count("failed") == 4
    after = list(read_records(next(logs.glob("ref/Broken/*/trial-0"))))
    assert [r.sample_id for r in after[len(records) :]] == ["5"]


def test_replaced_video_asks_exactly_its_questions_again(prefect_harness, small_bench, tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(small_bench.parent, bench)
    tsv = bench / small_bench.name
    calls = tmp_path / "calls.txt"
    model = ModelSpec(name="ref", kind=COUNTING, params={"calls_file": str(calls)})
    config = config_for(tsv, tmp_path, [model])
    eval_flow(config)
    before = pd.read_excel(tmp_path / "outputs/ref/ref_Tiny.xlsx").set_index("index")
    assert len(read_calls(calls)) == 48

    table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    target, donor = table["video_path"].iloc[0], table["video_path"].iloc[-1]
    (bench / target).write_bytes((bench / donor).read_bytes())  # same path, new content
    asked = {int(i) for i in table.loc[table["video_path"] == target, "index"]}

    outcome = eval_flow(config)
    assert sorted(int(i) for i in read_calls(calls)[48:]) == sorted(asked)
    after = pd.read_excel(tmp_path / "outputs/ref/ref_Tiny.xlsx").set_index("index")
    others = sorted(set(after.index) - asked)
    assert after.loc[others, "prediction"].equals(before.loc[others, "prediction"])
    assert not after.loc[sorted(asked), "prediction"].equals(
        before.loc[sorted(asked), "prediction"]
    )
    (row,) = outcome["leaderboard"]
    assert row["accuracy"] == after["hit"].mean() < before["hit"].mean()


def test_invalid_config_fails_before_work_naming_the_field(tmp_path, small_bench):
    from evalcore.config import ConfigError, parse_config

    raw = {
        "datasets": [{"tsv": str(small_bench)}],
        "models": [{"name": "ref", "kind": "reference"}],
        "frames": {"nframe": 0},
        "work_dir": str(tmp_path / "work"),
    }
    with pytest.raises(ConfigError, match=r"frames\.nframe"):
        parse_config(raw)
    raw["frames"] = {}
    raw["models"][0]["kind"] = "no-such-model"
    with pytest.raises(ConfigError, match=r"models\.0\.kind"):
        parse_config(raw)
    assert not (tmp_path / "work").exists()


def test_a_failed_unit_stops_no_healthy_cell(prefect_harness, small_bench, tmp_path):
    """The healthy cell is scored and published; the run then fails naming the unit."""
    from tests.doubles.scripted_model import FAKE_KIND

    broken = ModelSpec(
        name="broken",
        kind=FAKE_KIND,
        params={"calls_file": str(tmp_path / "calls"), "fault": "load"},
    )
    config = config_for(small_bench, tmp_path, [ModelSpec(name="ref", kind="reference"), broken])
    state = eval_flow(config, return_state=True)
    assert state.is_failed()
    message = str(state.message) + str(state.result(raise_on_failure=False))
    assert "infer broken x Tiny t0" in message and "1 unit(s) failed" in message
    board = json.loads((tmp_path / "outputs/leaderboard.json").read_text())
    assert [r["model"] for r in board] == ["ref"] and board[0]["n"] == 48


def test_inference_starts_before_the_last_video_is_decoded(prefect_harness, small_bench, tmp_path):
    """One video is slow (its decode lock is held, as by another process decoding it):
    the questions about the other videos are answered meanwhile, its own after it."""
    calls = tmp_path / "calls.txt"
    model = ModelSpec(name="ref", kind=COUNTING, params={"calls_file": str(calls)}, batch_size=2)
    config = config_for(small_bench, tmp_path, [model])
    ws = Workspace(config.work_dir, config.output_dir)
    samples = load_samples(config.datasets[0])
    slow_video = samples[0].video_path  # the first rows: no help from the manifest order
    slow = {s.sample_id for s in samples if s.video_path == slow_video}
    held = HeldClip(ws.frame_cache_dir, VideoJob(slow_video), config.frames).release_after(120)
    log_dir = find_cell(config).log_dir(ws)
    others_answered = len(samples) - len(slow)
    held.release_when(lambda: len({r.sample_id for r in read_records(log_dir)}) == others_answered)
    outcome = eval_flow(config)

    records = {r.sample_id: r for r in read_records(log_dir)}
    assert len(records) == 48 and all(r.ok for r in records.values())
    others = [r.finished_at for i, r in records.items() if i not in slow]
    assert max(others) < held.released_at  # answered while the slow video was not decoded
    assert min(records[i].finished_at for i in slow) > held.released_at
    assert outcome["frames"][0]["decoded"] == 12  # the slow one too, once it was let go
    assert sorted(read_calls(calls), key=int) == [str(i) for i in range(48)]  # each once


def test_an_extraction_begun_before_the_flow_is_adopted_not_repeated(
    prefect_harness, small_bench, tmp_path
):
    """`evalcore run` begins decoding while the Prefect server boots; the flow's
    extraction task waits on that extraction instead of decoding again."""
    model = ModelSpec(name="rnd", kind="random")
    config = config_for(small_bench, tmp_path, [model])
    path = find_cell(config).frame_index_path(Workspace(config.work_dir, config.output_dir))
    (head,) = begin(config)
    assert started(path) is head
    outcome = eval_flow(config)
    assert started(path) is None  # adopted, once
    assert index_run(path) == head.run  # the journal is the head start's, not rewritten
    assert outcome["frames"] == [asdict(head.result.result())]
    assert outcome["frames"][0]["decoded"] == 12  # each clip once
    assert outcome["leaderboard"][0]["n"] == 48
