"""A test-only model kind for the end-to-end test, `shard_faults:flaky` (this folder is on
the worker's PYTHONPATH): it counts how often its inference unit executes, and fails the
unit while a marker file exists, the way a crashed shard fails."""

from __future__ import annotations

import os

from evalcore.models.random_choice import RandomChoiceModel


class InjectedShardFailure(RuntimeError):
    """Raised on purpose: the unit must fail as a whole, not as per-sample records."""


def flaky(runs_file: str, fail_marker: str = "", seed: int = 0) -> RandomChoiceModel:
    """Built once per unit that has samples to answer; building it is one execution."""
    with open(runs_file, "a", buffering=1) as runs:
        runs.write(f"{os.getpid()}\n")
    if fail_marker and os.path.exists(fail_marker):
        raise InjectedShardFailure(f"{fail_marker} exists")
    return RandomChoiceModel(seed=seed)


def executions(runs_file) -> int:
    return len(open(runs_file).read().split()) if os.path.exists(runs_file) else 0
