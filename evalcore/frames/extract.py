"""Turn many clips into cached frames: cache hits in this process, misses in killable
worker processes.

Decoders run in a pebble process pool, never in the caller: a decoder can hang holding
the GIL (decord on MPEG-TS), and only killing its process stops it. Workers start with
forkserver (spawn where that is missing), not fork: the caller may be a Prefect worker
or hold torch threads, which a forked child would inherit in an undefined state.
Workers write their entries straight into the cache, so only small records cross
process boundaries.

Videos the cache has fingerprinted before (or whose fingerprints the caller passes) are
looked up at once; new ones are hashed by threads (hashlib releases the GIL) while the
worker processes start and decode, so a first run does not wait for every file to be
read before decoding begins.

Several processes may extract the same clips into one cache at once (two flows on one
dataset, a retry next to a run still going): a worker takes an exclusive `flock` on
`{cache root}/.locks/{key}.lock` before decoding and looks in the cache again once it
holds it, so each clip is decoded once and the other process gets a cache hit. A
worker killed on timeout or crashing drops its lock with its process. The time spent
waiting counts toward the waiting worker's `timeout_s`; the holder decodes under the
same limit, so the wait ends within one timeout of the holder's start.

A worker sends its stderr (file descriptor 2) to a temporary file while a decoder runs:
decord prints its C++ errors there, and their last lines go into the video's failure
message rather than onto the terminal. Each extraction starts by sweeping what killed
writers left in the cache (`FrameCache.remove_stale_temp`).

A cache entry found damaged when it is read is extracted again by the reader itself,
synchronously, with the same functions and the same lock (`remake_entry`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from evalcore.frames.cache import (
    _REMADE,
    CorruptFramesError,
    FrameCache,
    FrameEntry,
    FrameFailure,
    VideoJob,
    encode_frame,
    fingerprint,
    frame_suffix,
)
from evalcore.frames.decoders import (
    FRAME_SUFFIXES,
    Decoder,
    EmptyClipError,
    FrameError,
    StderrCapture,
    decoder_chain,
    decoder_name,
    frame_files,
)
from evalcore.frames.reference_samplers import SamplingRefusedError
from evalcore.frames.sampling import frame_indices
from evalcore.frames.settings import FrameSettings
from evalcore.predictions.failures import FailureKind
from evalcore.predictions.lock import lock_file

if TYPE_CHECKING:
    from pebble import ProcessPool

Result = FrameEntry | FrameFailure
_HASH_THREADS = 2
_LOCKS_DIR = ".locks"  # under the cache root; one empty lock file per key, never deleted


@dataclass
class ExtractionReport:
    """What one `extract_videos` call did. Counts are over distinct jobs and add up to
    len(results); jobs with identical content and clip share one decode."""

    results: dict[VideoJob, Result]
    hits: int  # served from the cache (perhaps made meanwhile by another process)
    decoded: int  # decoded in this call
    failed: int
    seconds: float

    @property
    def failures(self) -> dict[VideoJob, FrameFailure]:
        return {j: r for j, r in self.results.items() if isinstance(r, FrameFailure)}


def extract_videos(
    jobs: Sequence[VideoJob],
    cache: FrameCache,
    settings: FrameSettings,
    on_done: Callable[[VideoJob, Result], None] | None = None,
    *,
    decoders: Sequence[Decoder] | None = None,
    fingerprints: Mapping[Path, str] | None = None,
) -> ExtractionReport:
    """Make sure every job's frames are in `cache`; one result per distinct job. A job's
    path is a video file or a folder of frame images (read by `FrameFolderSource`).

    Never raises for a bad video: each one becomes a `FrameFailure` and the others go
    on. `on_done(job, result)` is called in this thread as each job finishes (hits
    first). `decoders` replaces the backend chain that `settings.backend` names
    (experiments and tests; each is tried in order until one reads the file).
    Failures are not cached: the next call tries again. An exception raised by
    `on_done` stops the call: the workers are stopped and the exception propagates.
    `fingerprints`: content fingerprints the caller has computed, by path (the others
    are looked up in the cache's memo or hashed here).

    Misses are decoded smallest first, then biggest first: the first clip is ready soon
    (inference can start on it), and a long video started last would not decode alone
    at the end.

    Worker processes re-import the caller's `__main__` module (multiprocessing's spawn
    and forkserver semantics), so scripts must keep their work under
    `if __name__ == "__main__":`.
    """
    started = time.perf_counter()
    cache.remove_stale_temp()
    distinct = list(dict.fromkeys(jobs))
    results: dict[VideoJob, Result] = {}
    counts = {"hits": 0, "decoded": 0}

    def finish(job: VideoJob, result: Result) -> None:
        result = healable(result)
        results[job] = result
        if on_done is not None:
            on_done(job, result)

    candidates = []
    for job in distinct:
        problem = _check_job(job)
        if problem is None:
            candidates.append(job)
        else:
            finish(job, problem)

    given = {
        job.path: fingerprints[job.path] for job in candidates if job.path in (fingerprints or {})
    }
    known = {**cache.known_fingerprints({job.path for job in candidates} - set(given)), **given}
    unknown = {job.path for job in candidates} - set(known)
    scheduled: dict[str, list[VideoJob]] = {}  # cache key -> jobs sharing its decode

    def is_new_miss(job: VideoJob, video_fingerprint: str) -> str | None:
        """The key to decode if `job` is neither a hit nor sharing a scheduled decode."""
        key = settings.entry_key(video_fingerprint, job)
        if key in scheduled:
            scheduled[key].append(job)
            return None
        entry = cache.open(key)
        if entry is not None:
            counts["hits"] += 1
            finish(job, entry)
            return None
        scheduled[key] = [job]
        return key

    with _Decoding(cache, settings, decoders) as decoding:
        misses = []
        for job in candidates:
            if job.path in known:
                key = is_new_miss(job, known[job.path])
                if key is not None:
                    misses.append((key, known[job.path], job))
        if misses or unknown:
            new_files = sum(job.path in unknown for job in candidates)  # likely misses
            decoding.start(expected=len(misses) + new_files)
        for miss in _decode_order(misses):
            decoding.submit(*miss)
        for job, outcome in _hash_unknown(candidates, unknown, cache):
            if isinstance(outcome, FrameFailure):
                finish(job, outcome)
            elif (key := is_new_miss(job, outcome)) is not None:
                decoding.submit(key, outcome, job)
        for key, (result, decoded) in decoding.completed():
            for job in scheduled[key]:
                counts["decoded" if decoded else "hits"] += isinstance(result, FrameEntry)
                finish(job, result)

    return ExtractionReport(
        results={job: results[job] for job in distinct},
        hits=counts["hits"],
        decoded=counts["decoded"],
        failed=sum(isinstance(r, FrameFailure) for r in results.values()),
        seconds=time.perf_counter() - started,
    )


def _hash_unknown(
    jobs: list[VideoJob], unknown: set[Path], cache: FrameCache
) -> Iterator[tuple[VideoJob, str | FrameFailure]]:
    """(job, fingerprint or failure) for jobs whose file is not memoized, as hashed."""
    if not unknown:
        return
    by_path: dict[Path, list[VideoJob]] = {}
    for job in jobs:
        if job.path in unknown:
            by_path.setdefault(job.path, []).append(job)
    with ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="fingerprint") as threads:
        futures = {threads.submit(cache.video_fingerprint, path): path for path in by_path}
        for future in as_completed(futures):
            path = futures[future]
            try:
                outcome: str | FrameFailure = future.result()
            except OSError as error:
                outcome = FrameFailure(
                    FailureKind.VideoUnreadable, f"{path}: {error.strerror or error}"
                )
            for job in by_path[path]:
                yield job, outcome


def _decode_order(misses: list[tuple[str, str, VideoJob]]) -> list[tuple[str, str, VideoJob]]:
    """The smallest first (frames for inference to start on), then the biggest first."""
    order = sorted(misses, key=lambda m: -_size(m[2].path))
    return order[-1:] + order[:-1]


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(file.stat().st_size for file in frame_files(path))
        return path.stat().st_size
    except OSError:
        return 0


def _check_job(job: VideoJob) -> FrameFailure | None:
    """Failures visible without a decoder: missing or empty files, folders without frame
    images, impossible bounds."""
    path = Path(job.path)
    if not path.exists():
        return FrameFailure(FailureKind.VideoNotFound, f"{path}: no such file or folder")
    if path.is_dir():
        try:
            if not frame_files(path):
                return FrameFailure(
                    FailureKind.EmptyVideo,
                    f"{path}: a folder without frame images ({', '.join(FRAME_SUFFIXES)} files)",
                )
        except OSError as error:
            return FrameFailure(
                FailureKind.VideoUnreadable,
                f"{path}: cannot list the folder: {error.strerror or error}",
            )
    elif not path.is_file():
        return FrameFailure(
            FailureKind.VideoNotFound, f"{path}: not a regular file or a folder of frames"
        )
    else:
        try:
            if path.stat().st_size == 0:
                return FrameFailure(FailureKind.EmptyVideo, f"{path}: the file is empty (0 bytes)")
        except OSError as error:
            return FrameFailure(FailureKind.VideoUnreadable, f"{path}: {error.strerror or error}")
    start, end = job.start, job.end
    if (start is not None and start < 0) or (end is not None and end <= 0):
        return FrameFailure(
            FailureKind.InvalidClip, f"{path}: clip bounds {start}-{end} s are negative"
        )
    if start is not None and end is not None and start >= end:
        return FrameFailure(
            FailureKind.InvalidClip, f"{path}: clip start {start} s is not before {end} s"
        )
    return None


class _Decoding:
    """The worker processes for cache misses: started on first need, stopped on exit.

    Decoder threads: up to two per core in total. Measured here (2 cores, 60 s 720p,
    32 frames): two workers with 2 threads each were no slower than with 1 each, and a
    video decoded alone (the tail of every batch) took 0.6x the time with 2 threads.
    FFmpeg's threads wait on condition variables, so a little oversubscription is cheap.
    """

    def __init__(
        self, cache: FrameCache, settings: FrameSettings, decoders: Sequence[Decoder] | None
    ):
        self._cache, self._settings, self._decoders = cache, settings, decoders
        self._pool: ProcessPool | None = None
        self._threads = 1
        self._futures: dict[Future, tuple[str, VideoJob]] = {}

    def start(self, expected: int) -> None:
        if self._pool is not None:
            return
        workers = max(1, min(self._settings.workers, expected))
        cores = os.cpu_count() or 1
        self._threads = max(1, min(cores, 2 * cores // workers))
        from pebble import ProcessPool  # here: a run whose frames are all cached starts none

        self._pool = ProcessPool(
            max_workers=workers, context=_worker_context(), initializer=_yield_the_cpu
        )
        self._pool.active  # noqa: B018 -- starts the worker processes now, not at first task

    def submit(self, key: str, video_fingerprint: str, job: VideoJob) -> None:
        assert self._pool is not None, "start() first"
        chain = (
            list(self._decoders)
            if self._decoders is not None
            else decoder_chain(self._settings.backend, self._threads, job.path)  # folder or file
        )
        args = (job, key, video_fingerprint, self._cache, self._settings, chain)
        future = self._pool.schedule(extract_one, args=args, timeout=self._settings.timeout_s)
        self._futures[future] = (key, job)

    def completed(self) -> Iterator[tuple[str, tuple[Result, bool]]]:
        """(key, (result, whether it was decoded here)) for every submitted job, in
        completion order."""
        for future in as_completed(self._futures):
            key, job = self._futures[future]
            yield key, _outcome(future, job, self._settings)

    def __enter__(self) -> _Decoding:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.stop()  # every result is in (or the caller is failing): workers can go
            self._pool.join()


def _outcome(future: Future, job: VideoJob, settings: FrameSettings) -> tuple[Result, bool]:
    try:
        return future.result()
    except Exception as error:
        return _failure(error, job, settings), False


def _failure(error: Exception, job: VideoJob, settings: FrameSettings) -> FrameFailure:
    """The failure a worker's end stands for: timed out, crashed, or could not run."""
    if isinstance(error, TimeoutError):
        return FrameFailure(
            FailureKind.DecodeTimeout,
            f"{job.path}: decoding took longer than {settings.timeout_s:g} s; "
            "the worker process was killed",
        )
    from pebble import ProcessExpired

    if isinstance(error, ProcessExpired):
        return FrameFailure(
            FailureKind.WorkerCrashed,
            f"{job.path}: the decoding process died (exit code {error.exitcode})",
        )
    # e.g. a decoder that cannot be pickled
    return FrameFailure(FailureKind.DecodeError, f"{job.path}: {type(error).__name__}: {error}")


def _yield_the_cpu() -> None:
    """Decoders run at nice 10: decoding is throughput work, while the Prefect server
    booting beside it (`evalcore run` begins extraction before the server is up), the
    flow and the thread that feeds the model are latency-critical. Measured on the short
    e2e set: without it an extraction begun during the server's boot delayed the boot by
    ~2.5 s; with it the boot takes as long as alone and decoding uses the idle core."""
    os.nice(10)


def _worker_context():
    """forkserver: children fork from a clean helper process, never from the caller.

    The helper imports this module once (if this process starts it), so each worker
    starts in about 50 ms instead of paying 0.25 s of imports (numpy, av, PIL, pydantic).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # (the modules decoding imports on first use, too) no effect once the helper runs
    context.set_forkserver_preload([__name__, "av", "numpy", "PIL.Image"])
    return context


def extract_one(
    job: VideoJob,
    key: str,
    video_fingerprint: str,
    cache: FrameCache,
    settings: FrameSettings,
    chain: Sequence[Decoder],
) -> tuple[Result, bool]:
    """Decode one clip with the first decoder in `chain` that can and store it; return
    the result and whether this call decoded it.

    Runs in a worker process, holding the key's lock (see the module docstring): if
    another process stored the entry while this one waited, that entry is returned
    undecoded. Returns a `FrameFailure` naming every decoder's reason when none
    succeeds; an empty clip is not retried with another decoder.
    """
    try:
        lock = _lock_entry(cache, key)
    except OSError as error:
        why = f"{job.path}: cannot lock {key}: {error}"
        return FrameFailure(FailureKind.CacheWriteError, why), False
    with lock:
        entry = cache.open(key)
        if entry is not None:
            return entry, False
        return _decode(job, key, video_fingerprint, cache, settings, chain, True), True


def healable(result: Result | None) -> Result | None:
    """`result`, which if an entry extracts itself again when read damaged."""
    if isinstance(result, FrameEntry):
        return replace(result, remake=remake_entry)
    return result


def remake_entry(entry: FrameEntry, damage: str) -> Result:
    """Replace the damaged cache entry `entry` by extracting its clip again, here and
    now: the clip its manifest names, from the same video (its fingerprint must still
    give the entry's key), decoded by `_decode` and stored by `FrameCache.write` (temp
    folder, then rename) under the key's lock, as a worker would. `damage` says what is
    wrong, for the messages.

    The reader waits for it (one clip). Once per entry and process: an entry this
    process made again that is damaged again is a `FrameFailure`, as is a clip that
    cannot be extracted again (the video moved or changed, no decoder reads it). The
    damaged entry is removed either way, so the next run's extraction makes it anew. If
    another reader (a thread, a process) made it again meanwhile, that one is returned.

    Decoding runs in the calling process, without a worker to kill on a timeout, and
    its stderr is not captured (other threads write there): this video decoded before.
    """
    cache = FrameCache(entry.dir.parent.parent)
    try:
        lock = _lock_entry(cache, entry.key)
    except OSError as error:
        return FrameFailure(FailureKind.CorruptFrames, f"{damage}; cannot lock the entry: {error}")
    with lock:
        current = cache.open(entry.key)
        if current is not None and current.damage() is None:
            return healable(current)  # made again meanwhile
        try:
            manifest = (current or entry).manifest()
        except (OSError, ValueError, CorruptFramesError):
            manifest = None
        cache.discard(entry.key)
        if entry.dir in _REMADE:
            why = _REMADE[entry.dir] or f"{damage}; damaged again after it was extracted again"
            return FrameFailure(FailureKind.CorruptFrames, why)
        try:
            job, video_fingerprint, settings = _clip_of(manifest, entry.key)
        except (KeyError, TypeError, ValueError) as error:
            result: Result | str = f"cannot extract it again: {error}"
        else:
            chain = decoder_chain(settings.backend, 1, job.path)
            result = _decode(job, entry.key, video_fingerprint, cache, settings, chain, False)
            if isinstance(result, FrameFailure):
                result = f"extracting it again failed: {result.error_type}: {result.message}"
        if isinstance(result, str):
            result = FrameFailure(FailureKind.CorruptFrames, f"{damage}; {result}")
        _REMADE[entry.dir] = result.message if isinstance(result, FrameFailure) else ""
    return healable(result)


def _clip_of(manifest: Mapping | None, key: str) -> tuple[VideoJob, str, FrameSettings]:
    """The clip, video fingerprint and settings an entry was made from, as its manifest
    records them; ValueError if they no longer give `key` (the video changed). The video
    is hashed again, not looked up in a memo: only the cache's root is known here, and a
    memo beside a root shared by hosts is what `Workspace.local_dir` avoids."""
    if manifest is None:
        raise ValueError("its manifest cannot be read")
    clip = manifest.get("clip") or {}
    job = VideoJob(Path(manifest["source"]), clip.get("start"), clip.get("end"))
    known = FrameSettings.model_fields  # a field since removed does not stop it
    settings = FrameSettings(**{k: v for k, v in manifest["settings"].items() if k in known})
    try:
        video_fingerprint = fingerprint(job.path)
    except OSError as error:
        raise ValueError(f"{job.path}: {error.strerror or error}") from None
    if settings.entry_key(video_fingerprint, job) != key:
        raise ValueError(f"{job.path} is no longer the video the frames were made from")
    return job, video_fingerprint, settings


def _lock_entry(cache: FrameCache, key: str):
    """An open file holding an exclusive flock on `key`'s lock file (blocks until free);
    closing it releases the lock, and so does the death of this process."""
    directory = cache.root / _LOCKS_DIR
    directory.mkdir(exist_ok=True)
    return lock_file(directory / f"{key}.lock")


def _decode(
    job: VideoJob,
    key: str,
    video_fingerprint: str,
    cache: FrameCache,
    settings: FrameSettings,
    chain: Sequence[Decoder],
    capture_stderr: bool = False,
) -> Result:
    """Extract with the first decoder of `chain` that can. `capture_stderr`: what a
    decoder writes to fd 2 goes into its failure reason (only where nothing else writes
    to stderr: a decoding worker, see `StderrCapture`)."""
    reasons: list[tuple[str, FrameError | Exception, str]] = []
    for decoder in chain:
        name = decoder_name(decoder)
        stderr = StderrCapture() if capture_stderr else None
        try:
            with stderr or nullcontext():
                return _extract_with(decoder, job, key, video_fingerprint, cache, settings)
        except _CacheWriteError as error:
            return FrameFailure(FailureKind.CacheWriteError, f"{job.path}: {error}")
        except (EmptyClipError, SamplingRefusedError) as error:  # another decoder: the same
            return FrameFailure(error.error_type, str(error))
        except Exception as error:
            reasons.append((name, error, stderr.tail if stderr else ""))
    kinds = {getattr(e, "error_type", FailureKind.DecodeError) for _, e, _ in reasons}
    error_type = kinds.pop() if len(kinds) == 1 else FailureKind.DecodeError
    detail = "; ".join(
        f"{name}: {_describe(error, job.path)}" + (f" [{name} printed: {said}]" if said else "")
        for name, error, said in reasons
    )
    return FrameFailure(error_type, f"{job.path}: cannot read frames ({detail})")


class _CacheWriteError(Exception):
    """The frames were decoded but could not be stored; another decoder would not help."""


def _extract_with(
    decoder: Decoder,
    job: VideoJob,
    key: str,
    video_fingerprint: str,
    cache: FrameCache,
    settings: FrameSettings,
) -> FrameEntry:
    with decoder(Path(job.path)) as source:
        info = source.info
        try:
            indices = frame_indices(
                info.n_frames, info.fps, settings, job.start, job.end, frame_times=info.frame_times
            )
        except SamplingRefusedError as error:
            raise SamplingRefusedError(f"{job.path}: {settings.sampler} sampler: {error}") from None
        if not indices:
            duration = info.n_frames / info.fps
            raise EmptyClipError(
                f"{job.path}: the clip {job.start}-{job.end} s holds no frame of the "
                f"{duration:.2f} s video"
            )
        positions: dict[int, list[int]] = {}
        for position, index in enumerate(indices):
            positions.setdefault(index, []).append(position)
        source_size: list[int] = []

        def frames():
            reader = source.read(sorted(positions))
            while True:
                try:
                    index, timestamp, image = next(reader)
                except StopIteration:
                    return
                except FrameError:
                    raise
                except Exception as error:  # keep decoder errors apart from cache-write errors
                    raise FrameError(_error_text(error, job.path)) from error
                if not source_size:
                    source_size.extend(image.size)
                encoded, size = encode_frame(image, settings)
                yield index, timestamp, encoded, size

        manifest = {
            "source": str(Path(job.path).absolute()),
            "fingerprint": video_fingerprint,
            "clip": {"start": job.start, "end": job.end},
            "video_frames": info.n_frames,
            "fps": info.fps,
            "backend": getattr(source, "name", type(source).__name__),
            "settings": settings.model_dump(mode="json"),
            "source_size": source_size,  # filled in while frames are read
        }
        try:
            return cache.write(key, frames(), positions, manifest, suffix=frame_suffix(settings))
        except OSError as error:
            raise _CacheWriteError(f"cannot store frames in {cache.root}: {error}") from error


def _describe(error: Exception, path: Path) -> str:
    """One decoder's reason, without repeating the full path the message starts with."""
    if isinstance(error, FrameError):
        return str(error).removeprefix(f"{path}: ").removeprefix(f"{Path(path).name}: ")
    return _error_text(error, path)


def _error_text(error: Exception, path: Path) -> str:
    # FFmpeg errors carry an errno and the path; their strerror is the readable part
    text = getattr(error, "strerror", None) or str(error).replace(str(path), Path(path).name)
    return f"{type(error).__name__}: {text}"
