"""Shared fixtures: a Prefect test harness per session and a small synthetic benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_harness():
    """A real (temporary, SQLite) Prefect API for the session; ~10 s, paid once."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory) -> Path:
    """12 real H.264 videos, 48 questions; returns the TSV path. Shared read-only."""
    from evalcore.dataset.synthetic import generate_benchmark

    out = tmp_path_factory.mktemp("synthetic")
    return generate_benchmark(out, n_videos=12, seed=7, name="Tiny", min_seconds=2, max_seconds=5)
