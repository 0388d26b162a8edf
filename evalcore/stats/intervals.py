"""Confidence intervals for a mean of per-sample values, clustered by video.

Video QA asks several questions about one clip, and a model that misreads a clip tends
to miss all of its questions: the questions of a video are not independent draws, so an
interval that treats them as such is too narrow. The resampling unit here is the video.

Method: a **cluster bootstrap** with percentile intervals. Each resample draws as many
videos as there are, with replacement, and takes the ratio of the drawn videos' summed
values to their summed question counts (the same statistic as the accuracy itself, with
videos of unequal question counts weighted by their questions). Why a bootstrap and not a
clustered (sandwich) standard error:

- accuracy is bounded: near 0 or 1, and in breakdowns with a handful of videos, the
  normal interval `mean ± 1.96 SE` leaves [0, 1] and is symmetric where the uncertainty is
  not; percentiles of resampled accuracies stay inside and follow the skew;
- it needs no distributional assumption and works unchanged for a judged benchmark's
  scores (any per-sample value whose mean is the headline);
- it is cheap: a resample is a weighted sum over per-video totals, so 2,000 resamples of
  a 1,000-question cell take milliseconds (`bench/stats.py`).

It is seeded (`seed`, default 0): the same values give the same interval on every
machine. Known limits: with very few videos (say under 10) any cluster method
understates the spread, and a cell where every answer is right (or wrong) gets a
zero-width interval, which says "no variation observed", not "no uncertainty".
`clustered_se` (the analytic cluster-robust standard error) is kept for comparison and
for the paired test (`evalcore.stats.paired`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0
_CHUNK = 2_000_000  # resample x video draws per block: bounds memory on large cells


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval. `low`/`high` are None when there is nothing
    to resample (no samples, or a single video)."""

    mean: float
    low: float | None
    high: float | None
    n: int  # samples
    clusters: int  # videos
    level: float = LEVEL

    @property
    def half_width(self) -> float | None:
        """Half the interval's width: what `0.634 ± 0.021` shows."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


def cluster_totals(
    values: Sequence[float], clusters: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray]:
    """(sum of values, number of samples) per cluster, clusters in first-seen order."""
    import numpy as np  # here: importing evalcore.stats costs nothing

    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in clusters), dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    return np.bincount(codes, weights=v, minlength=len(index)), np.bincount(
        codes, minlength=len(index)
    ).astype(np.float64)


def cluster_bootstrap(
    values: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """The mean of `values` with a percentile cluster-bootstrap interval; `clusters[i]`
    names the video of sample i (samples of one video are resampled together)."""
    import numpy as np  # here: importing evalcore.stats costs nothing

    n = len(values)
    if n == 0:
        return Interval(0.0, None, None, 0, 0, level)
    sums, sizes = cluster_totals(values, clusters)
    mean = float(sums.sum() / sizes.sum())
    k = len(sums)
    if k < 2:
        return Interval(mean, None, None, n, k, level)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, _CHUNK // k)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        drawn = rng.integers(0, k, size=(rows, k))  # k videos with replacement, per row
        means[start : start + rows] = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    # a constant statistic must give exactly zero width, not rounding noise around it
    low, high = min(float(low), mean), max(float(high), mean)
    return Interval(mean, low, high, n, k, level)


def clustered_se(values: Sequence[float], clusters: Sequence[Hashable]) -> float:
    """The cluster-robust (CR1) standard error of the mean of `values`:
    sqrt(G/(G-1) * sum_g (S_g - n_g * mean)^2) / N over G clusters with sums S_g and
    sizes n_g. With one sample per cluster this is the usual sample SE. 0 for G < 2."""
    sums, sizes = cluster_totals(values, clusters)
    g, total = len(sums), sizes.sum()
    if g < 2:
        return 0.0
    mean = sums.sum() / total
    resid = sums - sizes * mean
    return float(math.sqrt(g / (g - 1) * float(resid @ resid)) / total)


def normal_interval(
    values: Sequence[float], clusters: Sequence[Hashable] | None = None, level: float = LEVEL
) -> Interval:
    """`mean ± z SE` with the clustered SE (`clusters`) or, without, the naive i.i.d. SE
    (each sample its own cluster): the textbook interval, for comparison."""
    import numpy as np  # here: importing evalcore.stats costs nothing

    n = len(values)
    if n == 0:
        return Interval(0.0, None, None, 0, 0, level)
    labels = list(clusters) if clusters is not None else list(range(n))
    se = clustered_se(values, labels)
    mean = float(np.mean(values))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return Interval(mean, mean - z * se, mean + z * se, n, len(set(labels)), level)
