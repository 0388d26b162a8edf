"""Which samples were in flight when a rank died, so a sample that keeps crashing (or
hanging) its rank becomes a failure record after N launches instead of failing forever.

A rank marks `+key` (the sample's answer key) before the model sees a sample and `-key`
if it is asked to stop (SIGTERM) while the sample is still in flight: that stop was not
the sample's fault. A sample's crash count is its `+` marks minus its `-` marks minus
the records the ranks wrote for it under that key: a start that never produced a
record died with its rank. Marks and records are keyed by answer key in files named
per writer, so the count holds across shard counts and world sizes, like the
prediction logs themselves, and a changed sample starts again from zero.

The limit counts crashes over all runs, but a run gives up on a sample (records it as
`RankCrashed`) only after asking it itself (`RunCrashes`): a sample that reached the
limit in an earlier run is asked again, once, alone and last, by the next run or a
flow-run retry, so a fixed cause is seen; a `RankCrashed` record is final only for the
run that wrote it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from evalcore.atomic import atomic_write_text
from evalcore.predictions.journal import iter_lines, open_exclusive
from evalcore.predictions.log import iter_records

RANK_LOG = re.compile(r"^shard\d+-rank\d+(-\d+)?\.jsonl$")


def rank_writer(shard: int, rank: int) -> str:
    return f"shard{shard}-rank{rank}"


class StartLog:
    """One rank's marks file: a journal (one writer, append-only, one `write` per line;
    if a living writer holds `path`, the next free `{stem}-2{suffix}`, ...)."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        self.path, self._file = open_exclusive(path.parent, path.stem, path.suffix)
        self._marked: set[str] = set()
        self.in_flight: set[str] = set()

    def started(self, ids: Iterable[str]) -> None:
        """Mark answer keys the model is about to see; each once per launch (the
        runner's retry of a failed batch in halves is not a new attempt)."""
        new = [i for i in ids if i not in self._marked]
        if new:
            self._marked.update(new)
            self.in_flight.update(new)  # before the write: a SIGTERM may land right after it
            self._file.write("".join(f"+{i}\n" for i in new))

    def finished(self, answer_key: str) -> None:
        self.in_flight.discard(answer_key)

    def interrupted(self) -> None:
        """Called on SIGTERM: the samples in flight did not cause this stop."""
        if self.in_flight and not self._file.closed:
            self._file.write("".join(f"-{i}\n" for i in sorted(self.in_flight)))
            self._file.flush()
            self.in_flight.clear()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def crash_counts(started_dir: Path, log_dir: Path) -> dict[str, int]:
    """Answer key -> launches in which that sample went into the model and its rank
    died."""
    net: Counter[str] = Counter()
    for path in sorted(Path(started_dir).glob("*.txt")) if Path(started_dir).is_dir() else []:
        for line in iter_lines(path):  # a torn last line: a mark its rank never finished
            if line[:1] == "+":
                net[line[1:-1]] += 1
            elif line[:1] == "-":
                net[line[1:-1]] -= 1
    if Path(log_dir).is_dir():
        for path in Path(log_dir).glob("*.jsonl"):
            if RANK_LOG.match(path.name):
                for record in iter_records(path):
                    if record.answer_key in net:
                        net[record.answer_key] -= 1
    return {sample_id: n for sample_id, n in net.items() if n > 0}


@dataclass
class RunCrashes:
    """One run's view of a shard's crash counts: the counts when the run first came to the
    shard (`before`) and the answer keys it gave up on. A shard task's retries within the
    run share it; the next run (a new mark) starts a new one. `run` marks the run: any
    string the caller keeps for a run (the `eval` flow: one per call of the flow, so each
    flow-run attempt is a run of its own)."""

    path: Path
    run: str
    before: dict[str, int] = field(default_factory=dict)
    gave_up: set[str] = field(default_factory=set)

    @classmethod
    def begin(cls, path: Path, run: str, crashes: Mapping[str, int]) -> RunCrashes:
        """The view of `run`: read from `path`, or, at the run's first call, made from the
        current `crashes` (answer key -> count) and written there (the latest run only)."""
        try:
            saved = json.loads(Path(path).read_text(encoding="utf-8"))
            if saved.get("run") == run:
                return cls(Path(path), run, dict(saved["before"]), set(saved["gave_up"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        view = cls(Path(path), run, dict(crashes))
        view._write()
        return view

    def in_run(self, key: str, crashes: Mapping[str, int]) -> int:
        """Crashes of `key` since this run began."""
        return crashes.get(key, 0) - self.before.get(key, 0)

    def exhausted(self, key: str, crashes: Mapping[str, int], max_attempts: int) -> bool:
        """Reached the limit, and crashed again in this run: give up on it (for this run)."""
        return crashes.get(key, 0) >= max_attempts and self.in_run(key, crashes) >= 1

    def give_up(self, keys: Iterable[str]) -> None:
        """Record that this run wrote `RankCrashed` for `keys`: not asked again in it."""
        self.gave_up.update(keys)
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"run": self.run, "before": self.before, "gave_up": sorted(self.gave_up)}
        atomic_write_text(self.path, json.dumps(data))
