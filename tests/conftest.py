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

# `make test` runs the suite on two xdist workers with `--dist loadgroup`
# `--no-loadscope-reorder`: each module is a group (its session fixtures are built on one
# worker), handed out in the order of the collection, which the workers change to: the
# end-to-end modules (`slow`: real Prefect servers, torchrun, simulated hosts) first, the
# longest work first, then the other modules, then the `alone` tests, one group, last
# (each of them waits for the other worker's test; at the end, that is a short one).
ALONE_GROUP = "alone"


def xdist_group_of(item: pytest.Item) -> str:
    """A test's own `xdist_group` mark, else the `alone` group or its module."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    if item.get_closest_marker("alone"):
        return ALONE_GROUP
    return item.nodeid.split("::")[0]


def _run_order(item: pytest.Item) -> int:
    if item.get_closest_marker("alone"):
        return 2
    return 0 if item.get_closest_marker("slow") else 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """On an xdist worker under `--dist loadgroup`: the order above, and each test's
    group as the `@group` suffix of its node id, which is all the scheduler sees.
    pytest-xdist 3.8 writes the suffix to `item._nodeid`, which pytest 9.2 no longer
    reads (its node ids live in `item._id`): every test would be a group of its own, as
    with `--dist load`."""
    if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
        return
    items.sort(key=_run_order)  # stable: a module's tests keep their order
    for item in items:
        if "@" not in item.nodeid:  # (set by xdist where it can: a test's own group)
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(f"{item.nodeid}@{xdist_group_of(item)}")
        if "@" not in item.nodeid:
            raise pytest.UsageError(f"no xdist group in the node id of {item.nodeid}")


@pytest.fixture(autouse=True)
def _alone_or_shared(request, tmp_path_factory):
    """An `alone` test (it measures what a loaded machine changes: rates, delays,
    durability at a kill) runs while no other test of the session runs: under xdist it
    holds the session's lock exclusively, every other test holds it shared. Waiting
    writers go first (a turnstile): a worker that runs test after test cannot keep an
    `alone` test waiting."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    import fcntl

    root = tmp_path_factory.getbasetemp().parent  # shared by the session's workers
    alone = request.node.get_closest_marker("alone") is not None
    with open(root / "turnstile.lock", "a") as turnstile, open(root / "tests.lock", "a") as tests:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(tests, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield


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
