"""Scoring: option-letter extraction, per-category accuracy, trials, unjudged answers."""

from evalcore.scoring.accuracy import (
    CellScore,
    ScoredSample,
    TrialSummary,
    aggregate_trials,
    score_samples,
    summarize,
)
from evalcore.scoring.letters import extract_option_letter
from evalcore.scoring.unjudged import Unjudged, describe_unjudged

__all__ = [
    "CellScore",
    "ScoredSample",
    "TrialSummary",
    "Unjudged",
    "aggregate_trials",
    "describe_unjudged",
    "extract_option_letter",
    "score_samples",
    "summarize",
]
