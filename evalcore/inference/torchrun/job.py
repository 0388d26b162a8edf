"""What one torchrun launch of a shard must do, and where its files live.

The parent writes a `ShardJob` as JSON into a fresh launch folder; every rank reads it
(the only input a rank has besides torchrun's RANK / WORLD_SIZE), answers its share of
`todo` and reports its phase in `rank{R}.json` beside it, which the parent's watchdog
reads together with the rank's prediction log.

work_dir/shards/{model}/{dataset}/{cell key}/trial-{t}/
  started/shard{S}-rank{R}.txt        in-flight marks (see `attempts`), kept across launches
  shard{S}-of-{N}/                    S: 0-based, as in every name of the shard (`shard_label`)
    run.json                          the latest run's crash counts at its start (`attempts`)
    placed/<flow run id>.json         a placed shard's summary (placement pool)
    launch-{k}/
      job.json                        this ShardJob
      rank{R}.json                    the rank's phase, pid and counts
      torchrun.log, torchrun.pid      torchrun's own output and pid
      failure.txt                     the failure message, if the launch failed
      torchrun/<run>/attempt_0/{R}/   the rank's stdout.log, stderr.log, error.json
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalcore.atomic import atomic_write_text
from evalcore.inference.torchrun.plan import shard_label
from evalcore.processes import start_ticks


@dataclass(frozen=True)
class ShardJob:
    shard: int
    shard_count: int
    model_kind: str
    model_params: dict[str, Any]
    generation: dict[str, Any]  # GenerationConfig with the trial's seed
    batch_size: int
    dataset: dict[str, Any]  # DatasetSpec in JSON form
    frame_index: str
    frame_cache: str
    fingerprint_memo: str  # the frame cache's memo on this host (`Workspace.local_dir`)
    log_dir: str  # the cell's predictions folder; rank R appends shard{S}-rank{R}.jsonl
    started_dir: str
    launch_dir: str
    todo: list[str]  # ids to answer (minus progress at launch), manifest order
    answer_keys: dict[str, str]  # id -> answer key, for the ids of `todo`
    attempts: dict[str, int]  # id -> attempts recorded so far under that key
    suspects: list[str] = field(default_factory=list)  # crashed a rank before: run alone, last
    device: str = "cpu"  # "cpu" or "cuda"
    gpus_per_rank: int = 1
    process_group: bool = False
    timeout_s: float = 600.0  # init_process_group timeout
    prefetch: int = 4

    def write(self, path: Path) -> Path:
        atomic_write_text(path, json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def read(cls, path: Path) -> ShardJob:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class ShardPaths:
    """The folders of one model x dataset x trial's shards."""

    root: Path

    @property
    def started_dir(self) -> Path:
        return self.root / "started"

    def shard_dir(self, shard: int, count: int) -> Path:
        return self.root / shard_label(shard, count)

    def run_file(self, shard: int, count: int) -> Path:
        """The latest run's view of the shard's crash counts (`attempts.RunCrashes`)."""
        return self.shard_dir(shard, count) / "run.json"

    def placed_summary(self, shard: int, count: int, flow_run: str) -> Path:
        """What the shard flow run `flow_run` of a placed shard returns, for the task that
        waits on it on the flow's host (`inference.placement: pool`)."""
        return self.shard_dir(shard, count) / "placed" / f"{flow_run}.json"

    def new_launch_dir(self, shard: int, count: int) -> Path:
        base = self.shard_dir(shard, count)
        base.mkdir(parents=True, exist_ok=True)
        k = len(list(base.glob("launch-*")))
        while True:
            try:
                (path := base / f"launch-{k}").mkdir()
                return path
            except FileExistsError:
                k += 1


def rank_status_path(launch_dir: Path, rank: int) -> Path:
    return Path(launch_dir) / f"rank{rank}.json"


class RankStatus:
    """A rank's phase file. Phases: started, ready (model built), done; each with its time
    (the bench reads them). Every write is progress to the parent's watchdog."""

    def __init__(self, launch_dir: Path, rank: int) -> None:
        self.path = rank_status_path(launch_dir, rank)
        self.rank = rank
        self.fields: dict[str, Any] = {
            "pid": os.getpid(),
            "start_ticks": start_ticks(),  # with the pid: this process and no other
            "phases": {},
        }
        self.phase = "started"

    def set(self, phase: str, **extra: Any) -> None:
        self.fields["phases"][phase] = time.time()
        self.phase = phase
        self._write(**extra)

    def beat(self) -> None:
        """Rewrite the file in the same phase: alive, while waiting for frames."""
        self._write(waiting_for_frames=time.time())

    def _write(self, **extra: Any) -> None:
        self.fields.update(extra)
        status = {"rank": self.rank, "phase": self.phase, "time": time.time(), **self.fields}
        atomic_write_text(self.path, json.dumps(status))


def read_rank_status(launch_dir: Path, rank: int) -> dict[str, Any] | None:
    try:
        return json.loads(rank_status_path(launch_dir, rank).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
