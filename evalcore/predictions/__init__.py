"""Durable prediction logs: what survives a kill -9 and what a resume reads."""

from evalcore.predictions.log import (
    PERMANENT_FAILURES,
    PredictionLog,
    PredictionRecord,
    failed,
    has_gaps,
    iter_records,
    merge_records,
    pending_ids,
    read_records,
    repair_torn_tail,
    transient_digest,
)

__all__ = [
    "PERMANENT_FAILURES",
    "PredictionLog",
    "PredictionRecord",
    "failed",
    "has_gaps",
    "iter_records",
    "merge_records",
    "pending_ids",
    "read_records",
    "repair_torn_tail",
    "transient_digest",
]
