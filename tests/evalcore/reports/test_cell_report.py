"""A cell's report files are written when what they say changes, and only then; a
judged cell is scored over its judged answers, and has no score when none was judged."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evalcore.cell import CellTrials, extract_dataset_frames
from evalcore.predictions import Journal, PredictionRecord
from evalcore.reports import (
    collect_cells,
    format_accuracy,
    leaderboard_markdown,
    leaderboard_rows,
    report_cell,
    write_leaderboard,
)
from tests.doubles.cells import one_cell
from tests.doubles.judged_cells import judged_cell, report_judged


def test_a_report_that_would_not_change_is_not_written_again(tmp_path):
    tsv = tmp_path / "D.tsv"
    rows = [
        {"index": i, "video": f"v{i}", "question": "Q?", "answer": "A", "candidates": "['x', 'y']"}
        for i in range(3)
    ]
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    _, cell, ws, keys = one_cell(tsv, tmp_path)
    with Journal(cell.log_dir(ws), "main") as log:
        for i in ("0", "2"):  # sample 1 not answered yet
            log.append(PredictionRecord(i, "ok", "A", answer_key=keys[i]))
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    xlsx, report = ws.cell_xlsx("m", "D"), ws.cell_json("m", "D")

    first = report_cell(CellTrials([cell]), ws)
    files = (xlsx.stat().st_ino, report.stat().st_ino)  # every write is a new file
    stamped = json.loads(report.read_text())["evaluated_at"]
    assert report_cell(CellTrials([cell]), ws) == first
    assert (xlsx.stat().st_ino, report.stat().st_ino) == files
    assert json.loads(report.read_text())["evaluated_at"] == stamped

    with Journal(cell.log_dir(ws), "main") as log:  # sample 1 answered now
        log.append(PredictionRecord("1", "ok", "A", answer_key=keys["1"]))
    assert report_cell(CellTrials([cell]), ws)["accuracy"] == 1.0 != first["accuracy"]
    assert xlsx.stat().st_ino != files[0] and report.stat().st_ino != files[1]
    assert pd.read_excel(xlsx)["prediction"].tolist() == ["A", "A", "A"]

    xlsx.unlink()  # a missing file is written again
    report_cell(CellTrials([cell]), ws)
    assert xlsx.exists()


# --- a judged cell's score comes from judged answers only ----------------------------


def test_a_judged_cell_whose_judge_failed_every_answer_has_no_score(tmp_path):
    cell, ws = judged_cell(tmp_path, dict.fromkeys(map(str, range(7))), model_failures={"7"})
    report = report_judged(cell, ws)
    # nothing judged: no score and no interval, never 0.0 (q7's model failure is no score)
    assert report["accuracy"] is None and report["accuracy_std"] is None
    assert report["accuracy_ci"]["low"] is None and report["accuracy_ci"]["n"] == 0
    assert (report["failed"], report["unjudged"]) == (1, 7)
    assert report["unjudged_reasons"] == {"judge failed": 7}
    assert report["breakdowns"] == {} and report["per_category"] == {}
    assert [t["accuracy"] for t in report["trial_scores"]] == [None]
    summary = pd.read_excel(ws.cell_xlsx("m", "MMBench-Video"), sheet_name="summary")
    values = dict(zip(summary["field"], summary["value"], strict=True))
    assert values["mean score (0-3)"] == "no score"
    assert values["unjudged"] == "7 unjudged: judge failed"
    answers = pd.read_excel(ws.cell_xlsx("m", "MMBench-Video"), sheet_name="predictions")
    assert answers["unjudged"].fillna("").tolist() == ["judge failed"] * 7 + [""]  # q7 failed

    (row,) = leaderboard_rows(collect_cells(ws.cell_jsons()).values())
    assert row["accuracy"] is None and (row["unjudged"], row["failed"]) == (7, 1)
    assert format_accuracy(row) == "no score"
    text = leaderboard_markdown([row])
    assert "| no score |" in text and "| 7 unjudged: judge failed |" in text
    assert "0.000" not in text
    paths = write_leaderboard([row], tmp_path / "board")
    sheet = pd.read_excel(paths["xlsx"])
    assert sheet["accuracy"].tolist() == ["no score"]
    assert sheet["unjudged_reasons"].tolist() == ["7 unjudged: judge failed"]


def test_without_a_judge_every_answer_is_unjudged_and_says_so(tmp_path):
    cell, ws = judged_cell(tmp_path, {})
    report = report_judged(cell, ws, judge=None)
    assert report["accuracy"] is None and report["failed"] == 0
    assert report["unjudged_reasons"] == {"no judge configured": 8}
    (row,) = leaderboard_rows(collect_cells(ws.cell_jsons()).values())
    assert "| 8 unjudged: no judge configured |" in leaderboard_markdown([row])


def test_a_partially_judged_cell_is_scored_over_its_judged_answers(tmp_path):
    # q0-q2 judged 3, 2, 1; q3, q4 failed by the judge; q5-q7 never judged (no verdict)
    cell, ws = judged_cell(tmp_path, {"0": 3.0, "1": 2.0, "2": 1.0, "3": None, "4": None})
    report = report_judged(cell, ws)
    assert report["accuracy"] == pytest.approx(2.0)  # (3 + 2 + 1) / 3, not / 8
    assert report["unjudged"] == 5
    assert report["unjudged_reasons"] == {"judge failed": 2, "not judged yet": 3}
    assert report["accuracy_ci"]["n"] == 3  # the interval is over the judged answers
    fine = report["breakdowns"]["fine"]
    assert fine["Counting"] == pytest.approx(2.5)  # q0 3, q1 2
    assert "Spatial Relationship" not in fine  # q3 unjudged: in no table
    (row,) = leaderboard_rows(collect_cells(ws.cell_jsons()).values())
    text = leaderboard_markdown([row])
    assert "| 2.000" in text and "| 5 unjudged: judge failed 2, not judged yet 3 |" in text

    # a model failure counts 0 beside the judged answers (VLMEvalKit's `_all` mean)
    cell, ws = judged_cell(tmp_path / "f", {"0": 3.0, "1": 2.0}, model_failures={"2"})
    assert report_judged(cell, ws)["accuracy"] == pytest.approx(5 / 3)  # (3 + 2 + 0) / 3


def test_a_cell_without_a_score_ranks_last(tmp_path):
    cells = [
        {"model": "a", "dataset": "D", "accuracy": None, "per_category": {}, "unjudged": 4},
        {"model": "b", "dataset": "D", "accuracy": 0.0, "per_category": {}},
        {"model": "c", "dataset": "D", "accuracy": 1.5, "per_category": {}},
    ]
    assert [r["model"] for r in leaderboard_rows(cells)] == ["c", "b", "a"]
