"""Scoring: option-letter extraction, per-category accuracy, trials."""

from evalcore.scoring.accuracy import (
    CellScore,
    ScoredSample,
    TrialSummary,
    aggregate_trials,
    score_samples,
    summarize,
)
from evalcore.scoring.letters import extract_option_letter

__all__ = [
    "CellScore",
    "ScoredSample",
    "TrialSummary",
    "aggregate_trials",
    "extract_option_letter",
    "score_samples",
    "summarize",
]
