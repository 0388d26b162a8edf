"""Inference: the one runner (pending samples -> records) and its launchers (inline,
torchrun shards). The API launcher lives in `evalcore.inference.api`.

Importing this package imports none of them: each name is imported from its module on
first use, so a small module of it (the preload client a torchrun rank starts with, the
parent-death signal) starts without the pipeline's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalcore.lazy import lazy_exports

if TYPE_CHECKING:
    from evalcore.inference.inline import infer_inline
    from evalcore.inference.runner import (
        InferenceSummary,
        UnitState,
        answer_samples,
        run_unit,
        split,
    )

_EXPORTS = {
    "InferenceSummary": "evalcore.inference.runner",
    "UnitState": "evalcore.inference.runner",
    "answer_samples": "evalcore.inference.runner",
    "infer_inline": "evalcore.inference.inline",
    "run_unit": "evalcore.inference.runner",
    "split": "evalcore.inference.runner",
}

__all__ = [
    "InferenceSummary",
    "UnitState",
    "answer_samples",
    "infer_inline",
    "run_unit",
    "split",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
