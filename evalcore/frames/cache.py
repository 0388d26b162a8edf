"""Sampled frames on disk, addressed by what determines them.

Layout: ``root/<key[:2]>/<key>/{00000.jpg, 00001.jpg, ..., manifest.json}`` (``.png``
files under a plan with png storage). The key is
a hash of the video's content (a file's bytes; for a frame folder, its frame files'
names and bytes), the clip bounds and the frame plan that decides the pixels (sampling
rule and amount, size, JPEG quality, storage, format version: `FramePlan.entry_spec`); not of the
decoder, timeout or worker count, which change how fast frames are made, not which. An
entry is written in a temporary directory under the root and renamed into place in one
step, so readers see a whole entry or none, and two processes racing on one video both
end with the same entry. An entry exists only if its manifest.json does.

The manifest keeps each frame's SHA-256, so damage done after the write (a truncated or
overwritten frame) is found: reading an entry checks it, and a damaged entry is replaced
by extracting its clip again in the reading process (`FrameEntry.load`, once per entry
and process); `evalcore cache verify` checks them all (`evalcore.frames.verify`).
Entries written before checksums have none: they are checked by decoding every frame.

Temporary names carry their writer's pid and host (`.tmp-{pid}@{host}-...`), so the
litter of a killed writer is told apart from work in progress and swept
(`remove_stale_temp`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from evalcore.atomic import LITTER_MAX_AGE_S, TMP_MARK, sweep, temp_prefix
from evalcore.frames.decoders import FrameError, frame_files
from evalcore.frames.plan import FORMAT_VERSION, FramePlan
from evalcore.predictions.failures import FailureKind

if TYPE_CHECKING:  # imported where frames are read or written: a run whose frames are
    import numpy as np  # all cached only stats manifests
    from PIL import Image

MANIFEST = "manifest.json"
JPEG_SUFFIX, PNG_SUFFIX = ".jpg", ".png"
PNG_COMPRESS_LEVEL = 1
_MEMO_FILE = "fingerprints.sqlite"
_TMP_PREFIX = TMP_MARK
_MEMO_MIN_AGE_S = 2.0  # a file modified this recently may still change within one mtime tick
# entries this process has extracted again (`extract.remake_entry`) -> "" or why it failed
_REMADE: dict[Path, str] = {}
log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class VideoJob:
    """One clip to extract: a video file (or a folder of frame images, see
    `decoders.FrameFolderSource`) and optional bounds in seconds."""

    path: Path
    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):  # accept str paths from configs and TSVs
            object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class FrameFailure:
    """Why one video gave no frames; a record, never raised past `extract_videos`.

    error_type: a `FailureKind` (read back from a frame index: its name).
    """

    error_type: FailureKind | str
    message: str  # human readable, names the file


class CorruptFramesError(FrameError):
    """A cache entry's frames are damaged (a frame file missing, truncated or changed since it
    was written) and extracting the clip again did not give sound ones."""

    error_type = FailureKind.CorruptFrames  # retried by the next run, which extracts the clip anew


@dataclass(frozen=True)
class FrameEntry:
    """The cached frames of one clip (satisfies `evalcore.models.base.Frames`).

    Reading it checks every frame against its checksum in the manifest; `load` decodes
    them too, and so does `jpeg_bytes` for an entry written before checksums. A damaged
    entry is extracted again, in this process, from what its manifest records, then read
    once more (`_healing`); only if that fails too does the read raise
    `CorruptFramesError`. Extracting again is extraction's work: the entries that
    extraction and the frame index hand out carry it as `remake`
    (`extract.healable`); an entry opened straight from the cache only raises.
    """

    key: str
    dir: Path
    paths: tuple[Path, ...]  # one JPEG (or PNG) per sampled frame, in time order
    indices: tuple[int, ...]  # frame numbers in the video
    timestamps: tuple[float, ...]  # seconds from the first frame
    # (entry, what is damaged) -> the entry made again, or why not; pickles by name
    remake: Callable[[FrameEntry, str], FrameEntry | FrameFailure] | None = field(
        default=None, compare=False, repr=False
    )

    def load(self) -> np.ndarray:
        """All frames as one (T, H, W, 3) uint8 RGB array."""
        import numpy as np

        def decode(entry: FrameEntry) -> np.ndarray:
            data, _ = entry._checked_bytes()
            return np.stack([_decode_frame(p, d) for p, d in zip(entry.paths, data, strict=True)])

        return self._healing(decode)

    def jpeg_bytes(self) -> list[bytes]:
        """The frames as JPEG files' bytes, for API models that upload them: the stored
        JPEGs as they are; a png entry's frames encoded as JPEG here, at its plan's
        jpeg_quality (in its key, so equal keys upload equal bytes)."""
        return self._healing(FrameEntry._jpeg_bytes)

    def _jpeg_bytes(self) -> list[bytes]:
        data = self._sound_bytes()
        if not any(path.suffix == PNG_SUFFIX for path in self.paths):
            return data
        from PIL import Image

        quality = self.manifest()["settings"]["jpeg_quality"]
        jpegs = []
        for path, frame in zip(self.paths, data, strict=True):
            image = Image.fromarray(_decode_frame(path, frame))
            jpegs.append(encode_jpeg(image, None, quality)[0])
        return jpegs

    def manifest(self) -> dict[str, Any]:
        """Everything recorded when the entry was made (source, backend, settings, ...).
        Raises CorruptFramesError for an entry removed because it was damaged and could
        not be extracted again in this process, OSError or ValueError for others."""
        try:
            return json.loads((self.dir / MANIFEST).read_text())
        except (OSError, ValueError):
            if _REMADE.get(self.dir):
                raise CorruptFramesError(_REMADE[self.dir]) from None
            raise

    def damage(self) -> str | None:
        """What is wrong with the stored frames (the first bad one), or None if they are
        sound: each frame file against its checksum, or, in an entry written before checksums,
        decoded in full. Repairs nothing."""
        try:
            self._sound_bytes()
        except CorruptFramesError as error:
            return str(error)
        return None

    def _sound_bytes(self) -> list[bytes]:
        data, checked = self._checked_bytes()
        if not checked:  # no checksums: only decoding tells a sound frame
            for path, frame in zip(self.paths, data, strict=True):
                _decode_frame(path, frame)
        return data

    def _checked_bytes(self) -> tuple[list[bytes], bool]:
        """Every frame file's bytes, and whether they were checked against the manifest's
        checksums (False: an entry from before checksums). Raises CorruptFramesError."""
        try:
            sums = self.manifest().get("sha256")
        except (OSError, ValueError, AttributeError) as error:
            raise CorruptFramesError(f"{self.dir}: the manifest cannot be read: {error}") from None
        if sums is not None and len(sums) != len(self.paths):
            raise CorruptFramesError(f"{self.dir}: the manifest lists other frames than were read")
        data = []
        for n, path in enumerate(self.paths):
            try:
                jpeg = path.read_bytes()
            except OSError as error:
                raise CorruptFramesError(f"{path}: {error.strerror or error}") from None
            if sums is not None and hashlib.sha256(jpeg).hexdigest() != sums[n]:
                raise CorruptFramesError(
                    f"{path}: {len(jpeg)} bytes that do not match the checksum recorded "
                    "when the frame was written (truncated or changed since)"
                )
            data.append(jpeg)
        return data, sums is not None

    def _healing(self, read: Callable[[FrameEntry], _T]) -> _T:
        """`read(self)`; if the frames are damaged, `read` of the entry made again."""
        try:
            return read(self)
        except CorruptFramesError as error:
            if self.remake is None:
                raise
            damage = str(error)
        fresh = self.remake(self, damage)
        if isinstance(fresh, FrameFailure):
            raise CorruptFramesError(fresh.message)
        log.warning("frame cache entry %s was damaged (%s); extracted it again", self.key, damage)
        try:
            return read(fresh)
        except CorruptFramesError as error:
            raise CorruptFramesError(f"{error} (after extracting the clip again)") from None


def _decode_frame(path: Path, data: bytes) -> np.ndarray:
    """One frame (JPEG or PNG) as an (H, W, 3) uint8 RGB array; CorruptFramesError if it
    does not decode to the end."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for broken files
        raise CorruptFramesError(f"{path}: cannot be decoded: {error}") from None


class FrameCache:
    """A directory of `FrameEntry`s; cheap to construct, safe to share between processes.

    `memo`: the SQLite file of video fingerprints (`fingerprint`), by default under the
    root. A root shared by several hosts needs it on each host's own disk (WAL mode
    works only among one machine's processes): `Workspace.fingerprint_memo_path`."""

    def __init__(self, root: Path, memo: Path | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.memo = Path(memo) if memo is not None else self.root / _MEMO_FILE
        self.memo.parent.mkdir(parents=True, exist_ok=True)

    def key_for(self, job: VideoJob, plan: FramePlan) -> str:
        """The entry key of `job` under `plan` (`FramePlan.entry_key`). Reads the video
        only if its size, mtime or inode changed since it was last fingerprinted. Raises
        OSError if the video cannot be read."""
        return plan.entry_key(self.video_fingerprint(job.path), job)

    def video_fingerprint(self, path: Path) -> str:
        """`fingerprint(path)`, memoized in the cache's memo file."""
        return fingerprint(path, memo=self.memo)

    def known_fingerprints(self, paths: Iterable[Path]) -> dict[Path, str]:
        """The memoized fingerprints of those `paths` unchanged since they were hashed;
        reads no video. A file missing here has probably never been extracted."""
        known: dict[Path, str] = {}
        try:
            with closing(_memo_connect(self.memo)) as db:
                for path in paths:
                    try:
                        ident = _identity(Path(path))
                    except OSError:
                        continue
                    digest = _memo_query(db, ident)
                    if digest:
                        known[path] = digest
        except sqlite3.Error:
            pass
        return known

    def get(self, job: VideoJob, plan: FramePlan) -> FrameEntry | None:
        """The cached frames of `job`, or None. Opens no decoder. Raises OSError if the
        video cannot be read."""
        return self.open(self.key_for(job, plan))

    def open(self, key: str) -> FrameEntry | None:
        """The entry stored under `key`, or None if there is no complete one."""
        directory = self.entry_dir(key)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
            if manifest["format"] != FORMAT_VERSION or manifest["key"] != key:
                return None
            paths = tuple(directory / name for name in manifest["files"])
            entry = FrameEntry(
                key=key,
                dir=directory,
                paths=paths,
                indices=tuple(manifest["indices"]),
                timestamps=tuple(manifest["timestamps"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or not written by this code: not an entry
        if not all(path.is_file() for path in paths):
            return None  # files removed by hand; a new extraction replaces the entry
        return entry

    def entry_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def write(
        self,
        key: str,
        frames: Iterable[tuple[int, float, bytes, tuple[int, int]]],
        positions: dict[int, list[int]],
        manifest: dict[str, Any],
        *,
        suffix: str = JPEG_SUFFIX,
    ) -> FrameEntry:
        """Store encoded frames under `key` atomically and return the entry.

        `frames` yields (index, timestamp, encoded image, (width, height)) per distinct
        index; the files are named `00000{suffix}`, ... (`.jpg` or `.png`). `positions`
        maps each index to the output positions that show it (sampling may repeat a
        frame). If another process stored the key first, its entry wins and this one is
        discarded.
        """
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(key[:16]), dir=self.root))
        try:
            n_out = sum(len(p) for p in positions.values())
            files = [f"{i:05d}{suffix}" for i in range(n_out)]
            indices: list[int] = [0] * n_out
            timestamps: list[float] = [0.0] * n_out
            checksums: list[str] = [""] * n_out
            size: tuple[int, int] | None = None
            for index, timestamp, encoded, frame_size in frames:
                size = frame_size
                digest = hashlib.sha256(encoded).hexdigest()
                for position in positions[index]:
                    (tmp / files[position]).write_bytes(encoded)
                    indices[position], timestamps[position] = index, round(timestamp, 6)
                    checksums[position] = digest
            missing = [f for f in files if not (tmp / f).is_file()]
            if missing:
                raise RuntimeError(f"decoder returned no frame for {len(missing)} positions")
            record = {
                "format": FORMAT_VERSION,
                "key": key,
                **manifest,
                "files": files,
                "indices": indices,
                "timestamps": timestamps,
                "sha256": checksums,  # of each file's bytes (entries before them have none)
                "n_frames": n_out,
                "size": list(size) if size else None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (tmp / MANIFEST).write_text(json.dumps(record, indent=1))
            self._commit(tmp, key)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        entry = self.open(key)
        if entry is None:
            raise OSError(f"frame cache entry {key} vanished right after it was written")
        return entry

    def _commit(self, tmp: Path, key: str) -> None:
        final = self.entry_dir(key)
        final.parent.mkdir(exist_ok=True)
        try:
            os.rename(tmp, final)  # atomic; fails if `final` exists and is not empty
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if self.open(key) is not None:
                return  # another process won the race; its entry is as good as ours
            self.discard(key)  # a broken entry (frames deleted by hand): take its place
            os.rename(tmp, final)

    def discard(self, key: str) -> bool:
        """Remove the entry under `key` (moved aside in one step, then deleted), so that
        the next extraction makes it again; False if there was none. The caller holds
        the key's lock (`extract._lock_entry`) if a writer may be at work on it."""
        trash = self.root / f"{temp_prefix('removed-' + key[:16])}{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.entry_dir(key), trash)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def keys(self) -> Iterator[str]:
        """The keys of the entry folders under the root, complete or not, in order."""
        for folder in sorted(self.root.glob("??/*")):
            if folder.is_dir() and folder.parent.name == folder.name[:2]:
                yield folder.name

    def remove_stale_temp(self, max_age_s: float = LITTER_MAX_AGE_S) -> int:
        """Delete what killed writers left under the root (`evalcore.atomic.sweep`);
        returns how many were removed. Every extraction starts with it."""
        return sweep(self.root, f"{_TMP_PREFIX}*", max_age_s)


def fingerprint(path: Path, memo: Path | None = None) -> str:
    """Content hash of a file: SHA-256 (hardware-accelerated here, about 0.8 GB/s),
    first 128 bits, hex. For a frame folder: SHA-256 over its frame files' names and
    contents, in name order (other files in it do not count).

    With `memo` (a SQLite file; `FrameCache.memo`), the hash is
    remembered by (path, size, mtime_ns, ctime_ns, inode) so re-runs do not re-read
    big videos; for a folder, by the same fields summed or maxed over it and its frame
    files, with a digest of every frame file's name and stat in place of the inode, so
    an added, removed, renamed or rewritten frame is noticed. Anything changed in the
    last 2 s is not memoized (a rewrite within one mtime tick would go unnoticed). A
    memo that cannot be used is skipped, not an error.
    """
    path = Path(path)
    ident = _identity(path)
    if memo is not None:
        found = _memo_lookup(memo, ident)
        if found:
            return found
    digest = _hash_folder(path) if path.is_dir() else _hash_file(path)
    if memo is not None and time.time() - ident[2] / 1e9 > _MEMO_MIN_AGE_S:
        _memo_store(memo, ident, digest)
    return digest


def _identity(path: Path) -> tuple[str, int, int, int, int]:
    """What the memo knows a video by (see `fingerprint`); raises OSError."""
    return _folder_identity(path) if path.is_dir() else _file_identity(path)


def _file_identity(path: Path) -> tuple[str, int, int, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def _folder_identity(folder: Path) -> tuple[str, int, int, int, int]:
    """(path, total frame bytes, newest mtime, newest ctime, 63-bit digest of the
    folder's inode and each frame file's name, size, times and inode)."""
    own = folder.stat()
    size, mtime, ctime = 0, own.st_mtime_ns, own.st_ctime_ns
    listing = hashlib.blake2b(f"{own.st_ino}\n".encode(), digest_size=8)
    for file in frame_files(folder):
        st = file.stat()
        size += st.st_size
        mtime, ctime = max(mtime, st.st_mtime_ns), max(ctime, st.st_ctime_ns)
        listing.update(
            f"{file.name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode()
        )
    signature = int.from_bytes(listing.digest(), "big") >> 1  # fits SQLite's signed INTEGER
    return (str(folder.resolve()), size, mtime, ctime, signature)


def _hash_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:32]


def _hash_folder(folder: Path) -> str:
    total = hashlib.sha256(b"frame folder\n")  # never equal to a file's hash by accident
    for file in frame_files(folder):
        with open(file, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        total.update(f"{file.name}\0{digest}\n".encode())
    return total.hexdigest()[:32]


def _memo_connect(memo: Path) -> sqlite3.Connection:
    db = sqlite3.connect(memo, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS fingerprints (path TEXT PRIMARY KEY, size INTEGER, "
        "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, digest TEXT)"
    )
    return db


def _memo_lookup(memo: Path, ident: tuple) -> str | None:
    try:
        with closing(_memo_connect(memo)) as db:
            return _memo_query(db, ident)
    except sqlite3.Error:
        return None


def _memo_query(db: sqlite3.Connection, ident: tuple) -> str | None:
    row = db.execute(
        "SELECT digest FROM fingerprints WHERE path=? AND size=? AND mtime_ns=? "
        "AND ctime_ns=? AND inode=?",
        ident,
    ).fetchone()
    return row[0] if row else None


def _memo_store(memo: Path, ident: tuple, digest: str) -> None:
    try:
        with closing(_memo_connect(memo)) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?, ?, ?, ?)", (*ident, digest)
            )
    except sqlite3.Error:
        pass


def encode_frame(image: Image.Image, plan: FramePlan) -> tuple[bytes, tuple[int, int]]:
    """`image` as `plan` stores frames (`encode_png` or `encode_jpeg` at its quality),
    at its size."""
    if plan.storage == "png":
        return encode_png(image, plan.max_side)
    return encode_jpeg(image, plan.max_side, plan.jpeg_quality)


def frame_suffix(plan: FramePlan) -> str:
    """The file suffix of the frames `plan` stores."""
    return PNG_SUFFIX if plan.storage == "png" else JPEG_SUFFIX


def encode_jpeg(
    image: Image.Image, max_side: int | None, quality: int
) -> tuple[bytes, tuple[int, int]]:
    """Shrink so the longer side is <= max_side (never enlarge, keep aspect) and JPEG it."""
    image = fit_within(image, max_side)
    buffer = BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), image.size


def encode_png(image: Image.Image, max_side: int | None) -> tuple[bytes, tuple[int, int]]:
    """Shrink as `encode_jpeg` does and store the RGB pixels losslessly as PNG, at zlib
    level 1: the fastest level that still compresses, since extraction waits on it
    (on grainy 1080p frames, about 40% of the raw pixels; level 6 saves a few percent
    more in about twice the time)."""
    image = fit_within(image, max_side)
    buffer = BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue(), image.size


def fit_within(image: Image.Image, max_side: int | None) -> Image.Image:
    """`image` scaled down so that max(width, height) <= max_side; as is if it fits."""
    from PIL import Image

    width, height = image.size
    if max_side is None or max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
