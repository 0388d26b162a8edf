"""Which samples were in flight when a rank died, so a sample that keeps crashing (or
hanging) its rank becomes a failure record after N launches instead of failing forever.

A rank marks `+key` (the sample's answer key) before the model sees a sample and `-key`
if it is asked to stop (SIGTERM) while the sample is still in flight: that stop was not
the sample's fault. A sample's crash count is its `+` marks minus its `-` marks minus
the records the ranks wrote for it under that key: a start that never produced a
record died with its rank. Marks and records are keyed by answer key in files named
per writer, so the count holds across shard counts and world sizes, like the
prediction logs themselves, and a changed sample starts again from zero.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from evalcore.predictions.log import iter_records, repair_torn_tail

RANK_LOG = re.compile(r"^shard\d+-rank\d+(-\d+)?\.jsonl$")


def rank_writer(shard: int, rank: int) -> str:
    return f"shard{shard}-rank{rank}"


class StartLog:
    """One rank's marks file (one writer, append-only, one `write` per line)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
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
        for line in path.read_text(encoding="utf-8").splitlines():
            if line[:1] == "+":
                net[line[1:]] += 1
            elif line[:1] == "-":
                net[line[1:]] -= 1
    if Path(log_dir).is_dir():
        for path in Path(log_dir).glob("*.jsonl"):
            if RANK_LOG.match(path.name):
                for record in iter_records(path):
                    if record.answer_key in net:
                        net[record.answer_key] -= 1
    return {sample_id: n for sample_id, n in net.items() if n > 0}
