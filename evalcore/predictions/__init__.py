"""Durable prediction logs: what survives a kill -9 and what a resume reads."""

from evalcore.predictions.log import (
    PredictionLog,
    PredictionRecord,
    failed,
    failure_digest,
    has_gaps,
    merge_records,
    read_predictions,
    repair_torn_tail,
)

__all__ = [
    "PredictionLog",
    "PredictionRecord",
    "failed",
    "failure_digest",
    "has_gaps",
    "merge_records",
    "read_predictions",
    "repair_torn_tail",
]
