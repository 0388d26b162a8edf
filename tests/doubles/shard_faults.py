"""A test-only model kind for the end-to-end test, `tests.doubles.shard_faults:Flaky` (the
repo root is on the worker's PYTHONPATH): it counts how often its inference unit
executes, and fails the unit while a marker file exists, the way a crashed shard fails."""

from __future__ import annotations

import os

from evalcore.models import ModelParams
from evalcore.models.random_choice import RandomChoiceModel


class InjectedShardFailure(RuntimeError):
    """Raised on purpose: the unit must fail as a whole, not as per-sample records."""


class FlakyParams(ModelParams):
    runs_file: str
    fail_marker: str = ""


class Flaky(RandomChoiceModel):
    """Loaded once per unit that has samples to answer; loading it is one execution."""

    Params = FlakyParams

    def load(self, runtime) -> None:
        super().load(runtime)
        with open(self.params.runs_file, "a", buffering=1) as runs:
            runs.write(f"{os.getpid()}\n")
        if self.params.fail_marker and os.path.exists(self.params.fail_marker):
            raise InjectedShardFailure(f"{self.params.fail_marker} exists")


def executions(runs_file) -> int:
    return len(open(runs_file).read().split()) if os.path.exists(runs_file) else 0
