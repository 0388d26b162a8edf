"""Prediction log vs VLMEvalKit's checkpoint pattern, side by side in one run.

VLMEvalKit keeps a dict of results and re-pickles the whole dict to disk after every
answer (O(n^2) bytes over a run). The prediction log appends one flushed JSON line per
result and fsyncs every 32. Both write the same records to the same disk.

    .venv/bin/python bench/store.py            # 1k and 10k results
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from pathlib import Path

from evalcore.predictions import Journal, PredictionRecord, merge_records, read_records


def records(n: int) -> list[PredictionRecord]:
    return [PredictionRecord(str(i), "ok", f"B. option text {i}", seconds=0.1) for i in range(n)]


def ours(path: Path, recs: list[PredictionRecord]) -> float:
    started = time.perf_counter()
    with Journal(path.parent, path.stem) as log:
        for r in recs:
            log.append(r)
    return time.perf_counter() - started


def vlmevalkit_pattern(path: Path, recs: list[PredictionRecord]) -> float:
    """dict[index] = answer, then pickle the whole dict after every result."""
    started = time.perf_counter()
    results: dict[str, str] = {}
    for r in recs:
        results[r.sample_id] = r.prediction
        with open(path, "wb") as f:
            pickle.dump(results, f)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    print(
        f"{'results':>8} {'ours s':>8} {'ours rec/s':>11} {'pickle s':>9} {'ratio':>7} "
        f"{'ours MB':>8} {'pickle MB written':>18}"
    )
    for n in args.sizes:
        recs = records(n)
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            log = Path(tmp) / "log" / "main.jsonl"
            t_ours = ours(log, recs)
            assert len(merge_records(read_records(log.parent))) == n
            pkl = Path(tmp) / "ckpt.pkl"
            t_pickle = vlmevalkit_pattern(pkl, recs)
            # bytes the pickle pattern wrote in total: sum of every rewrite
            final = os.path.getsize(pkl)
            written = final * (n + 1) / 2 / 1e6  # grows ~linearly per rewrite
            print(
                f"{n:>8} {t_ours:>8.3f} {n / t_ours:>11.0f} {t_pickle:>9.3f} "
                f"{t_pickle / t_ours:>6.1f}x {log.stat().st_size / 1e6:>8.2f} {written:>18.1f}"
            )


if __name__ == "__main__":
    main()
