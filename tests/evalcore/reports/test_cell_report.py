"""A cell's report files are written when what they say changes, and only then."""

from __future__ import annotations

import json

import pandas as pd

from evalcore.benchmarks import load_samples
from evalcore.cell import CellTrials, cells_of, extract_dataset_frames
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.predictions import Journal, PredictionRecord
from evalcore.reports import report_cell
from evalcore.workspace import Workspace


def test_a_report_that_would_not_change_is_not_written_again(tmp_path):
    tsv = tmp_path / "D.tsv"
    rows = [
        {"index": i, "video": f"v{i}", "question": "Q?", "answer": "A", "candidates": "['x', 'y']"}
        for i in range(3)
    ]
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[ModelSpec(name="m", kind="random")],
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    (cell,) = cells_of(config)
    samples = load_samples(cell.dataset)
    keys = cell.answer_keys(samples, video_fingerprints(samples, FrameCache(ws.frame_cache_dir)))
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
