"""The leaderboard over time: snapshots, deltas, chart, and which cells are current."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.predictions import PredictionLog, PredictionRecord
from evalcore.reports import leaderboard_markdown
from evalcore.reports.history import (
    HAS_FAILURES,
    NO_RESULT,
    SAMPLES_CHANGED,
    SETTINGS_CHANGED,
    cell_settings,
    cells_to_evaluate,
    list_snapshots,
    publish_with_history,
    why_stale,
    with_deltas,
    write_snapshot,
)
from evalcore.stages import cell_log_dir, load_samples, score_cell
from evalcore.workspace import Workspace

RANDOM = "evalcore.models.random_choice:build_random"
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def row(model: str, dataset: str, accuracy: float, failed: int = 0) -> dict:
    return {
        "model": model,
        "dataset": dataset,
        "accuracy": accuracy,
        "accuracy_std": 0.0,
        "trials": 1,
        "n": 10,
        "failed": failed,
        "per_category": {"count": accuracy},
        "evaluated_at": "2026-11-20T02:00:05Z",
    }


def test_snapshots_are_dated_ordered_and_never_overwritten(tmp_path):
    later = write_snapshot(tmp_path, [row("a", "D", 0.5)], T0 + timedelta(days=1))
    earlier = write_snapshot(tmp_path, [row("a", "D", 0.4)], T0)
    assert later.path != earlier.path and "2026-11-21" in later.path.name
    snaps = list_snapshots(tmp_path)
    assert [s.taken_at for s in snaps] == [T0, T0 + timedelta(days=1)]
    assert snaps[-1].rows[0]["accuracy"] == 0.5


def test_deltas_against_previous_snapshot_new_cells_marked(tmp_path):
    previous = write_snapshot(tmp_path, [row("a", "D", 0.4), row("b", "D", 0.9)], T0)
    rows = with_deltas([row("a", "D", 0.5), row("c", "D", 0.3)], previous)
    by_model = {r["model"]: r for r in rows}
    assert abs(by_model["a"]["delta"] - 0.1) < 1e-9 and by_model["a"]["previous_accuracy"] == 0.4
    assert by_model["c"]["delta"] is None
    text = leaderboard_markdown(rows)
    assert "| Δ |" in text and "+0.100" in text and "| new |" in text
    assert "last evaluated" in text and "2026-11-20T02:00:05Z" in text


def test_publish_with_history_writes_snapshot_deltas_and_chart(tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    publish_with_history(ws, [row("a", "D", 0.4)], snapshot=True, now=T0)
    board, paths = publish_with_history(
        ws, [row("a", "D", 0.6), row("b", "E", 0.2, failed=3)], snapshot=True, now=T0 + timedelta(1)
    )
    assert len(list_snapshots(ws.history_dir)) == 2 and paths["snapshot"].exists()
    saved = json.loads(paths["json"].read_text())
    assert abs(saved[0]["delta"] - 0.2) < 1e-9 and saved[1]["delta"] is None
    sheet = pd.read_excel(paths["xlsx"])
    assert {"delta", "previous_accuracy", "evaluated_at", "failed"} <= set(sheet.columns)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Without `snapshot` (an `eval` run) nothing is frozen; deltas use the latest snapshot.
    board, paths = publish_with_history(ws, [row("a", "D", 0.7)], snapshot=False)
    assert len(list_snapshots(ws.history_dir)) == 2 and "snapshot" not in paths
    assert abs(board[0]["delta"] - 0.1) < 1e-9


def write_tsv(path: Path, n: int) -> Path:
    rows = [
        {
            "index": i,
            "video": f"v{i}",
            "question": "How many shapes?",
            "answer": "A",
            "candidates": "['1', '2', '3', '4']",
            "category": "count",
        }
        for i in range(n)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_cell_settings_equal_what_score_cell_records(tmp_path):
    tsv = write_tsv(tmp_path / "D.tsv", 4)
    model = ModelSpec(name="m", kind=RANDOM, params={"seed": 3})
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[model],
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    dataset = config.datasets[0]
    log_dir = cell_log_dir(ws, model, dataset, config.frames, config.seed, 0)
    with PredictionLog(log_dir / "main.jsonl") as log:
        for s in load_samples(dataset):
            log.append(PredictionRecord(s.sample_id, "ok", "A"))
    score_cell(model, dataset, config, ws)
    cell = json.loads(ws.cell_json("m", "D").read_text())
    expected = cell_settings(model, dataset, config)
    assert cell["settings"] == expected
    assert why_stale(cell, expected, expected_n=4) is None

    changed = config.model_copy(update={"seed": 1})
    assert why_stale(cell, cell_settings(model, dataset, changed), 4) == SETTINGS_CHANGED
    other = ModelSpec(name="m", kind=RANDOM, params={"seed": 4})
    assert why_stale(cell, cell_settings(other, dataset, config), 4) == SETTINGS_CHANGED
    assert why_stale(cell, expected, expected_n=3) == SAMPLES_CHANGED  # a changed `limit`
    assert why_stale({**cell, "failed": 1}, expected, expected_n=4) == HAS_FAILURES
    assert why_stale(None, expected, expected_n=4) == NO_RESULT

    two = config.model_copy(update={"models": [model, other.model_copy(update={"name": "n"})]})
    assert cells_to_evaluate(two, ws, {"D": 4}) == {"D": {"n": NO_RESULT}}
    assert cells_to_evaluate(changed, ws, {"D": 4}) == {"D": {"m": SETTINGS_CHANGED}}

    # Answers made with other settings live elsewhere: a changed cell starts empty.
    assert cell_log_dir(ws, model, dataset, config.frames, 1, 0) != log_dir
    assert cell_log_dir(ws, other, dataset, config.frames, config.seed, 0) != log_dir
    fewer = FrameSettings(nframe=4)
    assert cell_log_dir(ws, model, dataset, fewer, config.seed, 0) != log_dir
    more_workers = FrameSettings(workers=4)  # decoding settings do not change answers
    assert cell_log_dir(ws, model, dataset, more_workers, config.seed, 0) == log_dir
