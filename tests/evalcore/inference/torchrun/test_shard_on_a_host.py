"""A torchrun shard on a host whose hostname does not resolve (a cluster node without
DNS): the rendezvous and the ranks' process group stay on loopback, so it answers."""

from __future__ import annotations

import json
import sys

import pytest

from evalcore.cell import Cell, extract_dataset_frames
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.workspace import Workspace
from tests.doubles.hosts import simulated_cluster
from tests.doubles.records import cell_records
from tests.doubles.scripted_model import FAKE_KIND, read_calls

# Runs inside the host: one shard of the cell, as the flow's shard task would run it.
SHARD = """
import json, sys
from pathlib import Path
from evalcore.cell import Cell
from evalcore.config import DatasetSpec, InferenceSettings, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.inference.torchrun.shard import infer_shard
from evalcore.workspace import Workspace

spec = json.loads(sys.argv[1])
dataset = DatasetSpec(tsv=spec["tsv"])
model = ModelSpec.model_validate(spec["model"])
settings = InferenceSettings.model_validate(spec["settings"])
cell = Cell(model=model, dataset=dataset, trial=0, seed=0, frames=FrameSettings())
groups = device_groups([], settings.ranks_per_shard, 1, settings.cpu_groups)
(shard,) = plan_shards(dataset_videos(dataset), groups, settings.shards)
ws = Workspace(Path(spec["work"]), Path(spec["out"]))
print(json.dumps(infer_shard(cell, shard, settings, ws).as_dict()))
"""


@pytest.fixture
def cluster(tmp_path):
    with simulated_cluster(tmp_path / "cluster") as cluster:
        yield cluster


def test_a_shard_answers_on_a_host_whose_name_does_not_resolve(cluster, extracted, small_bench):
    host = cluster.add_host("gpu0")
    lookup = "import socket; socket.getaddrinfo(socket.gethostname(), None)"
    assert "gaierror" in host.python(lookup).stderr  # like a node without DNS

    work = cluster.shared / "work"  # the work dir on the shared mount, frames extracted
    work.mkdir()
    for name in ("frames", "frame-index"):
        (work / name).symlink_to(extracted / name, target_is_directory=True)
    ws = Workspace(work, cluster.shared / "out")
    dataset = DatasetSpec(tsv=small_bench)
    extract_dataset_frames(dataset, FrameSettings(), ws)  # all cache hits
    calls = cluster.shared / "calls.jsonl"
    model = ModelSpec(name="fake", kind=FAKE_KIND, params={"calls_file": str(calls)})
    # two ranks in a gloo process group; a rank that cannot reach the rendezvous fails
    # the launch within startup_s ("did not start within 30 s") instead of answering
    settings = InferenceSettings(
        launcher="torchrun",
        shards=1,
        ranks_per_shard=2,
        cpu_groups=1,
        process_group=True,
        startup_s=30,
        watchdog_s=60,
        grace_s=2,
    )
    spec = {
        "tsv": str(small_bench),
        "model": model.model_dump(mode="json"),
        "settings": settings.model_dump(mode="json"),
        "work": str(work),
        "out": str(ws.output_dir),
    }
    done = host.run([sys.executable, "-c", SHARD, json.dumps(spec)], timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["answered"] == 48 and summary["failed"] == 0

    cell = Cell(model=model, dataset=dataset, trial=0, seed=0, frames=FrameSettings())
    records = cell_records(cell, ws)
    assert len(records) == 48 and all(r.ok for r in records.values())
    assert {c["rank"] for c in read_calls(calls)} == {0, 1}  # both ranks answered
    assert host.processes() == [host.pid]  # torchrun, its ranks and the preload server gone
