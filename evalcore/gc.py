"""`evalcore gc`: remove records and frames that no current config references.

What counts is what the given configs evaluate now: each cell's log folder, and in it
the records made under a current answer key; the frame cache entries their frame
indexes name. Everything else under `work/` (logs of old settings, records of replaced
videos or edited rows, frames of old plans, launch files of gone cells) is removed.
A log file some process holds (a run in progress) is left alone and reported, and so
are the frames while an extraction of a kept index is going on.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalcore.benchmarks import load_samples
from evalcore.cell import cells_of, frame_plans
from evalcore.config import EvalConfig
from evalcore.frames import FrameCache
from evalcore.frames.index import index_frame_keys, video_fingerprints
from evalcore.predictions import iter_records
from evalcore.predictions.journal import rewrite
from evalcore.workspace import Workspace


@dataclass
class GcReport:
    records: int = 0  # stale records dropped from logs that are kept
    log_dirs: int = 0  # whole log folders of cells no config evaluates
    frame_entries: int = 0
    other: int = 0  # frame indexes and shard folders of gone cells
    bytes: int = 0
    busy: list[str] = field(default_factory=list)  # logs held by a running process
    extracting: list[str] = field(default_factory=list)  # frame indexes being written

    def describe(self) -> str:
        text = (
            f"freed {self.bytes / 1e6:.1f} MB: {self.records} stale records, "
            f"{self.log_dirs} log folders of old settings, {self.frame_entries} frame "
            f"cache entries, {self.other} other files and folders"
        )
        if self.busy:
            text += f"; left {len(self.busy)} log(s) in use: {', '.join(self.busy[:3])}"
        if self.extracting:
            text += f"; kept every frame: an extraction is writing {self.extracting[0]}"
        return text


def collect_garbage(configs: Sequence[EvalConfig], dry_run: bool = False) -> GcReport:
    """Remove what none of `configs` references; they must share one work_dir."""
    work_dirs = {c.work_dir.resolve() for c in configs}
    if len(work_dirs) != 1:
        raise ValueError(f"the configs use different work_dirs: {sorted(map(str, work_dirs))}")
    ws = Workspace.of(configs[0])
    cache = FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    report = GcReport()
    keep_dirs: dict[Path, dict[str, str]] = {}  # log folder -> sample id -> answer key
    keep_shards: set[Path] = set()
    keep_indexes: set[Path] = set()
    for config in configs:
        videos: dict[str, dict[str, str]] = {}
        for cell in cells_of(config):
            samples = load_samples(cell.dataset)
            name = cell.dataset.dataset_name
            videos.setdefault(name, video_fingerprints(samples, cache))
            keys = keep_dirs.setdefault(cell.log_dir(ws).resolve(), {})
            keys.update(cell.answer_keys(samples, videos[name]))
            keep_shards.add(cell.shard_dir(ws).resolve())
        for dataset, frames in frame_plans(cells_of(config)):
            keep_indexes.add(frames.index_path(dataset, ws).resolve())

    for log_dir in _leaf_dirs(ws.predictions_root):
        if log_dir.resolve() in keep_dirs:
            _drop_stale_records(log_dir, keep_dirs[log_dir.resolve()], report, dry_run)
        else:
            report.log_dirs += 1
            _remove(log_dir, report, dry_run)
    for shard_dir in _leaf_dirs(ws.shards_root, depth=4):
        if shard_dir.resolve() not in keep_shards:
            report.other += 1
            _remove(shard_dir, report, dry_run)

    live_entries: set[str] = set()
    indexes = sorted(ws.frame_index_dir.glob("*")) if ws.frame_index_dir.is_dir() else []
    for index in indexes:
        if index.resolve() in keep_indexes:
            keys = index_frame_keys(index)
            if keys is None:  # being written: its clips are not all listed yet
                report.extracting.append(str(index))
            else:
                live_entries.update(keys)
        else:
            report.other += 1
            _remove(index, report, dry_run)
    if report.extracting:  # any cached clip may be one it is about to list: keep them all
        return report
    for entry in sorted(cache.root.glob("??/*")):
        if entry.is_dir() and entry.name not in live_entries:
            report.frame_entries += 1
            _remove(entry, report, dry_run)
    return report


def _leaf_dirs(root: Path, depth: int = 4) -> list[Path]:
    """Folders exactly `depth` levels below root: {model}/{dataset}/{cell key}/trial-{t}."""
    return (
        sorted(p for p in root.glob("/".join(["*"] * depth)) if p.is_dir()) if root.is_dir() else []
    )


def _drop_stale_records(
    log_dir: Path, keys: dict[str, str], report: GcReport, dry_run: bool
) -> None:
    def edit(path: Path) -> str | None:
        records = list(iter_records(path))
        kept = [r for r in records if keys.get(r.sample_id) == r.answer_key]
        if len(kept) == len(records):
            return None
        report.records += len(records) - len(kept)
        text = "".join(r.to_line() + "\n" for r in kept)
        report.bytes += path.stat().st_size - len(text.encode("utf-8"))
        return None if dry_run else text

    for path in sorted(log_dir.glob("*.jsonl")):
        if not rewrite(path, edit):  # a running writer keeps its file
            report.busy.append(str(path))


def _remove(path: Path, report: GcReport, dry_run: bool) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    report.bytes += sum(p.stat().st_size for p in files)
    if dry_run:
        return
    if path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
