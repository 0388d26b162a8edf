"""Per-sample outcomes of a cell, and the cell's intervals computed from them.

A `SampleOutcome` is what one question scored (its mean over trials), which video it is
about (the cluster of every interval and paired test: questions about one video are not
independent), the answer read and the model's text. The cell JSON carries them
(`samples`), the nightly snapshots keep them (`history.write_snapshot`), and
`evalcore compare` and the leaderboard's significance marks read them back.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evalcore.dataset.sample import Sample
from evalcore.scoring import ScoredSample
from evalcore.stats import LEVEL, RESAMPLES, SEED, Interval, cluster_bootstrap

if TYPE_CHECKING:
    from evalcore.benchmarks import Benchmark

PREDICTION_CHARS = 500  # a longer answer is cut in the JSON (the xlsx keeps it whole)
INTERVAL_METHOD = f"cluster bootstrap over videos (percentile, {RESAMPLES} resamples, seed {SEED})"


@dataclass(frozen=True)
class SampleOutcome:
    """One question of a cell. `value` is what it adds to the headline metric (1/0 for
    right/wrong, a judged benchmark's per-question score), averaged over trials; None
    when no trial has one (unjudged). The text fields are the last trial's."""

    sample_id: str
    video: str
    value: float | None
    answer: str = ""
    extracted: str | None = None
    prediction: str | None = None
    status: str = "missing"
    question: str = ""
    breakdown: dict[str, str] = field(default_factory=dict)


def cluster_of(sample: Sample) -> str:
    """The video a question is about, as the TSV names it (so two reports of the same
    dataset agree on it wherever they were made); the sample itself if none."""
    return sample.video or (str(sample.video_path) if sample.video_path else sample.sample_id)


def contribution(row: ScoredSample, benchmark: Benchmark | None = None) -> float | None:
    """What one scored sample adds to the headline mean. A judged benchmark's headline
    (`overall`) is a mean of a per-question transform (a failure counts 0, MLVU truncates
    scores), so one question's share is `overall([value])`."""
    value = row.value
    if value is None or benchmark is None or not benchmark.judged:
        return value
    return float(benchmark.overall([value]))


def sample_outcomes(
    trials: Sequence[Sequence[ScoredSample]], benchmark: Benchmark | None = None
) -> list[SampleOutcome]:
    """One outcome per sample of the first trial, values averaged over the trials."""
    values: dict[str, list[float]] = {}
    for scored in trials:
        for row in scored:
            v = contribution(row, benchmark)
            if v is not None:
                values.setdefault(row.sample.sample_id, []).append(v)
    last = {row.sample.sample_id: row for row in trials[-1]}
    out = []
    for row in trials[0]:
        sid = row.sample.sample_id
        final = last.get(sid, row)
        rec = final.record
        text = rec.prediction if rec is not None and rec.ok else None
        seen = values.get(sid)
        out.append(
            SampleOutcome(
                sample_id=sid,
                video=cluster_of(row.sample),
                value=statistics.fmean(seen) if seen else None,
                answer=row.sample.answer,
                extracted=final.extracted,
                prediction=text[:PREDICTION_CHARS] if text is not None else None,
                status=final.status,
                question=row.sample.question,
                breakdown={k: v or "(none)" for k, v in row.breakdown.items()},
            )
        )
    return out


def has_score(outcomes: Sequence[SampleOutcome]) -> bool:
    """Whether a cell's outcomes make a score: not when questions were answered and none
    of those answers has a value (a judged cell whose judge scored nothing; reports from
    before such cells had no score read 0.0 there, from the model failures alone)."""
    answered = [o for o in outcomes if o.status == "ok"]
    return not answered or any(o.value is not None for o in answered)


def outcomes_json(outcomes: Iterable[SampleOutcome]) -> list[dict[str, Any]]:
    return [asdict(o) for o in outcomes]


def outcomes_from_json(rows: Iterable[dict[str, Any]]) -> list[SampleOutcome]:
    known = SampleOutcome.__dataclass_fields__
    return [SampleOutcome(**{k: v for k, v in row.items() if k in known}) for row in rows]


def interval_of(outcomes: Sequence[SampleOutcome], reported: float | None = None) -> Interval:
    """The cluster-bootstrap interval of the mean value of `outcomes` (unvalued ones
    left out). With `reported` (the number the report shows), an interval whose mean is
    not that number (a benchmark whose headline is not a mean over questions) is not
    given: (None, None) rather than an interval around something else."""
    valued = [o for o in outcomes if o.value is not None]
    interval = cluster_bootstrap([o.value for o in valued], [o.video for o in valued])
    if reported is not None and valued and abs(interval.mean - reported) > 1e-6:
        return Interval(reported, None, None, interval.n, interval.clusters)
    return interval


def cell_intervals(
    outcomes: Sequence[SampleOutcome],
    accuracy: float | None,
    breakdowns: dict[str, dict[str, float]],
    per_category: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The report's interval fields: `accuracy_ci` (low, high, level, clusters, n,
    method), `breakdowns_ci` (breakdown -> value -> [low, high]) for the breakdown
    means the report shows (`breakdowns`: name -> value -> mean), and `per_category_ci`
    for the leaderboard's category columns (`per_category`: the breakdown it shows).
    A cell without a score (`accuracy` None) has no interval: over 0 samples."""
    if accuracy is None:
        overall = Interval(0.0, None, None, 0, 0)
    else:
        overall = interval_of(outcomes, accuracy)
    tables: dict[str, dict[str, list[float | None]]] = {}
    for name, values in breakdowns.items():
        tables[name] = {}
        for value, mean in values.items():
            group = [o for o in outcomes if o.breakdown.get(name) == value]
            ci = interval_of(group, mean)
            tables[name][value] = [ci.low, ci.high]
    shown = per_category or {}
    category = next(
        (
            tables[name]
            for name, values in breakdowns.items()
            if shown
            and values.keys() == shown.keys()
            and all(abs(values[k] - shown[k]) < 1e-9 for k in shown)
        ),
        {},
    )
    return {
        "per_category_ci": category,
        "accuracy_ci": {
            "low": overall.low,
            "high": overall.high,
            "level": LEVEL,
            "clusters": overall.clusters,
            "n": overall.n,
            "method": INTERVAL_METHOD,
        },
        "breakdowns_ci": tables,
    }
