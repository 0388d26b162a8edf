"""What the cluster bootstrap costs per cell, against the naive unclustered SE.

Every cell report computes a cluster-bootstrap interval for its accuracy and one per
breakdown value (`evalcore.reports.samples.cell_intervals`). This times the overall
interval for cells of N questions (4 per video, like the synthetic benchmark) with
`evalcore.stats.cluster_bootstrap` (2,000 resamples), the analytic clustered SE, and the
naive i.i.d. SE, and prints how much wider the clustered intervals are on data whose
questions share their video's difficulty. Machine load is printed with each row.

    .venv/bin/python bench/stats.py                 # 1,000 and 10,000 questions
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from evalcore.stats import cluster_bootstrap, normal_interval


def cell(n: int, per_video: int, seed: int = 0) -> tuple[list[float], list[str]]:
    """n questions, `per_video` per video; a video is easy or hard (p 0.9 or 0.3)."""
    rng = np.random.default_rng(seed)
    videos = [f"v{i // per_video}" for i in range(n)]
    easy = rng.random(n // per_video + 1) < 0.5
    p = np.where(easy[np.arange(n) // per_video], 0.9, 0.3)
    return list((rng.random(n) < p).astype(float)), videos


def best_of(runs: int, call, *args) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call(*args)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--per-video", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5, help="best of this many")
    args = parser.parse_args()
    print(
        f"{'questions':>9} {'videos':>6} {'bootstrap ms':>12} {'clustered SE ms':>15} "
        f"{'naive SE ms':>11} {'boot ±':>7} {'clust ±':>7} {'naive ±':>7} {'load 1m':>7}"
    )
    for n in args.sizes:
        values, videos = cell(n, args.per_video)
        t_boot, boot = best_of(args.runs, cluster_bootstrap, values, videos)
        t_clust, clust = best_of(args.runs, normal_interval, values, videos)
        t_naive, naive = best_of(args.runs, normal_interval, values)
        load = os.getloadavg()[0]
        print(
            f"{n:>9} {len(set(videos)):>6} {t_boot * 1e3:>12.1f} {t_clust * 1e3:>15.2f} "
            f"{t_naive * 1e3:>11.2f} {boot.half_width:>7.3f} {clust.half_width:>7.3f} "
            f"{naive.half_width:>7.3f} {load:>7.2f}"
        )


if __name__ == "__main__":
    main()
