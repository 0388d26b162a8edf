"""Per-cell outputs: `{model}_{dataset}.xlsx` for reading answers, a JSON for machines."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from evalcore.atomic import atomic_path, atomic_write_text
from evalcore.scoring import CellScore, ScoredSample, TrialSummary


def cell_stem(model: str, dataset: str) -> str:
    return f"{model}_{dataset}"


def write_cell_xlsx(path: Path, scored: Sequence[ScoredSample]) -> Path:
    """VLMEvalKit's columns (the TSV row) plus what this run adds to each sample."""
    rows = []
    for s in scored:
        rec = s.record
        rows.append(
            {
                **s.sample.row,
                "prediction": rec.prediction if rec and rec.ok else None,
                "extracted": s.extracted,
                "hit": int(s.hit),
                "status": s.status,
                "error_type": rec.error_type if rec else None,
                "error": rec.error if rec else None,
                "attempts": rec.attempts if rec else 0,
            }
        )
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_excel(tmp, index=False, engine="openpyxl")
    return path


def write_cell_json(
    path: Path, summary: TrialSummary, trials: Sequence[CellScore], settings: dict
) -> Path:
    """The cell's metrics, the per-trial detail and the settings that produced them."""
    payload = {
        **asdict(summary),
        "trial_scores": [{**asdict(t), "accuracy": t.accuracy} for t in trials],
        "settings": settings,
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True))
    return path
