"""Paired comparison of two sets of answers to the same questions, clustered by video.

Two models on one dataset (or one cell at two snapshots) answer the same questions, so
their difference is measured per question: d_i = b_i - a_i (1 for wrong -> right, -1
for right -> wrong, 0 for no change; any value for judged scores or trial means). The
mean difference is tested with a **cluster-robust (CR1) standard error** over videos and
a two-sided z-test; the interval is `mean ± z SE`.

Why this and not a paired bootstrap (as for the single-cell interval):
- without clustering (one question per video) it is McNemar's test: z^2 tends to
  (b - c)^2 / (b + c) for b wrong -> right and c right -> wrong flips; with clustering
  it widens by as much as flips concentrate on a few videos;
- a difference sits around 0 and is not squeezed against a bound as an accuracy near 1
  is, so the normal approximation is sound where a single accuracy's is not;
- it is analytic: p-values far below 1/resamples (0.001 vs 1e-6) stay distinguishable,
  nothing is random, and the interval and the p-value always agree (the interval
  excludes 0 exactly when p < 1 - level).

Limit: with few discordant videos (a handful of flips) the normal approximation is
optimistic, as any asymptotic test; `discordant_clusters` is reported so a reader sees it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from evalcore.stats.intervals import LEVEL, cluster_totals, clustered_se


@dataclass(frozen=True)
class PairedDifference:
    """mean(b) - mean(a) over the same samples, with its interval and p-value."""

    difference: float
    low: float
    high: float
    se: float
    p_value: float
    n: int  # samples both sides answered
    clusters: int  # videos
    discordant: int  # samples whose values differ
    discordant_clusters: int  # videos with at least one such sample
    level: float = LEVEL

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at 1 - level (5%)."""
        return self.p_value < 1.0 - self.level


def paired_difference(
    a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable], level: float = LEVEL
) -> PairedDifference:
    """Compare `b` against `a`, sample i of each being the same question about video
    `clusters[i]`."""
    import numpy as np  # here: importing evalcore.stats costs nothing

    if not len(a) == len(b) == len(clusters):
        raise ValueError(f"{len(a)}, {len(b)} values and {len(clusters)} cluster labels")
    n = len(a)
    if n == 0:
        return PairedDifference(0.0, 0.0, 0.0, 0.0, 1.0, 0, 0, 0, 0, level)
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    mean = float(d.mean())
    se = clustered_se(d, clusters)
    changed = np.abs(d) > 1e-12
    sums, _ = cluster_totals(changed.astype(np.float64), clusters)
    if se > 0:
        p = math.erfc(abs(mean / se) / math.sqrt(2.0))  # two-sided normal tail
    else:  # no variation of the difference: none at all, or the same change everywhere
        p = 1.0 if abs(mean) < 1e-12 else 0.0
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return PairedDifference(
        difference=mean,
        low=mean - z * se,
        high=mean + z * se,
        se=se,
        p_value=p,
        n=n,
        clusters=len(sums),
        discordant=int(changed.sum()),
        discordant_clusters=int((sums > 0).sum()),
        level=level,
    )
