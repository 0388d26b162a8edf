"""Video decoders behind one small interface: open a file, say how many frames it has,
hand over chosen frames as RGB images in time order.

Two backends for video files (any container FFmpeg reads: MP4, MKV, WebM, GIF, ...),
chosen per run by `FrameSettings.backend`:

- `PyAVSource` (the default; see bench/README.md "## Frames"): demuxes the file once
  without decoding to learn every frame's presentation time and where the keyframes
  are, then for each wanted frame seeks to its keyframe only when that keyframe lies
  ahead of where decoding already is, and decodes forward to the exact timestamp. This
  is the physical floor (decode from each target's preceding keyframe), the frame count
  is exact and variable frame rates come out right. Containers without a seek index
  (MPEG-TS, FLV, raw streams) are decoded sequentially instead.
- `DecordSource`: decord's `get_batch`. Refuses files without a seek index, where
  decord silently returns wrong frames (or hangs).

A video may also be a folder of frame images (MVBench ships some clips so): whatever
the backend, `FrameFolderSource` reads those, one file per frame.

A source is used as a context manager; `read` takes sorted, distinct indices. `threads`
is the decoder's own thread count: 1 when worker processes already fill the cores.

decord's C++ core prints its errors to the process's stderr (file descriptor 2), not
through Python; `StderrCapture` catches them there, so a decoding worker can put them
in the video's failure message instead of the terminal.
"""

from __future__ import annotations

import os
import sys
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from evalcore.predictions.failures import FailureKind

if TYPE_CHECKING:  # imported by the code that decodes (a decoding worker preloads them)
    import av
    from PIL import Image

# Demuxers that cannot seek by timestamp reliably (no index; timestamps may jump).
_SEQUENTIAL_FORMATS = {"mpegts", "mpegtsraw", "flv", "live_flv", "h264", "hevc", "mpeg", "m4v"}
_AVFMT_TS_DISCONT = 0x0200  # libavformat: "format allows timestamp discontinuities"
_DECORD_BATCH = 8  # frames per get_batch call: bounds memory (a 720p RGB frame is 2.7 MB)
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")  # what a frame folder's frames are
# A frame folder carries no rate; MVBench's (TVQA frames_fps3_hq) are 3 fps, the rate
# VLMEvalKit reads them at (vlmeval/dataset/mvbench.py: `read_frame`, `frame_fps`).
FRAME_FOLDER_FPS = 3.0


class FrameError(Exception):
    """A video could not give the frames asked for; `error_type` names the failure kind."""

    error_type: ClassVar[FailureKind] = FailureKind.DecodeError


class EmptyVideoError(FrameError):
    error_type = FailureKind.EmptyVideo


class EmptyClipError(FrameError):
    error_type = FailureKind.EmptyClip


class StderrCapture:
    """Sends this process's file descriptor 2 to a temporary file while the block runs;
    afterwards `tail` holds the last lines written there ("" if none).

    At the descriptor level because C++ libraries (decord, FFmpeg) write to fd 2
    directly. It is process-wide: everything any thread writes to stderr meanwhile is
    caught too, so use it only where decoding is all the process does (a decoding
    worker). If fd 2 is closed, nothing is redirected.
    """

    def __init__(self, lines: int = 5, max_chars: int = 600) -> None:
        self.lines = lines
        self.max_chars = max_chars
        self.tail = ""
        self._file = None
        self._saved: int | None = None

    def __enter__(self) -> StderrCapture:
        try:
            sys.stderr.flush()  # what Python buffered before goes where it was meant to
        except (AttributeError, OSError, ValueError):
            pass
        try:
            self._saved = os.dup(2)
        except OSError:
            return self  # no stderr to take over
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in __exit__
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is None or self._file is None:
            return
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        with self._file:
            size = self._file.seek(0, os.SEEK_END)
            self._file.seek(max(0, size - 16 * self.max_chars))
            text = self._file.read().decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        self.tail = " | ".join(lines[-self.lines :])[-self.max_chars :]


@dataclass(frozen=True)
class VideoInfo:
    """What sampling needs to know about a video before any frame is decoded."""

    n_frames: int
    fps: float  # average rate; exact times are in frame_times
    frame_times: tuple[float, ...] | None  # per frame, seconds from the first frame


class FrameSource(Protocol):
    """An open video. Built from a path; raises on files it cannot read."""

    name: ClassVar[str]
    info: VideoInfo

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, float, Image.Image]]:
        """Yield (index, timestamp_s, RGB image) for sorted, distinct `indices`."""
        ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc: object) -> None: ...


Decoder = Callable[[Path], FrameSource]


class PyAVSource:
    """PyAV (FFmpeg 8) with a keyframe index built by demuxing."""

    name: ClassVar[str] = "pyav"

    def __init__(self, path: Path, threads: int = 1):
        self.path = Path(path)
        self._threads = threads
        import av  # here: a process that only reads the frame cache never loads FFmpeg

        self._container = av.open(str(self.path), metadata_errors="ignore")
        try:
            self._scan()
        except BaseException:
            self._container.close()
            raise

    def _scan(self) -> None:
        container = self._container
        if not container.streams.video:
            raise FrameError(f"{self.path.name}: no video stream")
        stream = container.streams.video[0]
        _set_threads(stream, self._threads)
        self.sequential = container.format.name in _SEQUENTIAL_FORMATS or bool(
            container.format.flags & _AVFMT_TS_DISCONT
        )
        pts: list[int] = []
        keys: list[int] = []
        packets = 0
        untimed = False
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            packets += 1
            if packet.is_discard:
                continue
            if packet.pts is None:
                untimed = True
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
        if untimed:
            # no timestamps to aim at (raw elementary streams): count frames as they come
            self.sequential, pts, keys = True, list(range(packets)), []
        if stream.frames and packets < stream.frames:
            raise FrameError(
                f"{self.path.name}: truncated: the container lists {stream.frames} frames "
                f"but only {packets} can be read"
            )
        pts.sort()
        keys.sort()
        self._pts, self._keys, self._untimed = pts, keys, untimed
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if untimed or stream.time_base is None:
            times = None
        else:
            tb = Fraction(stream.time_base)
            times = tuple(float((p - pts[0]) * tb) for p in pts)
            if fps <= 0 and len(times) > 1 and times[-1] > 0:
                fps = (len(times) - 1) / times[-1]
        if not pts:
            raise EmptyVideoError(f"{self.path.name}: the video stream has no frames")
        if fps <= 0:
            raise FrameError(f"{self.path.name}: no frame rate in the video stream")
        self._stream = stream
        self.info = VideoInfo(len(pts), fps, times)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, float, Image.Image]]:
        pts, keys = self._pts, self._keys
        frames: Iterator[av.VideoFrame] | None = None
        frame: av.VideoFrame | None = None
        position: float = -float("inf")  # pts of the last decoded frame
        counter = -1
        if self.sequential:
            self._reopen()  # the scan consumed the stream; start again from byte 0
            frames = self._container.decode(self._stream)
        for index in indices:
            want = pts[index]
            seek_to = None
            if not self.sequential:
                key = keys[bisect_right(keys, want) - 1] if keys and keys[0] <= want else None
                if frames is None or (key is not None and key > position):
                    seek_to = key if key is not None else want
            if seek_to is not None:
                frames, frame = self._seek(seek_to), None
                first = next(frames, None)
                if first is not None and first.pts is not None and first.pts > want:
                    # the seek landed past the target (an index that lies): start over
                    frames = self._seek(pts[0])
                    first = next(frames, None)
                frame = first
                position = -float("inf") if first is None else _order(first, counter, False)
            assert frames is not None
            while frame is None or position < want:
                nxt = next(frames, None)
                if nxt is None:
                    break  # the stream ended a few frames short: take the last one, if any
                frame, counter = nxt, counter + 1
                position = _order(frame, counter, self._untimed)
            if frame is None:
                raise FrameError(
                    f"{self.path.name}: frame {index} could not be decoded (the stream ended)"
                )
            yield index, self._time(index), frame.to_image()

    def _seek(self, pts: int) -> Iterator[av.VideoFrame]:
        self._container.seek(pts, stream=self._stream)
        return self._container.decode(self._stream)

    def _time(self, index: int) -> float:
        times = self.info.frame_times
        return times[index] if times is not None else index / self.info.fps

    def _reopen(self) -> None:
        import av

        self._container.close()
        self._container = av.open(str(self.path), metadata_errors="ignore")
        self._stream = self._container.streams.video[0]
        _set_threads(self._stream, self._threads)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> PyAVSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _set_threads(stream: av.video.stream.VideoStream, threads: int) -> None:
    stream.codec_context.thread_count = threads
    if threads > 1:
        stream.codec_context.thread_type = "AUTO"  # frame threads: x264 output has no slices


def _order(frame: av.VideoFrame, counter: int, untimed: bool) -> float:
    """Where a decoded frame sits: its pts, or its position when the stream has none."""
    if untimed or frame.pts is None:
        return counter
    return frame.pts


class DecordSource:
    """decord 0.6 (FFmpeg 4.1) `get_batch`, in small batches."""

    name: ClassVar[str] = "decord"

    def __init__(self, path: Path, threads: int = 1):
        self.path = Path(path)
        if _needs_sequential_decode(self.path):
            raise FrameError(
                f"{self.path.name}: container has no seek index; decord would return wrong "
                "frames (use pyav)"
            )
        import decord  # imported here: only processes that decode with it pay for it

        decord.logging.set_level(decord.logging.QUIET)  # failures arrive as exceptions

        self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=threads)
        n = len(self._reader)
        if n == 0:
            raise EmptyVideoError(f"{self.path.name}: the video stream has no frames")
        fps = float(self._reader.get_avg_fps())
        if not fps > 0:
            raise FrameError(f"{self.path.name}: no frame rate in the video stream")
        import numpy as np

        stamps = self._reader.get_frame_timestamp(np.arange(n))[:, 0]
        times = tuple(float(t - stamps[0]) for t in stamps)
        self.info = VideoInfo(n, fps, times)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, float, Image.Image]]:
        from PIL import Image

        times = self.info.frame_times or ()
        for at in range(0, len(indices), _DECORD_BATCH):
            chunk = list(indices[at : at + _DECORD_BATCH])
            batch = self._reader.get_batch(chunk).asnumpy()
            for index, rgb in zip(chunk, batch, strict=True):
                yield index, times[index], Image.fromarray(rgb)

    def close(self) -> None:
        del self._reader

    def __enter__(self) -> DecordSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _needs_sequential_decode(path: Path) -> bool:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            fmt = container.format
            return fmt.name in _SEQUENTIAL_FORMATS or bool(fmt.flags & _AVFMT_TS_DISCONT)
    except av.FFmpegError:
        return False  # unreadable by PyAV too: let decord give its own reason


def frame_files(folder: Path) -> list[Path]:
    """The frames of a frame folder in name order: its JPEG and PNG files, hidden ones
    (".name", e.g. macOS's "._00001.jpg") and subfolders left out. Raises OSError when
    the folder cannot be listed."""
    return sorted(
        (
            p
            for p in Path(folder).iterdir()
            if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: p.name,
    )


class FrameFolderSource:
    """A folder of frame images as a video: frame i is the i-th file of `frame_files`,
    shown at i / fps s. Opens only the files asked for.

    MVBench's layout: VLMEvalKit's `read_frame` (vlmeval/dataset/mvbench.py) reads
    00001.jpg, 00002.jpg, ... of such a folder at 3 fps, its default here.
    """

    name: ClassVar[str] = "folder"

    def __init__(self, path: Path, threads: int = 1, fps: float = FRAME_FOLDER_FPS):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FrameError(f"{self.path.name}: not a folder of frame images")
        self._files = frame_files(self.path)
        if not self._files:
            raise EmptyVideoError(
                f"{self.path.name}: the folder has no frame images ({', '.join(FRAME_SUFFIXES)})"
            )
        self.info = VideoInfo(len(self._files), float(fps), None)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, float, Image.Image]]:
        from PIL import Image

        for index in indices:
            file = self._files[index]
            try:
                with Image.open(file) as image:
                    rgb = image.convert("RGB")
            except (OSError, ValueError) as error:  # UnidentifiedImageError is an OSError
                raise FrameError(
                    f"{self.path.name}: frame {index} ({file.name}) cannot be read: {error}"
                ) from error
            yield index, index / self.info.fps, rgb

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameFolderSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BACKENDS: dict[str, Decoder] = {"pyav": PyAVSource, "decord": DecordSource}
DEFAULT_BACKEND = "pyav"  # measured faster: bench/README.md "## Frames"


def decoder_chain(backend: str, threads: int = 1, path: Path | None = None) -> list[Decoder]:
    """Decoders to try in order: "auto" is the default backend, then the other one. For
    a folder (`path` a directory), `FrameFolderSource` alone: the backend names a video
    decoder, and a folder holds none."""
    if path is not None and Path(path).is_dir():
        return [FrameFolderSource]
    names = [backend] if backend != "auto" else [DEFAULT_BACKEND]
    names += [name for name in BACKENDS if backend == "auto" and name != DEFAULT_BACKEND]
    return [partial(BACKENDS[name], threads=threads) for name in names]


def decoder_name(decoder: Decoder) -> str:
    """A decoder's name for messages: its `name`, also through functools.partial."""
    target = getattr(decoder, "func", decoder)
    return getattr(target, "name", getattr(target, "__name__", type(target).__name__))
