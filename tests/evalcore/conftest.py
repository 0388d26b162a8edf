"""Fixtures shared by the API and judge tests: a loopback OpenAI-compatible server, a small
in-process Dask cluster, and the small synthetic benchmark with its frames extracted once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from evalcore.api import close_dask_clients
from tests.doubles.openai_server import Behaviour, OpenAIServer


@pytest.fixture
def server():
    with OpenAIServer(Behaviour()) as srv:
        yield srv


@pytest.fixture(scope="session")
def dask_cluster():
    """Two in-process workers (threads), so the cluster-wide bound spans workers."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=2, processes=False, dashboard_address=None
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
    close_dask_clients()


@dataclass(frozen=True)
class BenchFrames:
    """The small benchmark with frames extracted into a shared work dir (read-only)."""

    dataset: object  # DatasetSpec
    frames: object  # FrameSettings
    work_dir: Path


@pytest.fixture(scope="session")
def bench_frames(small_bench, tmp_path_factory) -> BenchFrames:
    from evalcore.cell import extract_dataset_frames as prepare_frames
    from evalcore.config import DatasetSpec
    from evalcore.frames import FrameSettings
    from evalcore.workspace import Workspace

    work = tmp_path_factory.mktemp("api-work")
    dataset = DatasetSpec(tsv=small_bench)
    frames = FrameSettings()
    prepare_frames(dataset, frames, Workspace(work, work / "out"))
    return BenchFrames(dataset, frames, work)
