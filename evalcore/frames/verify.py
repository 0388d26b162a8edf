"""`evalcore cache verify [--repair]`: check every entry of a frame cache and remove the
damaged ones.

An entry is sound when its manifest can be read and every frame file (JPEG or PNG) it
lists is there and matches the SHA-256 recorded when it was written. Entries written
before checksums have none: each of their frames is decoded in full instead (slower),
and they stay valid entries. Entries of another format version are not this code's to
judge: left alone.

Repair removes a damaged entry, under its lock and after looking at it again (a reader
may have extracted it again meanwhile, `extract.remake_entry`). Nothing else has to
change: every run's extraction looks each clip up in the cache and writes its frame
index anew, so the next run extracts the removed clips again; a run going on meanwhile
that reads one extracts it again on the spot.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from evalcore.frames.cache import FORMAT_VERSION, MANIFEST, FrameCache
from evalcore.frames.extract import _lock_entry
from evalcore.frames.index import index_frame_keys

_SHOWN = 20  # damaged entries listed one by one; the rest are counted


@dataclass
class CacheCheck:
    """What `verify_frame_cache` found (and removed)."""

    root: Path
    checked: int = 0  # entries looked at
    by_checksum: int = 0  # checked against their manifest's checksums
    by_decoding: int = 0  # written before checksums: every frame decoded
    other_format: int = 0  # of another format version: left alone
    damaged: dict[str, str] = field(default_factory=dict)  # key -> what is wrong
    sources: dict[str, str] = field(default_factory=dict)  # key -> the clip it shows
    indexes: dict[str, list[str]] = field(default_factory=dict)  # key -> indexes naming it
    removed: list[str] = field(default_factory=list)
    not_removed: dict[str, str] = field(default_factory=dict)  # key -> why

    @property
    def ok(self) -> bool:
        """Nothing damaged is left in the cache."""
        return set(self.damaged) <= set(self.removed)

    def describe(self) -> str:
        lines = [
            f"frame cache {self.root}: {self.checked} entries checked ({self.by_checksum} "
            f"against their checksums, {self.by_decoding} decoded in full: written before "
            "checksums)"
            + (f"; {self.other_format} of another format left alone" if self.other_format else "")
        ]
        if not self.damaged:
            lines.append("no damaged entries")
            return "\n".join(lines)
        lines.append(f"{len(self.damaged)} damaged:")
        for key in list(self.damaged)[:_SHOWN]:
            where = self.sources.get(key, "source unknown")
            named = self.indexes.get(key)
            index_note = f" (frame index {', '.join(named)})" if named else ""
            lines.append(f"  {key}  {where}{index_note}: {self.damaged[key]}")
        if len(self.damaged) > _SHOWN:
            lines.append(f"  ... and {len(self.damaged) - _SHOWN} more")
        if self.removed:
            lines.append(
                f"removed {len(self.removed)} damaged entries: the next run extracts their "
                "clips again"
            )
            lines.extend(f"  removed {key}" for key in self.removed)
        for key, why in self.not_removed.items():
            lines.append(f"  could not remove {key}: {why}")
        return "\n".join(lines)


def verify_frame_cache(
    cache: FrameCache,
    repair: bool = False,
    index_dir: Path | None = None,
    threads: int | None = None,
) -> CacheCheck:
    """Check every entry of `cache`; with `repair`, remove the damaged ones. `index_dir`:
    the frame indexes (`work/frame-index`), to say which datasets a damaged entry
    serves. Entries are checked by `threads` threads (default: one per core; reading,
    hashing and JPEG decoding release the GIL)."""
    report = CacheCheck(cache.root)
    keys = list(cache.keys())
    workers = max(1, min(threads or os.cpu_count() or 1, len(keys) or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="verify-frames") as pool:
        for key, (how, damage, source) in zip(
            keys, pool.map(lambda k: check_entry(cache, k), keys), strict=True
        ):
            report.checked += 1
            if how == "checksum":
                report.by_checksum += 1
            elif how == "decoding":
                report.by_decoding += 1
            elif how == "other-format":
                report.other_format += 1
            if damage is not None:
                report.damaged[key] = damage
                if source:
                    report.sources[key] = source
    if report.damaged and index_dir is not None:
        _name_indexes(report, index_dir)
    if repair:
        for key in list(report.damaged):
            _remove(cache, key, report)
    return report


def check_entry(cache: FrameCache, key: str) -> tuple[str, str | None, str]:
    """(how it was checked: `checksum`, `decoding`, `other-format` or "" when it could
    not be, what is wrong or None, the clip it shows as far as its manifest says)."""
    directory = cache.entry_dir(key)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return "", f"no {MANIFEST} (an incomplete entry)", ""
    except (OSError, ValueError) as error:
        return "", f"{MANIFEST} cannot be read: {error}", ""
    if not isinstance(manifest, dict):
        return "", f"{MANIFEST} is not a manifest", ""
    source = _clip_text(manifest)
    if manifest.get("format") != FORMAT_VERSION:
        return "other-format", None, source
    entry = cache.open(key)
    if entry is None:
        if manifest.get("key") != key:
            return "", f"{MANIFEST} names another key ({manifest.get('key')})", source
        files = manifest.get("files") or []
        missing = [name for name in files if not (directory / str(name)).is_file()]
        if missing:
            return "", f"{len(missing)} of {len(files)} frame files are missing", source
        return "", f"{MANIFEST} is incomplete", source
    how = "checksum" if manifest.get("sha256") is not None else "decoding"
    return how, entry.damage(), source


def _clip_text(manifest: dict) -> str:
    source = manifest.get("source")
    if not source:
        return ""
    clip = manifest.get("clip") or {}
    start, end = clip.get("start"), clip.get("end")
    return str(source) + (f" [{start}-{end} s]" if start is not None or end is not None else "")


def _name_indexes(report: CacheCheck, index_dir: Path) -> None:
    for path in sorted(index_dir.glob("*.jsonl")) if index_dir.is_dir() else ():
        try:
            keys = index_frame_keys(path)
        except (OSError, ValueError):
            continue
        for key in (keys or set()) & set(report.damaged):
            report.indexes.setdefault(key, []).append(path.name)


def _remove(cache: FrameCache, key: str, report: CacheCheck) -> None:
    """Remove one damaged entry, unless it was made again since it was checked."""
    try:
        with _lock_entry(cache, key):
            if check_entry(cache, key)[1] is None:  # extracted again meanwhile: sound
                del report.damaged[key]
                return
            cache.discard(key)
    except OSError as error:
        report.not_removed[key] = str(error)
        return
    report.removed.append(key)
