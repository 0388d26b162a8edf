"""Accuracy per evaluation cell (model x dataset x trial) and across trials."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from evalcore.dataset.sample import Sample
from evalcore.predictions.log import PredictionRecord
from evalcore.scoring.extract import extract_option_letter


@dataclass(frozen=True)
class ScoredSample:
    """A sample joined with its outcome. `status` is ok, failed, or missing (never run)."""

    sample: Sample
    record: PredictionRecord | None
    extracted: str | None
    hit: bool

    @property
    def status(self) -> str:
        return self.record.status if self.record else "missing"


@dataclass(frozen=True)
class CellScore:
    """Metrics of one trial of one model on one dataset; failures count as wrong."""

    model: str
    dataset: str
    trial: int
    n: int
    correct: int
    failed: int
    missing: int
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


def score_samples(
    samples: Sequence[Sample], records: dict[str, PredictionRecord]
) -> list[ScoredSample]:
    scored = []
    for s in samples:
        rec = records.get(s.sample_id)
        extracted = extract_option_letter(rec.prediction, s.options) if rec and rec.ok else None
        scored.append(ScoredSample(s, rec, extracted, hit=extracted == s.answer))
    return scored


def summarize(model: str, dataset: str, trial: int, scored: Sequence[ScoredSample]) -> CellScore:
    by_cat: dict[str, list[bool]] = defaultdict(list)
    for row in scored:
        by_cat[row.sample.category or "all"].append(row.hit)
    return CellScore(
        model=model,
        dataset=dataset,
        trial=trial,
        n=len(scored),
        correct=sum(r.hit for r in scored),
        failed=sum(r.status == "failed" for r in scored),
        missing=sum(r.status == "missing" for r in scored),
        per_category={
            cat: {"accuracy": sum(hits) / len(hits), "n": len(hits)}
            for cat, hits in sorted(by_cat.items())
        },
    )


@dataclass(frozen=True)
class TrialSummary:
    """Mean and standard deviation over trials (seeds); std is 0 for a single trial."""

    model: str
    dataset: str
    accuracy: float
    accuracy_std: float
    trials: int
    n: int
    failed: int
    per_category: dict[str, float]


def aggregate_trials(scores: Sequence[CellScore]) -> TrialSummary:
    if not scores:
        raise ValueError("no trials to aggregate")
    accs = [s.accuracy for s in scores]
    cats = sorted({c for s in scores for c in s.per_category})
    return TrialSummary(
        model=scores[0].model,
        dataset=scores[0].dataset,
        accuracy=statistics.fmean(accs),
        accuracy_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
        trials=len(scores),
        n=scores[0].n,
        failed=max(s.failed + s.missing for s in scores),
        per_category={
            c: statistics.fmean(
                s.per_category[c]["accuracy"] for s in scores if c in s.per_category
            )
            for c in cats
        },
    )
