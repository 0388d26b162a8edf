"""The leaderboard over time: dated snapshots, change against the previous one, charts.

Each nightly run freezes the leaderboard rows into `history/leaderboard-{UTC time}.json`;
file names sort in time order, so the newest snapshot is the last name. A snapshot also
keeps each cell's per-sample outcomes, content-addressed under `history/samples/`
(gzip JSON named by its hash: a cell unchanged since the last night adds no file). A
leaderboard row then carries `previous_accuracy` and `delta` (None for a cell the
previous snapshot did not have) and, where both snapshots have the cell's outcomes, a
paired test of the change on the same questions (`delta_p`, `delta_significant`,
`delta_low`/`high`, `delta_gains`/`losses`); a cell without a score now or then (a
judged cell whose judge scored nothing) gets no delta and no test (`delta_skipped`
says which side), never a comparison with 0. `cells_to_evaluate` decides which cells a
nightly run re-evaluates: no report yet, or some sample without a record under its
current answer key (changed model or settings: all of them; a replaced video or an
edited row: those samples), or a retryable failure, or (with a judge) answers the
judge has not scored.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from evalcore.atomic import TMP_MARK, atomic_path, atomic_write_text, sweep
from evalcore.cell import CellTrials, cells_of
from evalcore.config import EvalConfig
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.hashing import stable_hash
from evalcore.reports.compare import (
    CompareError,
    Comparison,
    Side,
    compare_sides,
    read_outcome_file,
)
from evalcore.reports.leaderboard import (
    collect_cells,
    leaderboard_files,
    leaderboard_rows,
    write_leaderboard,
)
from evalcore.reports.samples import (
    SampleOutcome,
    has_score,
    outcomes_from_json,
    outcomes_json,
)
from evalcore.workspace import Workspace

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SNAPSHOT_PREFIX = "leaderboard-"
SAMPLES_DIR = "samples"
_STAMP = "%Y-%m-%dT%H%M%S.%fZ"  # sortable, and legal in file names everywhere
_FORMAT = 1  # part of the published files' digest: a change to their layout rewrites them

Outcomes = Mapping[str, Sequence[SampleOutcome]]  # "model/dataset" -> per-sample outcomes


def cell_name(model: str, dataset: str) -> str:
    """How snapshots and `evalcore compare --cell` name a cell (names hold no `/`)."""
    return f"{model}/{dataset}"


@dataclass(frozen=True)
class Snapshot:
    """The leaderboard as it was at `taken_at` (UTC)."""

    path: Path | None  # None: the current leaderboard, not frozen into a file
    taken_at: datetime
    rows: list[dict]
    samples: dict[str, str] = field(default_factory=dict)  # cell -> outcome file (relative)

    def outcomes(self, model: str, dataset: str) -> list[SampleOutcome] | None:
        """The cell's per-sample outcomes as frozen; None when not kept (older snapshots)."""
        name = self.samples.get(cell_name(model, dataset))
        if name is None or self.path is None:
            return None
        try:
            return read_outcome_file(self.path.parent / name)
        except (OSError, ValueError):
            return None


def store_outcomes(history_dir: Path, outcomes: Sequence[SampleOutcome]) -> str:
    """Write one cell's outcomes as `samples/{hash}.json.gz` (once: same content, same
    file); returns the name relative to `history_dir`."""
    data = json.dumps(outcomes_json(outcomes), sort_keys=True, separators=(",", ":")).encode()
    name = f"{SAMPLES_DIR}/{hashlib.sha256(data).hexdigest()[:24]}.json.gz"
    path = Path(history_dir) / name
    if not path.exists():
        with atomic_path(path) as tmp:
            tmp.write_bytes(gzip.compress(data, mtime=0))
    return name


def write_snapshot(
    history_dir: Path,
    rows: Sequence[dict],
    taken_at: datetime | None = None,
    outcomes: Outcomes | None = None,
) -> Snapshot:
    """Freeze `rows` (and each cell's `outcomes`) as a new dated snapshot (never
    overwrites an older one)."""
    taken_at = (taken_at or datetime.now(UTC)).astimezone(UTC)
    path = Path(history_dir) / f"{SNAPSHOT_PREFIX}{taken_at.strftime(_STAMP)}.json"
    samples = {cell: store_outcomes(history_dir, o) for cell, o in (outcomes or {}).items()}
    payload = {"taken_at": taken_at.isoformat(), "rows": list(rows), "samples": samples}
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True))
    return Snapshot(path, taken_at, list(rows), samples)


def list_snapshots(history_dir: Path) -> list[Snapshot]:
    """Every snapshot, oldest first."""
    snapshots = []
    for path in sorted(Path(history_dir).glob(f"{SNAPSHOT_PREFIX}*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        taken_at = datetime.fromisoformat(payload["taken_at"])
        snapshots.append(Snapshot(path, taken_at, payload["rows"], payload.get("samples") or {}))
    return snapshots


def with_deltas(
    rows: Sequence[dict], previous: Snapshot | None, outcomes: Outcomes | None = None
) -> list[dict]:
    """Rows plus `previous_accuracy` and `delta` against the `previous` snapshot; with
    the current `outcomes`, the paired test of each change (`delta_p`, ...). A cell
    without a score on either side has no delta: `delta_skipped` says which. A cell whose
    answer rule set changed (another protocol) is compared with the previous snapshot's
    headline under the current rule (`delta_rule`; no paired test: those outcomes were
    read under the other rule), or skipped when the snapshot lacks it."""
    before = {(r["model"], r["dataset"]): r for r in previous.rows} if previous else {}
    out = []
    for row in rows:
        then = before.get((row["model"], row["dataset"]))
        if then is None or previous is None:
            out.append({**row, "previous_accuracy": None, "delta": None})
            continue
        prev = then["accuracy"]
        skipped = None
        rule, rule_then = row.get("rule_set", "evalcore"), then.get("rule_set", "evalcore")
        if rule != rule_then:  # the protocol changed the answer rule: compare like with like
            reread = (then.get("rule_set_headlines") or {}).get(rule)
            if reread is None or row["accuracy"] is None:
                skipped = f"answer rule changed ({rule_then} -> {rule})"
                out.append(
                    {**row, "previous_accuracy": prev, "delta": None, "delta_skipped": skipped}
                )
                continue
            out.append(
                {**row, "previous_accuracy": reread, "delta": row["accuracy"] - reread,
                 "delta_rule": f"previous re-read under {rule}"}
            )  # fmt: skip
            continue
        if row["accuracy"] is None:
            skipped = "no score now"
        elif prev is None or (prev == 0.0 and not _scored_then(previous, row)):
            skipped = "no score before"
        if skipped is not None:
            out.append({**row, "previous_accuracy": prev, "delta": None, "delta_skipped": skipped})
            continue
        extra = _delta_test(row, previous, outcomes) if outcomes else {}
        out.append({**row, "previous_accuracy": prev, "delta": row["accuracy"] - prev, **extra})
    return out


def _scored_then(previous: Snapshot, row: dict) -> bool:
    """Whether the snapshot's outcomes of the row's cell make a score: a snapshot from
    before cells could have none shows a judged cell that nothing judged as 0.0."""
    then = previous.outcomes(row["model"], row["dataset"])
    return then is None or has_score(then)


def _delta_test(row: dict, previous: Snapshot, outcomes: Outcomes) -> dict:
    comparison = compare_cell(previous, row["model"], row["dataset"], outcomes)
    if comparison is None:
        return {}
    t = comparison.test
    return {
        "delta_p": t.p_value,
        "delta_significant": t.significant,
        "delta_low": t.low,
        "delta_high": t.high,
        "delta_gains": len(comparison.gains),
        "delta_losses": len(comparison.losses),
    }


def compare_cell(
    previous: Snapshot, model: str, dataset: str, outcomes: Outcomes
) -> Comparison | None:
    """The cell now (`outcomes`) against `previous`, paired; None when either side has
    no per-sample outcomes or they share no question."""
    now = outcomes.get(cell_name(model, dataset))
    before = previous.outcomes(model, dataset)
    if not now or not before:
        return None
    then = Side(model, dataset, previous.taken_at.isoformat(), str(previous.path), before)
    current = Side(model, dataset, "now", "the current report", list(now))
    try:
        return compare_sides(then, current)
    except CompareError:
        return None


def changes_since_snapshot(
    ws: Workspace, cells: Sequence[tuple[str, str]]
) -> tuple[Snapshot | None, list[Comparison]]:
    """Each of `cells` (model, dataset) whose current report differs on some question
    from the latest snapshot, paired against it: what the run summary lists."""
    snapshots = list_snapshots(ws.history_dir)
    if not snapshots:
        return None, []
    latest, changed = snapshots[-1], []
    for model, dataset in cells:
        path = ws.cell_json(model, dataset)
        if not path.exists():
            continue
        report = json.loads(path.read_text(encoding="utf-8"))
        if "samples" not in report:
            continue
        now = {cell_name(model, dataset): outcomes_from_json(report["samples"])}
        comparison = compare_cell(latest, model, dataset, now)
        if comparison is not None and (comparison.gains or comparison.losses):
            changed.append(comparison)
    return latest, changed


def history_points(snapshots: Sequence[Snapshot]) -> list[dict]:
    """One row per snapshot x cell: the long table behind the chart."""
    return [
        {
            "taken_at": s.taken_at.isoformat(),
            "model": r["model"],
            "dataset": r["dataset"],
            "accuracy": r["accuracy"],
            "low": r.get("accuracy_low"),
            "high": r.get("accuracy_high"),
            "metric": r.get("metric") or "accuracy",
            "failed": r.get("failed"),
        }
        for s in snapshots
        for r in s.rows
    ]


def _new_figure(width: float, height: float) -> Figure:
    """A figure drawn by Agg without pyplot: no display, no global state to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _y_range(values: Sequence[float], metric: str, ax) -> None:
    """Zoom on the data (changes of a few points must show), padded; a proportion stays
    within [0, 1]."""
    lo, hi = min(values), max(values)
    pad = max(0.05 * (hi - lo), 0.02 if metric == "accuracy" else 0.05 * max(abs(hi), 1.0))
    lo, hi = lo - pad, hi + pad
    if metric == "accuracy":
        lo, hi = max(lo, -0.02), min(hi, 1.02)
    ax.set_ylim(lo, hi)


def history_figure(snapshots: Sequence[Snapshot]) -> Figure:
    """Score over the snapshots: one panel per dataset, one line per model, each point
    with its 95% interval as an error bar. The x axis has one step per snapshot, labelled
    with its date and time (a time axis draws one or two snapshots as lone dots on a day
    of empty hours); models are nudged apart so their bars do not hide each other, and
    the legend sits outside the plot."""
    points = [p for p in history_points(snapshots) if p["accuracy"] is not None]  # scored
    datasets = sorted({p["dataset"] for p in points}) or ["(no snapshots yet)"]
    models = sorted({p["model"] for p in points})
    colour = {m: f"C{i % 10}" for i, m in enumerate(models)}  # one colour per model
    fig = _new_figure(9, 3.2 * len(datasets))
    axes = fig.subplots(len(datasets), 1, squeeze=False)[:, 0]
    for ax, dataset in zip(axes, datasets, strict=True):
        cells = [p for p in points if p["dataset"] == dataset]
        times = sorted({p["taken_at"] for p in cells})
        position = {t: i for i, t in enumerate(times)}
        here = sorted({p["model"] for p in cells})
        width = min(0.3, 0.08 * len(here))  # the spread of the nudges
        extent: list[float] = []
        for k, model in enumerate(here):
            series = sorted((p for p in cells if p["model"] == model), key=lambda p: p["taken_at"])
            shift = (k - (len(here) - 1) / 2) * (width / max(len(here) - 1, 1))
            xs = [position[p["taken_at"]] + shift for p in series]
            ys = [p["accuracy"] for p in series]
            below = [p["accuracy"] - p["low"] if p["low"] is not None else 0.0 for p in series]
            above = [p["high"] - p["accuracy"] if p["high"] is not None else 0.0 for p in series]
            ax.errorbar(
                xs,
                ys,
                yerr=[below, above],
                fmt="-o",
                color=colour[model],
                capsize=3,
                markersize=4,
                linewidth=1.2,
                label=model,
            )
            extent += [y - b for y, b in zip(ys, below, strict=True)]
            extent += [y + a for y, a in zip(ys, above, strict=True)]
        metric = next((p["metric"] for p in cells), "accuracy")
        ax.set_title(dataset)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if not cells:
            ax.text(0.5, 0.5, "no snapshots yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            continue
        _y_range(extent, metric, ax)
        ax.set_xlim(-0.6, len(times) - 0.4)
        step = max(1, -(-len(times) // 8))  # at most 8 labels
        ticks = list(range(0, len(times), step))
        ax.set_xticks(ticks)
        ax.set_xticklabels([_when(times[i]) for i in ticks], fontsize="small")
        ax.set_xlabel("snapshot (UTC)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d\n%H:%M")


def category_figure(rows: Sequence[dict]) -> Figure:
    """The current score per category, one panel per dataset: horizontal bars grouped by
    category (overall first), one bar per model, each with its 95% interval; cells
    without a score are not drawn."""
    rows = [r for r in rows if r["accuracy"] is not None]
    datasets = sorted({r["dataset"] for r in rows}) or ["(no results yet)"]
    sizes = []
    for dataset in datasets:
        cells = [r for r in rows if r["dataset"] == dataset]
        cats = sorted({c for r in cells for c in r.get("per_category") or {}})
        sizes.append((1 + len(cats)) * max(1, len(cells)))
    fig = _new_figure(9, sum(1.2 + 0.22 * n for n in sizes))
    axes = fig.subplots(
        len(datasets), 1, squeeze=False, height_ratios=[1.2 + 0.22 * n for n in sizes]
    )
    models = sorted({r["model"] for r in rows})
    colour = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        cells = sorted((r for r in rows if r["dataset"] == dataset), key=lambda r: r["model"])
        ax.set_title(dataset)
        if not cells:
            ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)
            continue
        cats = sorted({c for r in cells for c in r.get("per_category") or {}})
        groups = ["(overall)", *cats]
        height = 0.8 / len(cells)
        extent: list[float] = []
        for k, r in enumerate(cells):
            cis = r.get("per_category_ci") or {}
            values, lows, highs = [r["accuracy"]], [r.get("accuracy_low")], [r.get("accuracy_high")]
            for c in cats:
                ci = cis.get(c) or (None, None)
                values.append(r["per_category"].get(c, float("nan")))
                lows.append(ci[0])
                highs.append(ci[1])
            err = [
                [v - lo if lo is not None else 0.0 for v, lo in zip(values, lows, strict=True)],
                [hi - v if hi is not None else 0.0 for v, hi in zip(values, highs, strict=True)],
            ]
            ys = [g + (k - (len(cells) - 1) / 2) * height for g in range(len(groups))]
            ax.barh(
                ys,
                values,
                height=height * 0.9,
                xerr=err,
                color=colour[r["model"]],
                label=r["model"],
                error_kw={"capsize": 2, "elinewidth": 1},
            )
            extent += [v + e for v, e in zip(values, err[1], strict=True) if v == v]
        metric = next((r.get("metric") for r in cells if r.get("metric")), "accuracy")
        ax.set_yticks(range(len(groups)))
        ax.set_yticklabels(groups, fontsize="small")
        ax.invert_yaxis()  # overall on top
        ax.set_xlabel(metric)
        right = 1.02 if metric == "accuracy" else max(extent or [1.0]) * 1.05
        ax.set_xlim(0, right)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def write_history_chart(snapshots: Sequence[Snapshot], path: Path) -> Path:
    """`history_figure` as a PNG."""
    return _save(history_figure(snapshots), path)


def write_category_chart(rows: Sequence[dict], path: Path) -> Path:
    """`category_figure` as a PNG."""
    return _save(category_figure(rows), path)


def publish_with_history(
    ws: Workspace,
    rows: Sequence[dict],
    snapshot: bool,
    now: datetime | None = None,
    outcomes: Outcomes | None = None,
) -> tuple[list[dict], dict[str, Path]]:
    """Rewrite the leaderboard files with each cell's change against the last snapshot
    (tested on the same questions where both have `outcomes`), and redraw the charts.
    With `snapshot`, first freeze `rows` and `outcomes` as a new dated snapshot (the
    change is then against the one before it). Returns the rows as published and the
    paths written (json, xlsx, md, png, categories_png, and snapshot when one was taken).

    Files that already show these rows against these snapshots are kept as they are
    (their digest is in `Workspace.leaderboard_digest`): a re-run that changed no cell
    rewrites nothing and draws no chart, so the chart's point for the current run keeps
    the time it was first published."""
    now = now or datetime.now(UTC)
    snapshots = list_snapshots(ws.history_dir)
    previous = snapshots[-1] if snapshots else None
    paths: dict[str, Path] = {}
    if snapshot:
        taken = write_snapshot(ws.history_dir, rows, now, outcomes)
        snapshots.append(taken)
        paths["snapshot"] = taken.path
    board = with_deltas(rows, previous, outcomes)
    digest = stable_hash(
        {"format": _FORMAT, "board": board, "snapshots": [s.path.name for s in snapshots]},
        length=32,
    )
    published = {
        **leaderboard_files(ws.output_dir),
        "png": ws.leaderboard_chart,
        "categories_png": ws.category_chart,
    }
    if all(p.exists() for p in published.values()) and _read(ws.leaderboard_digest) == digest:
        return board, {**published, **paths}
    if not snapshot:  # the chart still shows where this run stands, after the snapshots
        snapshots.append(Snapshot(None, now, list(rows)))
    paths.update(write_leaderboard(board, ws.output_dir))
    paths["png"] = write_history_chart(snapshots, ws.leaderboard_chart)
    paths["categories_png"] = write_category_chart(board, ws.category_chart)
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
UNJUDGED = "answers unjudged"


def why_stale(
    trials: CellTrials, ws: Workspace, videos: dict[str, str], judge: bool = False
) -> str | None:
    """Why the trials of one model x dataset must be evaluated again, or None when every
    sample has a record that counts (its current answer key), none is a retryable
    failure and, with a `judge` configured, the report has no unjudged answer (the judge
    failed on them: judged again, the model is not asked). Permanent failures (a missing
    video) keep a cell current until the input changes. `videos`: sample id -> video
    fingerprint (`video_fingerprints`)."""

    report = ws.cell_json(trials.model.name, trials.dataset.dataset_name)
    if not report.exists():
        return NO_RESULT
    ids = [s.sample_id for s in trials.samples]
    for current in trials.current_records(ws, videos).values():
        records = current.records
        pending = [i for i in ids if i not in records]
        if len(pending) == len(ids):
            return SETTINGS_CHANGED
        if pending:
            return f"{len(pending)} of {len(ids)} {SAMPLES_CHANGED}"
        if any(not records[i].final for i in ids):
            return HAS_FAILURES
    kept = json.loads(report.read_text(encoding="utf-8"))
    if kept.get("n") != len(ids):
        return f"{SAMPLES_CHANGED} (count)"
    if judge and trials.benchmark.judged and kept.get("unjudged"):
        return f"{kept['unjudged']} {UNJUDGED}"
    return None


def cells_to_evaluate(config: EvalConfig, ws: Workspace) -> dict[str, dict[str, str]]:
    """Dataset name -> {model name: why} for every cell that must be (re-)evaluated.
    Reads no video it has fingerprinted before (the frame cache's memo)."""
    cache = FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    plan: dict[str, dict[str, str]] = {d.dataset_name: {} for d in config.datasets}
    videos: dict[str, dict[str, str]] = {}  # dataset name -> its videos' fingerprints
    for trials in CellTrials.group(cells_of(config)):
        name = trials.dataset.dataset_name
        if name not in videos:
            videos[name] = video_fingerprints(trials.samples, cache)
        reason = why_stale(trials, ws, videos[name], judge=config.judge is not None)
        if reason:
            plan[name][trials.model.name] = reason
    return plan


def publish_leaderboard(
    ws: Workspace, snapshot: bool = False
) -> tuple[list[dict], dict[str, Path]]:
    """Rebuild `results.json` (every cell's JSON but its per-sample outcomes) and the
    leaderboard files and charts from the cells, with the change against the last
    snapshot; `snapshot` freezes a new one. Starts by removing the temporary files a
    killed publisher left (`evalcore.atomic.sweep`)."""
    for folder in (ws.output_dir, ws.output_dir / "history"):
        sweep(folder, f".*{TMP_MARK}*")
    cells = collect_cells(ws.cell_jsons())
    outcomes = {
        cell_name(c["model"], c["dataset"]): outcomes_from_json(c["samples"])
        for c in cells.values()
        if "samples" in c
    }
    metrics = {k: {f: v for f, v in c.items() if f != "samples"} for k, c in cells.items()}
    results = json.dumps(metrics, indent=2, sort_keys=True)
    if _read(ws.output_dir / "results.json") != results.strip():
        atomic_write_text(ws.output_dir / "results.json", results)
    rows = leaderboard_rows(cells.values())
    return publish_with_history(ws, rows, snapshot=snapshot, outcomes=outcomes)
