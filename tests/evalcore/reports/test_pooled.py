"""TempCompass's three files are three cells here; each cell report carries, beside its
own breakdowns, the table VLMEvalKit's `TempCompass.evaluate` pools over all three, and
a change in one file refreshes that table in the others' reports and nothing else."""

from __future__ import annotations

import json

import pandas as pd

from evalcore.benchmarks import load_samples
from evalcore.cell import CellTrials, cells_of, extract_dataset_frames
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.judge.scores import current_scores
from evalcore.predictions import Journal, PredictionRecord, failed
from evalcore.reports import report_cell
from evalcore.workspace import Workspace
from tests.doubles.benchmarks.mlvu_tempcompass import build_tempcompass, tempcompass_rows
from tests.doubles.benchmarks.open_ended import build_tempcompass_captioning
from tests.doubles.judged_cells import JUDGE, write_verdicts
from tests.evalcore.benchmarks.test_tempcompass import (
    CAPTIONING_SCORES,
    FILES,
    MCQ_IDS,
    OUTPUTS,
    POOLED_ROWS,
    YORN_IDS,
)


def _answer(cell, ws, texts: dict[str, str]) -> dict[str, str]:
    samples = load_samples(cell.dataset)
    keys = cell.answer_keys(samples, video_fingerprints(samples, FrameCache(ws.frame_cache_dir)))
    with Journal(cell.log_dir(ws), "main") as log:
        for sid, text in texts.items():
            log.append(PredictionRecord(sid, "ok", text, answer_key=keys[sid]))
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    return keys


def _report(cell, ws) -> dict:
    trials = CellTrials([cell])
    scores = current_scores(trials, ws, JUDGE) if trials.benchmark.judged else None
    report_cell(trials, ws, scores=scores)
    return json.loads(ws.cell_json("m", cell.dataset.dataset_name).read_text())


def test_each_file_reports_the_table_pooled_over_the_three(tmp_path):
    rows = {r["index"]: r for r in tempcompass_rows()}
    mcq = build_tempcompass(tmp_path / "mcq", [rows[int(i)] for i in MCQ_IDS])
    yorn = build_tempcompass(tmp_path / "yorn", [rows[int(i)] for i in YORN_IDS])
    cap = build_tempcompass_captioning(tmp_path / "cap")
    config = EvalConfig(
        datasets=[
            DatasetSpec(tsv=mcq, name="TempCompass_MCQ", benchmark="tempcompass"),
            DatasetSpec(tsv=yorn, name="TempCompass_YorN", benchmark="tempcompass"),
            DatasetSpec(tsv=cap, name="TempCompass_Captioning", benchmark="tempcompass_captioning"),
        ],
        models=[ModelSpec(name="m", kind="random")],
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    mcq_cell, yorn_cell, cap_cell = cells_of(config)
    _answer(mcq_cell, ws, {i: OUTPUTS[i] for i in MCQ_IDS})
    yorn_keys = _answer(yorn_cell, ws, {i: OUTPUTS[i] for i in YORN_IDS if i != "12"})
    with Journal(yorn_cell.log_dir(ws), "main") as log:  # q12 fails: 0, as unreadable is
        log.append(failed("12", "Timeout", "slow", attempts=1, answer_key=yorn_keys["12"]))
    captions = {sid: f"caption {sid}" for sid in CAPTIONING_SCORES}
    cap_keys = _answer(cap_cell, ws, captions)
    write_verdicts(
        cap_cell,
        ws,
        {sid: (cap_keys[sid], captions[sid], v) for sid, v in CAPTIONING_SCORES.items()},
    )

    for cell in (mcq_cell, yorn_cell, cap_cell):
        _report(cell, ws)
    # the MCQ file was reported first: its table was refreshed as the others came in
    for report in (json.loads(ws.cell_json("m", name).read_text()) for name in FILES):
        pooled = report["pooled"]
        assert pooled["name"] == "TempCompass" and pooled["files"] == FILES
        rows = [(r["dim.task_type"], r["success"], r["overall"], r["acc"]) for r in pooled["rows"]]
        assert rows == POOLED_ROWS
    # each file's own numbers stay its own: the yes/no file alone is 3 of 5
    yorn_report = json.loads(ws.cell_json("m", "TempCompass_YorN").read_text())
    assert yorn_report["accuracy"] == 0.6 and yorn_report["per_category"]["speed"] == 1.0
    sheet = pd.read_excel(ws.cell_xlsx("m", "TempCompass_MCQ"), sheet_name="pooled")
    assert sheet["dim.task_type"].tolist()[:3] == [r[0] for r in POOLED_ROWS[:3]]
    assert sheet.loc[sheet["dim.task_type"] == "action", "acc"].tolist() == [71.43]
    assert sheet["dim.task_type"].tolist()[-1] == f"files pooled: {', '.join(FILES)}"

    # q12 (yes/no, direction) is answered now, "no": right. The other files' reports get
    # the new table and keep their results and when they were made
    stamps = {name: json.loads(ws.cell_json("m", name).read_text()) for name in FILES}
    with Journal(yorn_cell.log_dir(ws), "main") as log:
        log.append(PredictionRecord("12", "ok", "no", answer_key=yorn_keys["12"]))
    _report(yorn_cell, ws)
    for name in FILES:
        report = json.loads(ws.cell_json("m", name).read_text())
        table = {r["dim.task_type"]: (r["success"], r["overall"]) for r in report["pooled"]["rows"]}
        assert table["direction. yes_no"] == (1, 2) and table["overall"] == (12, 20)
        if name != "TempCompass_YorN":
            before = stamps[name]
            assert report["evaluated_at"] == before["evaluated_at"]
            assert report["report_digest"] == before["report_digest"]
            assert {k: v for k, v in report.items() if k != "pooled"} == {
                k: v for k, v in before.items() if k != "pooled"
            }
    sheet = pd.read_excel(ws.cell_xlsx("m", "TempCompass_Captioning"), sheet_name="pooled")
    assert sheet.loc[sheet["dim.task_type"] == "overall", "success"].tolist() == [12]
    cap_sheets = pd.read_excel(ws.cell_xlsx("m", "TempCompass_Captioning"), sheet_name=None)
    assert list(cap_sheets) == ["predictions", "breakdowns", "summary", "pooled"]
