"""A one-model, one-dataset grid over a TSV, with its samples' answer keys: what a test
needs to write prediction records that count."""

from __future__ import annotations

from pathlib import Path

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, cells_of
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.workspace import Workspace


def one_cell(
    tsv: Path, root: Path, benchmark: str = "generic"
) -> tuple[EvalConfig, Cell, Workspace, dict[str, str]]:
    """The config (model `m`, kind random; work and outputs under `root`), its one cell,
    the workspace, and each sample's current answer key."""
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=tsv, benchmark=benchmark)],
        models=[ModelSpec(name="m", kind="random")],
        output_dir=root / "out",
        work_dir=root / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    (cell,) = cells_of(config)
    samples = load_samples(cell.dataset)
    keys = cell.answer_keys(samples, video_fingerprints(samples, FrameCache(ws.frame_cache_dir)))
    return config, cell, ws, keys


# six `generic` answers (key B) that the answer rule sets read apart; (evalcore,
# vlmevalkit, lmms-eval) letters from tests/doubles/answers.py
SIX_ANSWERS = {
    "0": "B",  # B B B
    "1": "Both B and C",  # - - C
    "2": "<answer>B</answer>",  # - - B
    "3": "the man opens the door",  # B B -
    "4": "C",  # C C C
    "5": "Answer: the man opens the door",  # B B A
}


def reported_cell(root: Path, answers: dict[str, str] = SIX_ANSWERS):
    """A one-cell `generic` run (model `m`, dataset `D`, key B) whose journal holds
    `answers`, reported: (the cell, its workspace, the report_cell result)."""
    import pandas as pd

    from evalcore.cell import CellTrials, extract_dataset_frames
    from evalcore.predictions import Journal, PredictionRecord
    from evalcore.reports import report_cell
    from tests.doubles.answers import OPTIONS

    tsv = root / "D.tsv"
    row = {"question": "Q?", "answer": "B", "candidates": str(list(OPTIONS))}
    rows = [{"index": i, "video": f"v{i}", **row} for i in answers]
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    _, cell, ws, keys = one_cell(tsv, root)
    with Journal(cell.log_dir(ws), "main") as log:
        for i, said in answers.items():
            log.append(PredictionRecord(i, "ok", said, answer_key=keys[i]))
    extract_dataset_frames(cell.dataset, cell.frames, ws)
    return cell, ws, report_cell(CellTrials([cell]), ws)
