"""Statistics of a cell's numbers: intervals clustered by video, paired comparisons.

Pure numpy functions over per-sample values and their videos; see each module's
docstring for the method and why it was chosen.
"""

from evalcore.stats.intervals import (
    LEVEL,
    RESAMPLES,
    SEED,
    Interval,
    cluster_bootstrap,
    clustered_se,
    normal_interval,
)
from evalcore.stats.paired import PairedDifference, paired_difference

__all__ = [
    "LEVEL",
    "RESAMPLES",
    "SEED",
    "Interval",
    "PairedDifference",
    "cluster_bootstrap",
    "clustered_se",
    "normal_interval",
    "paired_difference",
]
