"""Scoring: option letters (under named rule sets), accuracy per category, trials, unjudged."""

from evalcore.scoring.accuracy import (
    CellScore,
    ScoredSample,
    TrialSummary,
    aggregate_trials,
    score_samples,
    summarize,
)
from evalcore.scoring.letters import extract_option_letter
from evalcore.scoring.rule_sets import DEFAULT_RULE_SET, RuleSet, has_letter_rule, read_letter
from evalcore.scoring.unjudged import Unjudged, describe_unjudged

__all__ = [
    "DEFAULT_RULE_SET",
    "CellScore",
    "RuleSet",
    "ScoredSample",
    "TrialSummary",
    "Unjudged",
    "aggregate_trials",
    "describe_unjudged",
    "extract_option_letter",
    "has_letter_rule",
    "read_letter",
    "score_samples",
    "summarize",
]
