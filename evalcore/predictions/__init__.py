"""Durable prediction logs: what survives a kill -9 and what a resume reads; the
journals they are, and the failure kinds their records carry."""

from evalcore.predictions.failures import FailureKind, is_permanent
from evalcore.predictions.journal import Journal, iter_lines, open_exclusive
from evalcore.predictions.log import (
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
    "FailureKind",
    "Journal",
    "PredictionRecord",
    "failed",
    "has_gaps",
    "is_permanent",
    "iter_lines",
    "iter_records",
    "merge_records",
    "open_exclusive",
    "pending_ids",
    "read_records",
    "transient_digest",
]
