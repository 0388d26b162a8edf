"""Per-cell outputs: `{model}/{model}_{dataset}.xlsx` for reading answers, a JSON beside
it for machines; `report_cell` scores every trial of a cell from its logs and writes both,
unless the files already say exactly that (a re-run that changed nothing rewrites
nothing, and pandas and openpyxl are imported only when an xlsx is written)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from evalcore.atomic import atomic_path, atomic_write_text
from evalcore.cell import CellTrials
from evalcore.hashing import stable_hash
from evalcore.reports.pooled import SHEET as POOLED_SHEET
from evalcore.reports.pooled import (
    pool_reports,
    pooled_frame,
    pooled_table,
    refresh_pool,
    write_pooled,
)
from evalcore.reports.rule_sets import rule_set_rows, rule_set_table
from evalcore.reports.samples import cell_intervals, outcomes_json, sample_outcomes
from evalcore.reports.usage import CellUsage, cell_usage
from evalcore.scoring import (
    CellScore,
    ScoredSample,
    TrialSummary,
    Unjudged,
    aggregate_trials,
    describe_unjudged,
    score_samples,
    summarize,
)
from evalcore.workspace import Workspace

# The characters a worksheet cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE).
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
# Part of each report's digest: a change to what the files contain rewrites them all.
REPORT_FORMAT = 2
# Metrics fields added after reports were first written, with the value that says
# nothing: a report holds one only when it says something, so the reports of cells it
# does not concern keep their digest and are not rewritten.
LATER_FIELDS = {"unjudged_reasons": {}, "scored": True}


def report_cell(
    trials: CellTrials,
    ws: Workspace,
    judged: dict[int, dict[str, str | None]] | None = None,
    card: dict | None = None,
    scores: dict[int, dict[str, float | Unjudged]] | None = None,
) -> dict:
    """Score every trial of one model x dataset from the records that count (made under
    each sample's current answer key), with the judge's readings (`judged`: trial ->
    sample id -> answer) where the rule read nothing; write the xlsx (last trial) and
    the JSON with the reproducibility `card`, the intervals clustered by video, the
    per-sample outcomes and what the answers cost. A judged benchmark takes the judge's
    `scores` (trial -> sample id -> score, or why it has none; None: no judge) instead,
    and has no score (`accuracy` None) when its judge scored none of its answers. A
    benchmark whose VLMEvalKit report pools several files (`Benchmark.pool`) also gets
    that table, over this cell and the model's other cells of the pool, and refreshes
    it in theirs (`evalcore.reports.pooled`).

    The JSON records a digest of everything both files hold (`report_digest`); when it
    matches and the xlsx exists, neither file is written again and the cell keeps its
    `evaluated_at`: it says when these results were made, not when they were re-read."""
    benchmark, samples = trials.benchmark, trials.samples
    name, dataset = trials.model.name, trials.dataset.dataset_name
    trial_scores, scored_trials, counted = [], [], []
    for trial, current in trials.current_records(ws).items():
        records = current.records
        counted += records.values()
        scored = score_samples(
            samples,
            records,
            benchmark,
            (judged or {}).get(trial),
            (scores or {}).get(trial),
        )
        scored_trials.append(scored)
        trial_scores.append(summarize(name, dataset, trial, scored, benchmark))
    summary = aggregate_trials(trial_scores)
    by_trial = {t.trial: s for t, s in zip(trial_scores, scored_trials, strict=True)}
    rules = rule_set_table(benchmark, by_trial)  # None: no letter rule (a judged benchmark)
    outcomes = sample_outcomes(scored_trials, benchmark)
    usage = cell_usage(counted, trials.model.price)
    settings = {**trials.settings(), "card": card or trials.card()}
    samples_json = outcomes_json(outcomes)
    last = scored_trials[-1]
    xlsx, path = ws.cell_xlsx(name, dataset), ws.cell_json(name, dataset)
    # What both files are made from; the intervals are a seeded function of the outcomes,
    # so an unchanged cell needs no bootstrap (and no numpy) to know it is unchanged.
    digest = stable_hash(
        {
            "format": REPORT_FORMAT,
            "json": cell_payload(summary, trial_scores, settings, benchmark.metric),
            "samples": samples_json,
            "usage": asdict(usage),
            "predictions": prediction_rows(last),
            **({"rule_sets": rules} if rules is not None else {}),
        },
        length=32,
    )
    # a pooling benchmark's table over this file and the model's others: in no digest
    others = pool_reports(ws, name, benchmark.pool, but=dataset) if benchmark.pool else []
    pooled = pooled_table(benchmark, dataset, outcomes, others) if benchmark.pool else None
    kept = _read_json(path) if xlsx.exists() else {}
    if kept.get("report_digest") == digest and "accuracy_ci" in kept:
        ci = kept["accuracy_ci"]
        if pooled is not None and kept.get("pooled") != pooled:
            write_pooled(path, xlsx, kept, pooled)
    else:
        intervals = cell_intervals(
            outcomes, summary.accuracy, summary.breakdowns, summary.per_category
        )
        sheet = summary_sheet(summary, intervals, usage, benchmark.metric, rules)
        extra = {**intervals, "usage": asdict(usage), "samples": samples_json}
        extra.update({"pooled": pooled} if pooled is not None else {})
        extra.update({"rule_sets": rules} if rules is not None else {})
        write_cell_xlsx(
            xlsx, last, summary.breakdowns, intervals["breakdowns_ci"], sheet, pooled, rules
        )
        write_cell_json(path, summary, trial_scores, settings, benchmark.metric, extra, digest)
        ci = intervals["accuracy_ci"]
    if pooled is not None:
        refresh_pool(others, pooled)
    return {
        **asdict(summary),
        "metric": benchmark.metric,
        "accuracy_low": ci["low"],
        "accuracy_high": ci["high"],
    }


def summary_sheet(
    summary: TrialSummary,
    intervals: dict,
    usage: CellUsage,
    metric: str = "accuracy",
    rules: dict | None = None,
) -> list[dict]:
    """The xlsx `summary` sheet: one (field, value) row per headline number; a cell
    without a score says `no score`, and why its answers are unjudged; a letter-rule
    benchmark's headline under each answer rule set and how many answers they read apart."""
    ci = intervals["accuracy_ci"]
    rows = [
        ("model", summary.model),
        ("dataset", summary.dataset),
        (metric, "no score" if summary.accuracy is None else summary.accuracy),
        (f"{metric} 95% CI low", ci["low"]),
        (f"{metric} 95% CI high", ci["high"]),
        ("interval", f"{ci['method']}; {ci['clusters']} videos"),
        ("samples", summary.n),
        ("trials", summary.trials),
        ("stddev over trials", summary.accuracy_std),
        ("failed", summary.failed),
        ("unreadable", summary.unreadable),
        *(
            [("unjudged", describe_unjudged(summary.unjudged, summary.unjudged_reasons))]
            if summary.unjudged
            else []
        ),
        *(
            (f"{metric} ({name} rules)", a)
            for name, a in (rules or {}).get("headlines", {}).items()
        ),
        *([("answers the rule sets read apart", rules["disagreements"])] if rules else []),
        *((k, v) for k, v in asdict(usage).items()),
    ]
    return [{"field": k, "value": v} for k, v in rows]


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def prediction_rows(scored: Sequence[ScoredSample]) -> list[dict]:
    """Sheet `predictions`: VLMEvalKit's columns (the TSV row) plus what this run adds to
    each sample; a judged answer's score, or why it has none."""
    rows = []
    for s in scored:
        rec = s.record
        judged = {}
        if s.extracted_by == "judged":
            judged = {"judge_score": s.score, "unjudged": s.unjudged.value if s.unjudged else None}
        rows.append(
            {
                **s.sample.row,
                "prediction": rec.prediction if rec and rec.ok else None,
                "extracted": s.extracted,
                "extracted_by": s.extracted_by if rec and rec.ok else None,
                "hit": int(s.hit),
                "status": s.status,
                "error_type": rec.error_type if rec else None,
                "error": rec.error if rec else None,
                "attempts": rec.attempts if rec else 0,
                **judged,
            }
        )
    return rows


def breakdown_rows(
    scored: Sequence[ScoredSample],
    breakdowns: dict[str, dict[str, float]] | None,
    breakdowns_ci: dict[str, dict[str, list[float | None]]] | None = None,
) -> list[dict]:
    """Sheet `breakdowns`: accuracy per value of each breakdown, with its 95% interval
    (clustered by video) and count."""
    counts: dict[tuple[str, str], int] = {}
    for s in scored:
        for name, value in s.breakdown.items():
            counts[(name, value or "(none)")] = counts.get((name, value or "(none)"), 0) + 1
    ci = breakdowns_ci or {}
    return [
        {
            "breakdown": name,
            "value": value,
            "accuracy": acc,
            "ci_low": ci.get(name, {}).get(value, [None, None])[0],
            "ci_high": ci.get(name, {}).get(value, [None, None])[1],
            "n": counts.get((name, value)),
        }
        for name, values in (breakdowns or {}).items()
        for value, acc in values.items()
    ]


def write_cell_xlsx(
    path: Path,
    scored: Sequence[ScoredSample],
    breakdowns: dict[str, dict[str, float]] | None = None,
    breakdowns_ci: dict[str, dict[str, list[float | None]]] | None = None,
    summary: list[dict] | None = None,
    pooled: dict | None = None,
    rules: dict | None = None,
) -> Path:
    """Sheets `predictions` (`prediction_rows`), `breakdowns` (`breakdown_rows`) and,
    given, `summary` (the headline numbers and cost), `pooled` (`pooled_frame`) and
    `rule sets` (the answers the answer rule sets read apart: `rule_set_rows`)."""
    import pandas as pd  # here, not at the top: a run that writes no report never needs it

    table = pd.DataFrame(prediction_rows(scored)).map(cell_text)
    tables = pd.DataFrame(
        breakdown_rows(scored, breakdowns, breakdowns_ci),
        columns=["breakdown", "value", "accuracy", "ci_low", "ci_high", "n"],
    )
    with atomic_path(path) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as writer:
        table.to_excel(writer, sheet_name="predictions", index=False)
        tables.to_excel(writer, sheet_name="breakdowns", index=False)
        if summary:
            pd.DataFrame(summary).map(cell_text).to_excel(writer, sheet_name="summary", index=False)
        if pooled is not None:
            pooled_frame(pooled).to_excel(writer, sheet_name=POOLED_SHEET, index=False)
        if rules is not None:
            frame = pd.DataFrame(rule_set_rows(rules)).map(cell_text)
            frame.to_excel(writer, sheet_name="rule sets", index=False)
    return path


def cell_text(value):
    """A value a worksheet can hold: control characters (a model may emit any) are
    written as `\\x..` escapes instead of failing the whole report."""
    if not isinstance(value, str):
        return value
    return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def cell_payload(
    summary: TrialSummary,
    trials: Sequence[CellScore],
    settings: dict,
    metric: str = "accuracy",
    extra: dict | None = None,
) -> dict:
    """The cell's metrics (`accuracy` holds the headline `metric`), the per-trial detail
    and the settings that produced them; `extra`: intervals, usage, per-sample outcomes."""
    return {
        **_metrics(summary),
        **(extra or {}),
        "metric": metric,
        "trial_scores": [{**_metrics(t), "accuracy": t.accuracy} for t in trials],
        "settings": settings,
    }


def _metrics(scores: TrialSummary | CellScore) -> dict:
    """The fields of `scores`, but `LATER_FIELDS` that say nothing."""
    return {
        k: v for k, v in asdict(scores).items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]
    }


def write_cell_json(
    path: Path,
    summary: TrialSummary,
    trials: Sequence[CellScore],
    settings: dict,
    metric: str = "accuracy",
    extra: dict | None = None,
    digest: str | None = None,
) -> Path:
    """`cell_payload`, stamped `evaluated_at` now, with the report's `digest`."""
    payload = {
        **cell_payload(summary, trials, settings, metric, extra),
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "report_digest": digest,
    }
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True))
    return path
