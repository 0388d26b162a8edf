"""Which cached frames answer which sample, and what each sample's video is: the frame
index of one dataset under one frame plan, written while its frames are extracted.

The index is a journal (JSON lines), so inference can start on the first clips while
the others are still being decoded:

    {"run": ..., "pid": ..., "videos": {sample id: video fingerprint}}   the head
    {"samples": [ids], "key": frame cache key}                           a clip is done
    {"samples": [ids], "error_type": ..., "error": ...}                  a clip failed
    {"end": "complete"}  or  {"end": "aborted", "reason": ...}           the last line

The head comes first, before any decoding: every video is fingerprinted up front
(memoized, so a re-run only stats them), which gives every sample's answer key at once.
Then one line per clip as it finishes, in completion order. A reader (`FrameIndex`)
waits per sample (`arrivals`): a slow or broken video holds back only its own samples.

The writer holds an exclusive `flock` on the journal from before it appears until the
end line is written (`evalcore.predictions.journal.start`), so a reader tells a live
extraction from a dead one: a journal without an end line whose lock is free was left by
a process that died (kill -9, OOM), and its missing clips become `ExtractionStopped`
failures at once, never a wait for ever. A new extraction writes a new journal and
renames it into place; it never rewrites one, so a reader that opened the previous
journal reads that one to its end. The new journal's temporary name carries the
writer's pid and host (`{name}.tmp-{pid}@{host}-...`): an extraction starts by removing
those whose writer is gone (`remove_stale_journals`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalcore.atomic import TMP_MARK, sweep
from evalcore.dataset import Sample
from evalcore.frames.cache import (
    FrameCache,
    FrameEntry,
    FrameFailure,
    VideoJob,
)
from evalcore.frames.extract import extract_videos, healable
from evalcore.frames.settings import FrameSettings
from evalcore.predictions import journal
from evalcore.predictions.failures import FailureKind
from evalcore.predictions.lock import is_locked

FrameLookup = dict[str, FrameEntry | FrameFailure]
_HASH_THREADS = 2
_NO_FINGERPRINT = ("invalid-path", "missing", "unreadable:")


def video_job(sample: Sample) -> VideoJob | None:
    if sample.video_path is None:
        return None
    return VideoJob(sample.video_path, sample.start, sample.end)


def video_fingerprints(samples: Sequence[Sample], cache: FrameCache) -> dict[str, str]:
    """Sample id -> its video's content fingerprint (memoized: a known, unchanged file is
    not read; new ones are hashed by two threads, hashlib releases the GIL), or the
    state of a video that has none: `invalid-path`, `missing`, `unreadable`. A file
    that appears or changes gets a new fingerprint."""
    paths = {s.video_path for s in samples if s.video_path is not None}
    known: dict[Path, str] = cache.known_fingerprints(paths)
    todo = [p for p in paths if p not in known]

    def one(path: Path) -> str:
        if not path.exists():  # a file, or a folder of frames
            return "missing"
        try:
            return cache.video_fingerprint(path)
        except OSError as error:
            return f"unreadable:{error.errno}"

    with ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="fingerprint") as threads:
        known.update(zip(todo, threads.map(one, todo), strict=True))
    return {
        s.sample_id: known[s.video_path] if s.video_path is not None else "invalid-path"
        for s in samples
    }


class FrameIndex:
    """The frame index of one dataset under one frame plan, as far as it is written.

    `videos` is complete from the start (the journal's head); `lookup` grows as clips
    arrive. Built from a dict (`FrameIndex(lookup, videos)`) it is a finished index;
    `read_frame_index` opens a journal that may still be written.
    """

    def __init__(self, lookup: FrameLookup, videos: dict[str, str]) -> None:
        self.lookup = lookup  # sample id -> cached frames or the failure standing for them
        self.videos = videos  # sample id -> video fingerprint (see `video_fingerprints`)

    def outcome(self, sample_id: str) -> FrameEntry | FrameFailure | None:
        """A sample's frames or the failure standing for them; None while its clip is
        still being extracted (only an index being written has such samples)."""
        return self.lookup.get(sample_id) or FrameFailure(
            FailureKind.FramesMissing, "no frames were extracted"
        )

    def frames_for(self, sample_id: str) -> FrameEntry | FrameFailure:
        """A sample's cached frames, or the failure that stands for them (missing: never
        extracted). Every launcher turns a failure into a record without a model."""
        return self.outcome(sample_id) or FrameFailure(
            FailureKind.FramesMissing, "not extracted yet"
        )

    def arrivals(
        self, sample_ids: Iterable[str], on_wait: Callable[[], None] | None = None
    ) -> Iterator[list[str]]:
        """`sample_ids` in groups, each as soon as its samples' outcomes are known (then
        `frames_for` answers them): a finished index yields them all at once."""
        ids = list(dict.fromkeys(sample_ids))
        if ids:
            yield ids


class FrameJournal(FrameIndex):
    """A frame index read from its journal, which an extraction may still be writing."""

    def __init__(self, path: Path, cache: FrameCache, poll_s: float = 0.05) -> None:
        self.path = Path(path)
        self.cache = cache
        self.poll_s = poll_s
        self._file = open(self.path, "rb")  # noqa: SIM115 -- held to tail it; closed by GC
        self._partial = b""
        self.ended: dict[str, Any] | None = None  # the end line, once read
        head = self._lines()
        if not head or "videos" not in head[0]:
            raise ValueError(f"{self.path}: not a frame index (no head line)")
        self.run = head[0].get("run", "")
        super().__init__({}, dict(head[0]["videos"]))
        self._apply(head[1:])

    def outcome(self, sample_id: str) -> FrameEntry | FrameFailure | None:
        found = self.lookup.get(sample_id)
        if found is not None or self.ended is None:
            return found
        return FrameFailure(FailureKind.FramesMissing, "no frames were extracted")

    def refresh(self) -> None:
        """Read the lines written since the last look."""
        self._apply(self._lines())

    def arrivals(
        self, sample_ids: Iterable[str], on_wait: Callable[[], None] | None = None
    ) -> Iterator[list[str]]:
        """Yields each group of `sample_ids` whose clips have finished since the last
        group, waiting (polling the journal, calling `on_wait` each time) while none
        has. If the extraction ends without a sample's clip (it was aborted, or its
        process died), that sample arrives at once as an `ExtractionStopped` failure."""
        waiting = dict.fromkeys(sample_ids)
        while waiting:
            gone = self.ended is not None or not self._writer_alive()
            self.refresh()  # after the check: what a finished writer wrote is read
            arrived = [i for i in waiting if i in self.lookup]
            if not arrived and not gone:
                if on_wait is not None:
                    on_wait()
                time.sleep(self.poll_s)
                continue
            if not arrived:
                for i in waiting:
                    self.lookup[i] = self._stopped()
                arrived = list(waiting)
            for i in arrived:
                del waiting[i]
            yield arrived

    def _stopped(self) -> FrameFailure:
        if self.ended is None:
            why = "its process ended without finishing the index"
        elif self.ended.get("end") == "aborted":
            why = self.ended.get("reason") or "it was aborted"
        else:
            return FrameFailure(FailureKind.FramesMissing, "no frames were extracted")
        return FrameFailure(
            FailureKind.ExtractionStopped, f"frame extraction stopped before this clip: {why}"
        )

    def _writer_alive(self) -> bool:
        """Whether the writer still holds its lock on this journal (see the module)."""
        return is_locked(self._file.fileno())

    def _lines(self) -> list[dict[str, Any]]:
        """Whole lines appended since the last read (a torn last line waits)."""
        data = self._partial + self._file.read()
        *whole, self._partial = data.split(b"\n")
        return [json.loads(line) for line in whole if line.strip()]

    def _apply(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            if "end" in line:
                self.ended = line
                continue
            if "key" in line:
                entry = healable(self.cache.open(line["key"]))
                outcome: FrameEntry | FrameFailure = entry or FrameFailure(
                    FailureKind.FramesMissing,
                    f"frame cache entry {line['key']} is gone; re-run extraction",
                )
            else:
                outcome = FrameFailure(line["error_type"], line["error"])
            for sample_id in line["samples"]:
                self.lookup[sample_id] = outcome


class FrameIndexWriter:
    """Writes one frame index journal (see the module docstring). Use as a context
    manager: a clean exit writes `{"end": "complete"}`, an exception the abort line."""

    def __init__(self, path: Path, videos: dict[str, str], run: str = "") -> None:
        head = {"run": run, "pid": os.getpid(), "started": time.time(), "videos": videos}
        self._file = journal.start(Path(path), json.dumps(head, sort_keys=True))

    def add(self, sample_ids: Sequence[str], outcome: FrameEntry | FrameFailure) -> None:
        """The outcome of one clip, for the samples that ask about it."""
        if isinstance(outcome, FrameEntry):
            self._write({"samples": list(sample_ids), "key": outcome.key})
        else:
            line = {"error_type": outcome.error_type, "error": outcome.message}
            self._write({"samples": list(sample_ids), **line})

    def close(self, error: BaseException | None = None) -> None:
        """The end line, then the lock goes with the file."""
        if self._file.closed:
            return
        try:
            if error is None:
                self._write({"end": "complete"})
            else:
                self._write({"end": "aborted", "reason": f"{type(error).__name__}: {error}"})
        finally:
            self._file.close()

    def _write(self, line: dict[str, Any]) -> None:
        self._file.write(json.dumps(line, sort_keys=True) + "\n")  # one write per line

    def __enter__(self) -> FrameIndexWriter:
        return self

    def __exit__(self, exc_type, exc: BaseException | None, tb) -> None:
        self.close(exc)


@dataclass(frozen=True)
class FramesSummary:
    """What one extraction did (small: a Prefect task returns it)."""

    dataset: str
    index_path: str
    videos: int
    hits: int
    decoded: int
    failed: int
    seconds: float


def prepare_frames(
    samples: Sequence[Sample],
    settings: FrameSettings,
    cache: FrameCache,
    index_path: Path,
    on_done: Callable[..., None] | None = None,
    run: str = "",
) -> FramesSummary:
    """Extract (or find cached) the frames of every distinct clip, writing the index as
    they finish: the fingerprints of every video first (the head, marked with `run`),
    then one line per clip, then the end line."""
    remove_stale_journals(Path(index_path).parent)
    videos = video_fingerprints(samples, cache)
    clips: dict[VideoJob, list[str]] = {}  # clip -> the samples that ask about it
    invalid = []
    for s in samples:
        job = video_job(s)
        if job is None:
            invalid.append(s)
        else:
            clips.setdefault(job, []).append(s.sample_id)
    fingerprints = {
        s.video_path: videos[s.sample_id]
        for s in samples
        if s.video_path is not None and not videos[s.sample_id].startswith(_NO_FINGERPRINT)
    }
    with FrameIndexWriter(index_path, videos, run) as index:
        for s in invalid:
            index.add([s.sample_id], FrameFailure(FailureKind.InvalidPath, s.path_error or ""))

        def done(job: VideoJob, result: FrameEntry | FrameFailure) -> None:
            index.add(clips[job], result)
            if on_done is not None:
                on_done(job, result)

        report = extract_videos(list(clips), cache, settings, done, fingerprints=fingerprints)
    return FramesSummary(
        dataset=samples[0].dataset if samples else "",
        index_path=str(index_path),
        videos=len(clips),
        hits=report.hits,
        decoded=report.decoded,
        failed=report.failed,
        seconds=round(report.seconds, 3),
    )


def remove_stale_journals(directory: Path) -> int:
    """Delete the temporary journals (`*.tmp-*`) in `directory` whose writer is gone
    (`evalcore.atomic.sweep`); returns how many were removed."""
    return sweep(directory, f"*{TMP_MARK}*") if directory.is_dir() else 0


def read_frame_index(path: Path, cache: FrameCache) -> FrameJournal:
    """The index at `path` as written so far (`arrivals` waits for the rest); a cache
    entry deleted since extraction becomes a failure."""
    return FrameJournal(path, cache)


def index_run(path: Path) -> str | None:
    """The `run` mark of the journal at `path` (None: no journal there yet)."""
    head = _head(path)
    return None if head is None else head.get("run", "")


def read_index_videos(path: Path) -> dict[str, str]:
    """Only the video fingerprints of an index (scoring needs no frames)."""
    head = _head(path)
    if head is None:
        raise FileNotFoundError(f"{path}: no frame index")
    return dict(head["videos"])


def index_frame_keys(path: Path) -> set[str] | None:
    """The frame cache keys an index refers to (`evalcore gc` keeps their entries); None
    while an extraction is still writing it (its clips are not all listed yet)."""
    keys: set[str] = set()
    ended = False
    with open(path, "rb") as file:
        # asked first: a writer gone by now has written all it will into this file
        writing = is_locked(file.fileno())
        for line in journal.whole_lines(file):
            item = json.loads(line)
            ended = ended or "end" in item
            if "key" in item and "samples" in item:
                keys.add(item["key"])
    return None if writing and not ended else keys


def _head(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as file:
            line = file.readline()
    except FileNotFoundError:
        return None
    return json.loads(line) if line.endswith("\n") else None
