"""Accuracy per evaluation cell (model x dataset x trial) and across trials."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalcore.dataset.sample import Sample
from evalcore.predictions.log import PredictionRecord
from evalcore.scoring.unjudged import Unjudged

if TYPE_CHECKING:
    from evalcore.benchmarks import Benchmark


@dataclass(frozen=True)
class ScoredSample:
    """A sample joined with its outcome. `status` is ok, failed, or missing (never run).
    `extracted_by`: `rule` (the benchmark's), `judge` (the LLM extractor), or `none`
    (an answer neither could read: scored wrong, counted as unreadable)."""

    sample: Sample
    record: PredictionRecord | None
    extracted: str | None
    hit: bool
    extracted_by: str = "rule"
    breakdown: dict[str, str] = field(default_factory=dict)
    score: float | None = None  # judged benchmarks: the judge's score (None: unjudged)
    unjudged: Unjudged | None = None  # judged benchmarks: why an answer has no score

    @property
    def value(self) -> float | None:
        """What the sample adds to the metric: 1/0 for right/wrong, the judge's score for
        a judged answer, 0 for a failure; None for an answer not judged yet."""
        if self.status == "ok" and self.extracted_by == "judged":
            return self.score
        return float(self.hit)

    @property
    def status(self) -> str:
        return self.record.status if self.record else "missing"


@dataclass(frozen=True)
class CellScore:
    """Metrics of one trial of one model on one dataset; failures count as wrong (0).
    `correct` sums what samples add: hits, or a judged benchmark's scores; `accuracy` is
    its mean over the samples that have a value (unjudged answers are left out), None
    when a judged benchmark's judge scored none of its answers (no score, never 0)."""

    model: str
    dataset: str
    trial: int
    n: int
    correct: float
    failed: int
    missing: int
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    unreadable: int = 0  # answered, but neither the rule nor the judge read an answer
    judged: int = 0  # read by the judge (the rule read nothing)
    breakdowns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    unjudged: int = 0  # judged benchmarks: answers without a judge's score (in no mean)
    headline: float | None = None  # judged benchmarks: the benchmark's own overall score
    unjudged_reasons: dict[str, int] = field(default_factory=dict)  # `Unjudged` -> count
    scored: bool = True  # False: a judged benchmark whose judge scored none of its answers

    @property
    def accuracy(self) -> float | None:
        """The headline metric: accuracy, or a judged benchmark's score (`metric`); None
        when the cell has no score (`scored`)."""
        if not self.scored:
            return None
        if self.headline is not None:
            return self.headline
        counted = self.n - self.unjudged
        return self.correct / counted if counted else 0.0


def score_samples(
    samples: Sequence[Sample],
    records: dict[str, PredictionRecord],
    benchmark: Benchmark,
    judged: dict[str, str | None] | None = None,
    scores: dict[str, float | Unjudged] | None = None,
) -> list[ScoredSample]:
    """The benchmark's rule first; for answers it cannot read, the judge's reading
    (`judged`: sample id -> answer or None) when there is one. A judged (open-ended)
    benchmark takes the judge's `scores` instead (sample id -> score, or why it has
    none); an answer they do not name was seen by no judge (`Unjudged.NO_JUDGE`)."""
    judged = judged or {}
    scored = []
    for s in samples:
        rec = records.get(s.sample_id)
        if benchmark.judged:
            score, why = None, None
            if rec and rec.ok:
                verdict = (scores or {}).get(s.sample_id, Unjudged.NO_JUDGE)
                if isinstance(verdict, Unjudged):
                    why = verdict
                else:
                    score = verdict
            by = "judged" if rec and rec.ok else "none"
            breakdown = benchmark.breakdown_values(s)
            scored.append(ScoredSample(s, rec, None, bool(score), by, breakdown, score, why))
            continue
        extracted, by = None, "none"
        if rec and rec.ok:
            extracted = benchmark.extract(s, rec.prediction or "").answer
            by = "rule"
            if extracted is None:
                extracted = judged.get(s.sample_id)
                by = "judge" if extracted is not None else "none"
        hit = rec is not None and rec.ok and benchmark.is_correct(s, extracted)
        breakdown = benchmark.breakdown_values(s)
        scored.append(ScoredSample(s, rec, extracted, hit, by, breakdown))
    return scored


def summarize(
    model: str,
    dataset: str,
    trial: int,
    scored: Sequence[ScoredSample],
    benchmark: Benchmark | None = None,
) -> CellScore:
    """Accuracy overall and per value of each breakdown (the first breakdown is the
    leaderboard's `per_category`); failures and unreadable answers count as wrong. A
    judged benchmark aggregates its scores its own way (`overall`, `breakdown_scores`:
    VLMEvalKit's report), over the answers the judge scored: a model failure counts 0,
    an unjudged answer is left out and counted with its reason. When the judge scored
    no answer (and some are unjudged) the cell has no score and no tables: its model
    failures' zeros alone are no measure of the model."""
    tables: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in scored:
        if row.value is None:
            continue  # unjudged: in no mean (the report counts them)
        for field_name, value in row.breakdown.items():
            tables[field_name][value or "(none)"].append(row.value)
    breakdowns = {
        name: {
            value: {"accuracy": sum(hits) / len(hits), "n": len(hits)}
            for value, hits in sorted(values.items())
        }
        for name, values in tables.items()
    }
    values = [r.value for r in scored if r.value is not None]
    reasons: dict[str, int] = {}
    for r in scored:
        if r.unjudged is not None:
            reasons[r.unjudged.value] = reasons.get(r.unjudged.value, 0) + 1
    # a judged cell needs one judged answer for a score (its failures' zeros are none)
    has_score = not reasons or any(r.status == "ok" and r.value is not None for r in scored)
    headline = None
    if not has_score:
        breakdowns = {}
    elif benchmark is not None and benchmark.judged:
        headline = benchmark.overall(values) if values else 0.0
        breakdowns = benchmark.breakdown_scores(
            [(r.sample, r.value) for r in scored if r.value is not None]
        )
    first = next(iter(breakdowns.values()), {})
    return CellScore(
        model=model,
        dataset=dataset,
        trial=trial,
        n=len(scored),
        correct=sum(values),
        failed=sum(r.status == "failed" for r in scored),
        missing=sum(r.status == "missing" for r in scored),
        per_category=first,
        unreadable=sum(r.status == "ok" and r.extracted_by == "none" for r in scored),
        judged=sum(r.extracted_by == "judge" for r in scored),
        unjudged=len(scored) - len(values),
        headline=headline,
        breakdowns=breakdowns,
        unjudged_reasons=dict(sorted(reasons.items())),
        scored=has_score,
    )


@dataclass(frozen=True)
class TrialSummary:
    """Mean and standard deviation over trials (seeds) that have a score; std is 0 for a
    single one. Both None when no trial has a score (a judged benchmark whose judge
    scored nothing)."""

    model: str
    dataset: str
    accuracy: float | None
    accuracy_std: float | None
    trials: int
    n: int
    failed: int
    per_category: dict[str, float]
    unreadable: int = 0  # most over trials
    judged: int = 0
    unjudged: int = 0  # most over trials
    breakdowns: dict[str, dict[str, float]] = field(default_factory=dict)  # mean accuracy
    unjudged_reasons: dict[str, int] = field(default_factory=dict)  # of the most unjudged


def aggregate_trials(scores: Sequence[CellScore]) -> TrialSummary:
    if not scores:
        raise ValueError("no trials to aggregate")
    accs = [s.accuracy for s in scores if s.accuracy is not None]
    cats = sorted({c for s in scores for c in s.per_category})
    most_unjudged = max(scores, key=lambda s: s.unjudged)
    return TrialSummary(
        model=scores[0].model,
        dataset=scores[0].dataset,
        accuracy=statistics.fmean(accs) if accs else None,
        accuracy_std=(statistics.stdev(accs) if len(accs) > 1 else 0.0) if accs else None,
        trials=len(scores),
        n=scores[0].n,
        failed=max(s.failed + s.missing for s in scores),
        per_category={
            c: statistics.fmean(
                s.per_category[c]["accuracy"] for s in scores if c in s.per_category
            )
            for c in cats
        },
        unreadable=max(s.unreadable for s in scores),
        judged=max(s.judged for s in scores),
        unjudged=most_unjudged.unjudged,
        unjudged_reasons=most_unjudged.unjudged_reasons,
        breakdowns={
            name: {
                value: statistics.fmean(
                    s.breakdowns[name][value]["accuracy"]
                    for s in scores
                    if value in s.breakdowns.get(name, {})
                )
                for value in sorted({v for s in scores for v in s.breakdowns.get(name, {})})
            }
            for name in sorted({n for s in scores for n in s.breakdowns})
        },
    )
