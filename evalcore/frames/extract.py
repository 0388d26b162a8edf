"""Turn many clips into cached frames: cache hits in this process, misses in killable
worker processes.

Decoders run in a pebble process pool, never in the caller: a decoder can hang holding
the GIL (decord on MPEG-TS), and only killing its process stops it. Workers start with
forkserver (spawn where that is missing), not fork: the caller may be a Prefect worker
or hold torch threads, which a forked child would inherit in an undefined state.
Workers write their entries straight into the cache, so only small records cross
process boundaries.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

from evalcore.frames.cache import (
    FrameCache,
    FrameEntry,
    FrameFailure,
    VideoJob,
    encode_jpeg,
    entry_key,
)
from evalcore.frames.decoders import (
    Decoder,
    EmptyClipError,
    FrameError,
    decoder_chain,
)
from evalcore.frames.sampling import frame_indices
from evalcore.frames.settings import FrameSettings

Result = FrameEntry | FrameFailure


@dataclass
class ExtractionReport:
    """What one `extract_videos` call did. Counts are over distinct jobs and add up to
    len(results); jobs with identical content and clip share one decode."""

    results: dict[VideoJob, Result]
    hits: int  # served from the cache, no decoder opened
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
) -> ExtractionReport:
    """Make sure every job's frames are in `cache`; one result per distinct job.

    Never raises for a bad video: each one becomes a `FrameFailure` and the others go
    on. `on_done(job, result)` is called in this thread as each job finishes (hits
    first). `decoders` replaces the backend chain that `settings.backend` names
    (experiments and tests; each is tried in order until one reads the file).
    Failures are not cached: the next call tries again.
    """
    started = time.perf_counter()
    chain = list(decoders) if decoders is not None else decoder_chain(settings.backend)
    results: dict[VideoJob, Result] = {}
    hits = 0

    def finish(job: VideoJob, result: Result) -> None:
        results[job] = result
        if on_done is not None:
            on_done(job, result)

    misses: dict[str, list[VideoJob]] = {}  # cache key -> jobs sharing it
    fingerprints: dict[str, str] = {}
    for job in dict.fromkeys(jobs):  # distinct, in order
        problem = _check_job(job)
        if problem is not None:
            finish(job, problem)
            continue
        try:
            video_fingerprint = cache.video_fingerprint(job.path)
        except OSError as error:
            finish(job, FrameFailure("VideoUnreadable", f"{job.path}: {error.strerror or error}"))
            continue
        key = entry_key(video_fingerprint, job, settings)
        entry = None if key in misses else cache.open(key)
        if entry is not None:
            hits += 1
            finish(job, entry)
        else:
            misses.setdefault(key, []).append(job)
            fingerprints[key] = video_fingerprint

    decoded = 0
    if misses:
        cache.remove_stale_temp()

        def finish_key(key: str, result: Result) -> None:
            nonlocal decoded
            for job in misses[key]:
                decoded += isinstance(result, FrameEntry)
                finish(job, result)

        _decode_misses(misses, fingerprints, cache, settings, chain, finish_key)
    return ExtractionReport(
        results={job: results[job] for job in dict.fromkeys(jobs)},
        hits=hits,
        decoded=decoded,
        failed=sum(isinstance(r, FrameFailure) for r in results.values()),
        seconds=time.perf_counter() - started,
    )


def _check_job(job: VideoJob) -> FrameFailure | None:
    """Failures visible without a decoder: missing or empty files, impossible bounds."""
    path = Path(job.path)
    if not path.exists():
        return FrameFailure("VideoNotFound", f"{path}: no such file")
    if not path.is_file():
        return FrameFailure("VideoNotFound", f"{path}: not a regular file")
    try:
        if path.stat().st_size == 0:
            return FrameFailure("EmptyVideo", f"{path}: the file is empty (0 bytes)")
    except OSError as error:
        return FrameFailure("VideoUnreadable", f"{path}: {error.strerror or error}")
    start, end = job.start, job.end
    if (start is not None and start < 0) or (end is not None and end <= 0):
        return FrameFailure("InvalidClip", f"{path}: clip bounds {start}-{end} s are negative")
    if start is not None and end is not None and start >= end:
        return FrameFailure("InvalidClip", f"{path}: clip start {start} s is not before {end} s")
    return None


def _decode_misses(
    misses: dict[str, list[VideoJob]],
    fingerprints: dict[str, str],
    cache: FrameCache,
    settings: FrameSettings,
    chain: list[Decoder],
    finish_key: Callable[[str, Result], None],
) -> None:
    """Decode each key once in worker processes; report results in completion order."""
    pool = ProcessPool(max_workers=min(settings.workers, len(misses)), context=_worker_context())
    try:
        futures: dict[Future, tuple[str, VideoJob]] = {}
        for key, jobs in misses.items():
            args = (jobs[0], key, fingerprints[key], cache, settings, chain)
            future = pool.schedule(extract_one, args=args, timeout=settings.timeout_s)
            futures[future] = (key, jobs[0])
        for future in as_completed(futures):
            key, job = futures[future]
            finish_key(key, _outcome(future, job, settings))
    finally:
        pool.stop()  # every result is in (or the caller is failing): idle workers can go
        pool.join()


def _outcome(future: Future, job: VideoJob, settings: FrameSettings) -> Result:
    try:
        return future.result()
    except TimeoutError:
        return FrameFailure(
            "DecodeTimeout",
            f"{job.path}: decoding took longer than {settings.timeout_s:g} s; "
            "the worker process was killed",
        )
    except ProcessExpired as error:
        return FrameFailure(
            "WorkerCrashed", f"{job.path}: the decoding process died (exit code {error.exitcode})"
        )
    except Exception as error:  # e.g. a decoder that cannot be pickled
        return FrameFailure("DecodeError", f"{job.path}: {type(error).__name__}: {error}")


def _worker_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def extract_one(
    job: VideoJob,
    key: str,
    video_fingerprint: str,
    cache: FrameCache,
    settings: FrameSettings,
    chain: Sequence[Decoder],
) -> Result:
    """Decode one clip with the first decoder in `chain` that can and store it.

    Runs in a worker process. Returns a `FrameFailure` naming every decoder's reason
    when none succeeds; an empty clip is not retried with another decoder.
    """
    reasons: list[tuple[str, FrameError | Exception]] = []
    for decoder in chain:
        name = getattr(decoder, "name", getattr(decoder, "__name__", "decoder"))
        try:
            return _extract_with(decoder, job, key, video_fingerprint, cache, settings)
        except _CacheWriteError as error:
            return FrameFailure("CacheWriteError", f"{job.path}: {error}")
        except EmptyClipError as error:
            return FrameFailure(error.error_type, str(error))
        except Exception as error:
            reasons.append((name, error))
    kinds = {getattr(e, "error_type", "DecodeError") for _, e in reasons}
    error_type = kinds.pop() if len(kinds) == 1 else "DecodeError"
    detail = "; ".join(f"{name}: {_describe(error, job.path)}" for name, error in reasons)
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
        indices = frame_indices(
            info.n_frames, info.fps, settings, job.start, job.end, frame_times=info.frame_times
        )
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
                jpeg, size = encode_jpeg(image, settings.max_side, settings.jpeg_quality)
                yield index, timestamp, jpeg, size

        manifest = {
            "source": str(job.path),
            "fingerprint": video_fingerprint,
            "clip": {"start": job.start, "end": job.end},
            "video_frames": info.n_frames,
            "fps": info.fps,
            "backend": getattr(source, "name", type(source).__name__),
            "settings": settings.model_dump(mode="json"),
            "source_size": source_size,  # filled in while frames are read
        }
        try:
            return cache.write(key, frames(), positions, manifest)
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
