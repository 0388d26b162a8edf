"""Test models for sharded inference, built inside torchrun ranks by import path:
`kind: "tests.doubles.scripted_model:ScriptedModel"` (the repo root is on PYTHONPATH).

`ScriptedModel` answers like the `random` baseline (a hash of seed and sample id, so
any sharding gives the same answers), logs every call to `calls_file` (pid, rank,
ids), and can inject one fault a limited number of times: the count lives in
`fault_budget_file`, so "fail on the first two launches" survives process restarts.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

from evalcore.models import BaseVideoModel, ModelParams

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FAKE_KIND = "tests.doubles.scripted_model:ScriptedModel"


class InjectedCrash(BaseException):  # noqa: N818 - not an Exception: the runner must not catch it
    """Escapes the runner's per-sample error handling, so it ends the rank."""


class ScriptedParams(ModelParams):
    calls_file: str
    seed: int = 0
    delay_s: float = 0.0  # sleep per request
    cpu_s: float = 0.0  # burn this much CPU time per request (a CPU-bound model)
    # "kill" (SIGKILL itself), "hang", "raise" (InjectedCrash), or "load": `load` raises,
    # as a model whose weights cannot be loaded
    fault: str | None = None
    fault_ids: tuple[str, ...] = ()  # fire when the model sees one of these ids ...
    fault_after_calls: int | None = None  # ... or on this call of the process (1-based)
    fault_rank: int | None = None  # only in this rank
    fault_budget_file: str | None = None  # holds how many more times the fault fires


class ScriptedModel(BaseVideoModel):
    Params = ScriptedParams

    def __init__(self, params: ScriptedParams) -> None:
        super().__init__(params)
        self.name = "scripted"
        self.calls_file = Path(params.calls_file)
        self.seed = params.seed
        self.delay_s = params.delay_s
        self.cpu_s = params.cpu_s
        self.fault = params.fault
        self.fault_ids = set(params.fault_ids)
        self.fault_after_calls = params.fault_after_calls
        self.fault_rank = params.fault_rank
        self.budget = Path(params.fault_budget_file) if params.fault_budget_file else None
        self.rank = int(os.environ.get("RANK", "0"))
        self.calls = 0

    def load(self, runtime) -> None:
        super().load(runtime)
        if self.fault == "load":
            raise RuntimeError(f"cannot load weights in rank {self.rank}")

    def generate(self, requests, generation=None) -> list[str]:
        self.calls += 1
        ids = [r.sample_id for r in requests]
        line = json.dumps({"pid": os.getpid(), "rank": self.rank, "ids": ids, "t": time.time()})
        with open(self.calls_file, "a") as f:
            f.write(line + "\n")
        if self._should_fire(ids):
            self._fire()
        if self.delay_s:
            time.sleep(self.delay_s * len(requests))
        if self.cpu_s:
            until = time.process_time() + self.cpu_s * len(requests)
            while time.process_time() < until:
                pass
        return [self._pick(r) for r in requests]

    def _should_fire(self, ids: list[str]) -> bool:
        if self.fault is None or (self.fault_rank is not None and self.rank != self.fault_rank):
            return False
        hit = bool(self.fault_ids & set(ids)) or self.calls == self.fault_after_calls
        if not hit or self.budget is None:
            return hit
        left = int(self.budget.read_text() or 0) if self.budget.exists() else 0
        if left <= 0:
            return False
        self.budget.write_text(str(left - 1))
        return True

    def _fire(self) -> None:
        if self.fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault == "hang":
            while True:
                time.sleep(1)
        raise InjectedCrash(f"injected crash in rank {self.rank} (pid {os.getpid()})")

    def _pick(self, request) -> str:
        digest = hashlib.sha256(f"{self.seed}:{request.sample_id}".encode()).digest()
        return LETTERS[int.from_bytes(digest[:8], "big") % len(request.options)]


def read_calls(calls_file: Path) -> list[dict]:
    """Every model call logged so far (torn last line skipped)."""
    if not Path(calls_file).exists():
        return []
    out = []
    for line in Path(calls_file).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
