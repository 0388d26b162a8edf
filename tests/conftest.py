"""Shared fixtures: a Prefect test harness per session and a small synthetic benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # test doubles are imported as `tests.…`
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture
def subprocess_imports_tests(monkeypatch):
    """Child processes (torchrun ranks, CLI runs) can import test doubles as `tests.…`."""
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO_ROOT), path) if p))


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
