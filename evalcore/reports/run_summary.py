"""The run summary's content: per-stage task-run counts, per-sample outcomes and cache
hits, as markdown. It reads the work dir (prediction logs, frame indexes, cell reports)
but not Prefect: `flows.hooks.publish_run_summary` reads the Prefect API, hands the task
runs over, and publishes the result as the `eval-run-summary` artifact.

Sources: task runs of this attempt (cached, completed, failed, retried, wall time per
stage), the prediction logs on disk (samples answered now, restored from earlier
attempts or runs, failed, missing), the flow's return value when it completed
(frame-cache hits, API cache hits), and the cell reports against the latest leaderboard
snapshot (the questions that flipped, with the change's significance).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from evalcore.cell import CellTrials, cells_of
from evalcore.config import EvalConfig
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.workspace import Workspace

SUMMARY_KEY = "eval-run-summary"
_TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_DEFAULT_RUN_NAME = re.compile(r"-[0-9a-f]{3}$")  # Prefect names a task run `{task}-{3 hex}`
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TaskRunView:
    """What the summary needs of one task run (a plain copy of the API object)."""

    name: str
    task_key: str
    state_type: str
    state_name: str
    run_count: int
    attempt: int  # the flow run's attempt (run_count) this task run belongs to
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class StageStats:
    stage: str
    runs: int
    cached: int
    ran: int
    failed: int
    retried: int
    seconds: float


def stage_stats(task_runs: Sequence[TaskRunView], attempt: int) -> list[StageStats]:
    """Per task (stage) of this attempt, in order of first start. `retried`: runs that
    needed a task-level retry, plus, in a flow-run retry, units that ran again where an
    earlier attempt of the same stage failed (the others were restored from cache)."""
    groups: dict[str, list[TaskRunView]] = {}
    for tr in sorted(task_runs, key=lambda t: t.start or _NEVER):
        if tr.attempt == attempt:
            groups.setdefault(tr.task_key, []).append(tr)
    stats = []
    for key, runs in groups.items():
        cached = sum(r.state_name == "Cached" for r in runs)
        failed = sum(r.state_type in ("FAILED", "CRASHED") for r in runs)
        ran_ok = sum(r.state_type == "COMPLETED" and r.state_name != "Cached" for r in runs)
        failed_before = sum(
            t.task_key == key and t.attempt < attempt and t.state_type in ("FAILED", "CRASHED")
            for t in task_runs
        )
        starts = [r.start for r in runs if r.start]
        ends = [r.end for r in runs if r.end]
        stats.append(
            StageStats(
                stage=_stage_label(runs[0]),
                runs=len(runs),
                cached=cached,
                ran=len(runs) - cached,
                failed=failed,
                retried=sum(r.run_count > 1 for r in runs) + min(ran_ok, failed_before),
                seconds=round((max(ends) - min(starts)).total_seconds(), 2)
                if starts and ends
                else 0.0,
            )
        )
    return stats


SAMPLE_COLUMNS = {
    "total": "total",
    "answered": "answered now",
    "restored": "restored",
    "failed": "failed",
    "missing": "missing",
}


def sample_counts(config: EvalConfig, since: float) -> dict[str, dict[str, int]]:
    """Per cell (`model x dataset`, its trials together), its samples by what the logs say
    now (records under each sample's current answer key): answered in this attempt,
    restored (answered before `since`), failed, missing (never run)."""
    ws = Workspace.of(config)
    cache = FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    by_cell: dict[str, dict[str, int]] = {}
    videos: dict[str, dict[str, str]] = {}  # dataset name -> its videos' fingerprints
    for trials in CellTrials.group(cells_of(config)):
        name = trials.dataset.dataset_name
        if name not in videos:
            videos[name] = video_fingerprints(trials.samples, cache)
        counts = by_cell.setdefault(trials.label, dict.fromkeys(SAMPLE_COLUMNS, 0))
        for current in trials.current_records(ws, videos[name]).values():
            for sample in trials.samples:
                rec = current.records.get(sample.sample_id)
                counts["total"] += 1
                if rec is None:
                    counts["missing"] += 1
                elif not rec.ok:
                    counts["failed"] += 1
                elif rec.finished_at >= since:
                    counts["answered"] += 1
                else:
                    counts["restored"] += 1
    return by_cell


def cache_counts(outcome: dict | None, api_cells_restored: int) -> dict[str, str]:
    """Frame-cache and API response-cache hits from the flow's return value (None when the
    run failed). An API cell restored from the Prefect cache returns the counts of the run
    that made it, so its hits are not this attempt's: the line says how many such cells."""
    if not isinstance(outcome, dict):
        return {"frame-cache hits": "n/a (run failed)", "API cache hits": "n/a (run failed)"}
    frames = outcome.get("frames") or []
    hits, videos = sum(f.get("hits", 0) for f in frames), sum(f.get("videos", 0) for f in frames)
    api = [c for c in outcome.get("inference") or [] if isinstance(c, dict) and "cache_hits" in c]
    api_line = "no API models"
    if api:
        api_line = f"{sum(c['cache_hits'] for c in api)} requests over {len(api)} cells"
        if api_cells_restored:
            api_line += f" ({api_cells_restored} cells restored from an earlier run)"
    counts = {"frame-cache hits": f"{hits} of {videos} videos", "API cache hits": api_line}
    levels = sorted({c["in_flight"] for c in api if c.get("in_flight")})
    if levels:
        counts["API in flight"] = "; ".join(levels)
    return counts


def changes_markdown(config: EvalConfig, limit: int = 20) -> str:
    """The cells of `config` whose current report differs on some question from the
    latest leaderboard snapshot (in the nightly: the previous night's): per cell, the
    paired test of the change and the flipped questions (at most `limit` each way; the
    rest with `evalcore compare`), the cells the snapshot lacks (new: nothing to
    compare) and the cells without a score now (a judged cell whose judge scored
    nothing: compared with nothing, never as 0). Empty when there is no snapshot."""
    from evalcore.reports.compare import flips_table, no_score_reason, verdict
    from evalcore.reports.history import changes_since_snapshot

    ws = Workspace.of(config)
    pairs = [(m.name, d.dataset_name) for d in config.datasets for m in config.models]
    snapshot, changed = changes_since_snapshot(ws, pairs)
    if snapshot is None:
        return ""
    when = snapshot.taken_at.strftime("%Y-%m-%d %H:%M UTC")
    in_snapshot = {(r.get("model"), r.get("dataset")) for r in snapshot.rows}
    new = [f"{m} x {d}" for m, d in pairs if (m, d) not in in_snapshot]
    unscored = []
    for m, d in pairs:
        path = ws.cell_json(m, d)
        if (m, d) in in_snapshot and path.exists():
            why = no_score_reason(json.loads(path.read_text(encoding="utf-8")))
            unscored += [f"{m} x {d} ({why})"] if why is not None else []
    lines = []
    if changed:
        lines.append(f"## Changes since the snapshot of {when} (A: the snapshot, B: now)")
        for c in changed:
            lines += ["", f"### {c.b.model} x {c.b.dataset}", "", verdict(c)]
            for title, flips in (("wrong → right", c.gains), ("right → wrong", c.losses)):
                if flips:
                    lines += ["", f"{title} ({len(flips)}):", "", *flips_table(flips, limit)]
    elif len(new) + len(unscored) < len(pairs):
        lines.append(f"No question changed its outcome since the snapshot of {when}.")
    if new:
        lines += [
            *([""] if lines else []),
            f"Not in the snapshot of {when}, so nothing to compare: {', '.join(new)} (new).",
        ]
    if unscored:
        cells = ", ".join(unscored)
        lines += [*([""] if lines else []), f"No score, so nothing compared: {cells}."]
    return "\n".join(lines) + "\n"


def summary_markdown(
    run_name: str,
    attempt: int,
    final_state: str,
    wall_seconds: float,
    samples: Mapping[str, Mapping[str, int]],
    stages: Sequence[StageStats],
    caches: dict[str, str],
    changes: str = "",
) -> str:
    """The summary; `samples`: `sample_counts`'s, one row per cell (and their sum when
    there are several); `changes`: `changes_markdown`'s section, appended when not empty."""
    rows = dict(samples)
    if len(rows) > 1:
        rows["all cells"] = {k: sum(c.get(k, 0) for c in samples.values()) for k in SAMPLE_COLUMNS}
    lines = [
        f"# Run summary: {run_name} (attempt {attempt}, {final_state})\n",
        f"Wall time {wall_seconds:.1f} s.\n",
        "| samples of | " + " | ".join(SAMPLE_COLUMNS.values()) + " |",
        "|---" * (len(SAMPLE_COLUMNS) + 1) + "|",
        *(
            f"| {cell} | " + " | ".join(str(counts.get(k, 0)) for k in SAMPLE_COLUMNS) + " |"
            for cell, counts in rows.items()
        ),
        "",
        "| stage | task runs | cached | ran | failed | retried shards | wall s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {s.stage} | {s.runs} | {s.cached} | {s.ran} | {s.failed} | {s.retried} "
            f"| {s.seconds:.2f} |"
            for s in stages
        ),
        "",
        *(f"- {k}: {v}" for k, v in caches.items()),
    ]
    if changes:
        lines += ["", changes.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _stage_label(run: TaskRunView) -> str:
    """The task's name when the run has Prefect's default name (`infer-3f2`), else the
    task function's name (a run named per unit, `infer m x d t0 shard1-of-2`)."""
    if _DEFAULT_RUN_NAME.search(run.name):
        return _DEFAULT_RUN_NAME.sub("", run.name)
    return run.task_key.rsplit("-", 1)[0]
