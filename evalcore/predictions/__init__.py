"""Durable prediction logs: what survives a kill -9 and what a resume reads."""

from evalcore.predictions.journal import Journal, iter_lines, open_exclusive
from evalcore.predictions.log import (
    PERMANENT_FAILURES,
    PredictionRecord,
    failed,
    has_gaps,
    iter_records,
    merge_records,
    pending_ids,
    read_records,
    transient_digest,
)

__all__ = [
    "PERMANENT_FAILURES",
    "Journal",
    "PredictionRecord",
    "failed",
    "has_gaps",
    "iter_lines",
    "iter_records",
    "merge_records",
    "open_exclusive",
    "pending_ids",
    "read_records",
    "transient_digest",
]
