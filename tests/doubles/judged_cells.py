"""A judged cell on disk without a server: MMBench-Video's tiny dataset (8 questions,
scored 0-3) answered by model `m`, its prediction log and the judge's verdict log
written as the judge stage writes them (`write_verdicts`, for any judged cell), so
scoring and reports read real files."""

from __future__ import annotations

import json
from pathlib import Path

from evalcore.api.endpoint import EndpointSpec
from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, CellTrials, extract_dataset_frames
from evalcore.judge.scores import Judgement, current_scores, judgement_key
from evalcore.predictions import Journal, PredictionRecord, failed
from evalcore.reports import report_cell
from evalcore.workspace import Workspace
from tests.doubles.benchmarks.open_ended import build_mmbench_video
from tests.doubles.cells import one_cell

JUDGE = EndpointSpec(base_url="http://127.0.0.1:9/v1", model="judge")


def judged_cell(
    root: Path, verdicts: dict[str, float | None], model_failures=()
) -> tuple[Cell, Workspace]:
    """Every answer's verdict by `JUDGE` from `verdicts` (a score, or None: the judge
    failed on it; an id it lacks was never judged); the ids in `model_failures` failed by
    the model instead of answering."""
    tsv = build_mmbench_video(root / "mmv")
    _, cell, ws, keys = one_cell(tsv, root, "mmbench_video")
    samples = load_samples(cell.dataset)
    with Journal(cell.log_dir(ws), "main") as log:
        for s in samples:
            sid = s.sample_id
            if sid in model_failures:
                log.append(failed(sid, "ServerError", "500", attempts=2, answer_key=keys[sid]))
            else:
                log.append(PredictionRecord(sid, "ok", f"answer {sid}", answer_key=keys[sid]))
    write_verdicts(cell, ws, {sid: (keys[sid], f"answer {sid}", v) for sid, v in verdicts.items()})
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    return cell, ws


def write_verdicts(
    cell: Cell, ws: Workspace, verdicts: dict[str, tuple[str, str, float | None]]
) -> None:
    """`JUDGE`'s verdict log as the judge stage writes it: sample id -> (the answer's
    key, its text, the score or None: the judge failed on it)."""
    cell.judgements_dir(ws).mkdir(parents=True, exist_ok=True)
    version = CellTrials([cell]).benchmark.judge_version
    with Journal(cell.judgements_dir(ws), f"judge-{JUDGE.identity}") as log:
        for sid, (answer_key, text, score) in verdicts.items():
            key = judgement_key(JUDGE.identity, version, answer_key, text)
            if score is None:
                log.append(Judgement(sid, key, "failed", error_type="ServerError", error="500"))
            else:
                log.append(Judgement(sid, key, "ok", score, str(int(score))))


def report_judged(cell: Cell, ws: Workspace, judge: EndpointSpec | None = JUDGE) -> dict:
    """Score the cell as the `score` task does (the judge's current verdicts, or none
    without a judge) and return its JSON report."""
    trials = CellTrials([cell])
    scores = current_scores(trials, ws, judge) if judge is not None else None
    report_cell(trials, ws, scores=scores)
    return json.loads(ws.cell_json("m", "MMBench-Video").read_text())
