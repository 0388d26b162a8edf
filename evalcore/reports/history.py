"""The leaderboard over time: dated snapshots, change against the previous one, a chart.

Each nightly run freezes the leaderboard rows into `history/leaderboard-{UTC time}.json`;
file names sort in time order, so the newest snapshot is the last name. A leaderboard
row then carries `previous_accuracy` and `delta` (None for a cell the previous snapshot
did not have). `cells_to_evaluate` decides which cells a nightly run re-evaluates: no
report yet, or some sample without a record under its current answer key (changed
model or settings: all of them; a replaced video or an edited row: those samples), or
a retryable failure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evalcore.atomic import atomic_path, atomic_write_text
from evalcore.cell import Cell, cells_of, valid_records
from evalcore.config import EvalConfig
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.hashing import stable_hash
from evalcore.predictions import read_records
from evalcore.reports.leaderboard import (
    collect_cells,
    leaderboard_files,
    leaderboard_rows,
    write_leaderboard,
)
from evalcore.workspace import Workspace

SNAPSHOT_PREFIX = "leaderboard-"
_STAMP = "%Y-%m-%dT%H%M%S.%fZ"  # sortable, and legal in file names everywhere
_FORMAT = 1  # part of the published files' digest: a change to their layout rewrites them


@dataclass(frozen=True)
class Snapshot:
    """The leaderboard as it was at `taken_at` (UTC)."""

    path: Path | None  # None: the current leaderboard, not frozen into a file
    taken_at: datetime
    rows: list[dict]


def write_snapshot(
    history_dir: Path, rows: Sequence[dict], taken_at: datetime | None = None
) -> Snapshot:
    """Freeze `rows` as a new dated snapshot (never overwrites an older one)."""
    taken_at = (taken_at or datetime.now(UTC)).astimezone(UTC)
    path = Path(history_dir) / f"{SNAPSHOT_PREFIX}{taken_at.strftime(_STAMP)}.json"
    payload = {"taken_at": taken_at.isoformat(), "rows": list(rows)}
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True))
    return Snapshot(path, taken_at, list(rows))


def list_snapshots(history_dir: Path) -> list[Snapshot]:
    """Every snapshot, oldest first."""
    snapshots = []
    for path in sorted(Path(history_dir).glob(f"{SNAPSHOT_PREFIX}*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        snapshots.append(
            Snapshot(path, datetime.fromisoformat(payload["taken_at"]), payload["rows"])
        )
    return snapshots


def with_deltas(rows: Sequence[dict], previous: Snapshot | None) -> list[dict]:
    """Rows plus `previous_accuracy` and `delta` against the `previous` snapshot."""
    before = {(r["model"], r["dataset"]): r["accuracy"] for r in previous.rows} if previous else {}
    out = []
    for row in rows:
        prev = before.get((row["model"], row["dataset"]))
        delta = None if prev is None else row["accuracy"] - prev
        out.append({**row, "previous_accuracy": prev, "delta": delta})
    return out


def history_points(snapshots: Sequence[Snapshot]) -> list[dict]:
    """One row per snapshot x cell: the long table behind the chart."""
    return [
        {
            "taken_at": s.taken_at.isoformat(),
            "model": r["model"],
            "dataset": r["dataset"],
            "accuracy": r["accuracy"],
            "failed": r.get("failed"),
        }
        for s in snapshots
        for r in s.rows
    ]


def write_history_chart(snapshots: Sequence[Snapshot], path: Path) -> Path:
    """Accuracy over time: one panel per dataset, one line per model (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    points = history_points(snapshots)
    datasets = sorted({p["dataset"] for p in points}) or ["(no snapshots yet)"]
    models = sorted({p["model"] for p in points})
    colour = {m: f"C{i % 10}" for i, m in enumerate(models)}  # one colour per model
    fig, axes = plt.subplots(
        len(datasets), 1, figsize=(8, 3 * len(datasets)), squeeze=False, constrained_layout=True
    )
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        cells = [p for p in points if p["dataset"] == dataset]
        for model in sorted({p["model"] for p in cells}):
            series = [p for p in cells if p["model"] == model]
            times = [datetime.fromisoformat(p["taken_at"]) for p in series]
            accs = [p["accuracy"] for p in series]
            ax.plot(times, accs, marker="o", color=colour[model], label=model)
        times = sorted({datetime.fromisoformat(p["taken_at"]) for p in cells})
        if len(times) == 1:  # one point: give the axis a range the date locator can split
            ax.set_xlim(times[0] - timedelta(hours=12), times[0] + timedelta(hours=12))
        ax.set_title(dataset)
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        locator = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if cells:
            ax.legend(loc="best", fontsize="small")
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def publish_with_history(
    ws: Workspace, rows: Sequence[dict], snapshot: bool, now: datetime | None = None
) -> tuple[list[dict], dict[str, Path]]:
    """Rewrite the leaderboard files with each cell's change against the last snapshot,
    and redraw the chart. With `snapshot`, first freeze `rows` as a new dated snapshot
    (the change is then against the one before it). Returns the rows as published and
    the paths written (json, xlsx, md, png, and snapshot when one was taken).

    Files that already show these rows against these snapshots are kept as they are
    (their digest is in `Workspace.leaderboard_digest`): a re-run that changed no cell
    rewrites nothing and draws no chart, so the chart's point for the current run keeps
    the time it was first published."""
    now = now or datetime.now(UTC)
    snapshots = list_snapshots(ws.history_dir)
    previous = snapshots[-1] if snapshots else None
    paths: dict[str, Path] = {}
    if snapshot:
        taken = write_snapshot(ws.history_dir, rows, now)
        snapshots.append(taken)
        paths["snapshot"] = taken.path
    board = with_deltas(rows, previous)
    digest = stable_hash(
        {"format": _FORMAT, "board": board, "snapshots": [s.path.name for s in snapshots]},
        length=32,
    )
    published = {**leaderboard_files(ws.output_dir), "png": ws.leaderboard_chart}
    if all(p.exists() for p in published.values()) and _read(ws.leaderboard_digest) == digest:
        return board, {**published, **paths}
    if not snapshot:  # the chart still shows where this run stands, after the snapshots
        snapshots.append(Snapshot(None, now, list(rows)))
    paths.update(write_leaderboard(board, ws.output_dir))
    paths["png"] = write_history_chart(snapshots, ws.leaderboard_chart)
    atomic_write_text(ws.leaderboard_digest, digest + "\n")
    return board, paths


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


NO_RESULT = "no result yet"
SETTINGS_CHANGED = "model or settings changed"
SAMPLES_CHANGED = "samples new or changed"
HAS_FAILURES = "has retryable failures"


def why_stale(cells: Sequence[Cell], ws: Workspace, samples, videos: dict[str, str]) -> str | None:
    """Why the trials of one model x dataset must be evaluated again, or None when every
    sample has a record that counts (its current answer key) and none is a retryable
    failure. Permanent failures (a missing video) keep a cell current until the input
    changes."""
    report = ws.cell_json(cells[0].model.name, cells[0].dataset.dataset_name)
    if not report.exists():
        return NO_RESULT
    ids = [s.sample_id for s in samples]
    for cell in cells:
        keys = cell.answer_keys(samples, videos)
        records = valid_records(read_records(cell.log_dir(ws)), keys)
        pending = [i for i in ids if i not in records]
        if len(pending) == len(ids):
            return SETTINGS_CHANGED
        if pending:
            return f"{len(pending)} of {len(ids)} {SAMPLES_CHANGED}"
        if any(not records[i].final for i in ids):
            return HAS_FAILURES
    if json.loads(report.read_text(encoding="utf-8")).get("n") != len(ids):
        return f"{SAMPLES_CHANGED} (count)"
    return None


def cells_to_evaluate(config: EvalConfig, ws: Workspace) -> dict[str, dict[str, str]]:
    """Dataset name -> {model name: why} for every cell that must be (re-)evaluated.
    Reads no video it has fingerprinted before (the frame cache's memo)."""
    cache = FrameCache(ws.frame_cache_dir)
    by_pair: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells_of(config):
        by_pair.setdefault((cell.dataset.dataset_name, cell.model.name), []).append(cell)
    plan: dict[str, dict[str, str]] = {d.dataset_name: {} for d in config.datasets}
    for dataset in config.datasets:
        samples = dataset.samples()
        videos = video_fingerprints(samples, cache)
        for model in config.models:
            reason = why_stale(by_pair[(dataset.dataset_name, model.name)], ws, samples, videos)
            if reason:
                plan[dataset.dataset_name][model.name] = reason
    return plan


def publish_leaderboard(
    ws: Workspace, snapshot: bool = False
) -> tuple[list[dict], dict[str, Path]]:
    """Rebuild `results.json` (every cell's full JSON) and the leaderboard files and chart
    from the cells, with the change against the last snapshot; `snapshot` freezes a new one."""
    cells = collect_cells(ws.cell_jsons())
    results = json.dumps(cells, indent=2, sort_keys=True)
    if _read(ws.output_dir / "results.json") != results.strip():
        atomic_write_text(ws.output_dir / "results.json", results)
    return publish_with_history(ws, leaderboard_rows(cells.values()), snapshot=snapshot)
