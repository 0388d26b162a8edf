"""Generate the synthetic benchmark (idempotent: an existing one with equal settings is kept)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from evalcore.dataset.synthetic import generate_benchmark


@task(name="generate-synthetic", cache_policy=NO_CACHE)
def generate_synthetic(out_dir: Path, n_videos: int, seed: int) -> Path:
    return generate_benchmark(out_dir, n_videos=n_videos, seed=seed)
