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

# `make test` runs the suite on two xdist workers with `--dist loadgroup`: the end-to-end
# tests (marked `slow`: real Prefect servers, torchrun, simulated hosts) are one group, run
# one after another on one worker, so that no two of them load the machine at once; every
# other module is a group of its own, so that its session fixtures are built on one worker.
END_TO_END_GROUP = "end-to-end"


def xdist_group_of(item: pytest.Item) -> str:
    """A test's own `xdist_group` mark, else the end-to-end group or its module."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    return END_TO_END_GROUP if item.get_closest_marker("slow") else item.nodeid.split("::")[0]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """On an xdist worker under `--dist loadgroup`: each test's group as the `@group`
    suffix of its node id, which is all the scheduler sees. pytest-xdist 3.8 writes the
    suffix to `item._nodeid`, which pytest 9.2 no longer reads (its node ids live in
    `item._id`): every test would be a group of its own, as with `--dist load`."""
    if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
        return
    for item in items:
        if "@" not in item.nodeid:  # (set by xdist where it can: a test's own group)
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(f"{item.nodeid}@{xdist_group_of(item)}")
        if "@" not in item.nodeid:
            raise pytest.UsageError(f"no xdist group in the node id of {item.nodeid}")


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
