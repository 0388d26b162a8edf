"""Inference: the one runner (pending samples -> records) and its launchers (inline,
torchrun shards). The API launcher lives in `evalcore.api.cell`."""

from evalcore.inference.inline import infer_inline
from evalcore.inference.runner import InferenceSummary, UnitState, answer_samples, run_unit, split

__all__ = [
    "InferenceSummary",
    "UnitState",
    "answer_samples",
    "infer_inline",
    "run_unit",
    "split",
]
