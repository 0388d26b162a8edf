"""The shard plan, the rank assignment, crash counting and the frame prefetcher (no torchrun)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from evalcore.config import InferenceSettings
from evalcore.frames import FrameFailure
from evalcore.inference.attempts import StartLog, crash_counts
from evalcore.inference.launcher import RankWatch, torchrun_command
from evalcore.inference.prefetch import FramePrefetcher
from evalcore.inference.shard_job import RankStatus
from evalcore.inference.shards import DeviceGroup, device_groups, ids_for_rank, plan_shards, rank_of
from evalcore.predictions import PredictionLog, PredictionRecord, failed

IDS = [str(i) for i in range(10)]


def test_plan_covers_every_id_once_in_balanced_contiguous_shards():
    groups = device_groups([], ranks_per_shard=1, cpu_groups=2)
    plan = plan_shards(IDS, groups, shards=3)
    assert [s.ids for s in plan] == [tuple("0123"), tuple("456"), tuple("789")]
    assert [s.group.index for s in plan] == [0, 1, 0]  # shard k on group k mod G
    assert plan_shards(IDS, groups, shards=3) == plan  # a function of the manifest only
    assert len({s.digest for s in plan}) == 3


def test_default_is_one_shard_per_device_group_and_no_empty_shards():
    groups = device_groups([0, 1, 2, 3, 4, 5, 6, 7], ranks_per_shard=2)
    assert [g.gpus for g in groups] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert len(plan_shards(IDS, groups)) == 4
    assert [len(s.ids) for s in plan_shards(IDS[:2], groups, shards=5)] == [1, 1]


def test_gpu_groups_must_divide_the_gpus():
    assert [g.gpus for g in device_groups([0, 1, 2, 3], 1, gpus_per_rank=2)] == [(0, 1), (2, 3)]
    with pytest.raises(ValueError, match="do not split"):
        device_groups([0, 1, 2], ranks_per_shard=2)
    with pytest.raises(ValueError, match="gpus"):
        InferenceSettings(gpus=[0, 1, 2], ranks_per_shard=2)


def test_ranks_partition_ids_by_a_hash_stable_across_processes():
    ids = [f"sample-{i}" for i in range(200)]
    shares = [ids_for_rank(ids, r, 3) for r in range(3)]
    assert sorted(sum(shares, [])) == sorted(ids)
    assert all(40 < len(s) < 90 for s in shares)
    code = "from evalcore.inference.shards import rank_of; print(rank_of('sample-7', 3))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == rank_of("sample-7", 3)  # not Python's per-process salted hash


def test_torchrun_pins_one_gpu_per_rank_only_on_gpu_groups(tmp_path):
    cpu = torchrun_command(tmp_path / "job.json", tmp_path, 2, DeviceGroup(0))
    gpu = torchrun_command(tmp_path / "job.json", tmp_path, 2, DeviceGroup(0, (2, 3)))
    assert "--virtual-local-rank" not in cpu and "--virtual-local-rank" in gpu
    assert "--max-restarts" not in " ".join(gpu)  # retries are fresh launches
    assert DeviceGroup(0, (2, 3)).cuda_visible_devices == "2,3"
    assert DeviceGroup(0).cuda_visible_devices == ""


def test_crash_count_is_starts_without_a_record_or_an_interrupt(tmp_path):
    started, logs = tmp_path / "started", tmp_path / "logs"
    first = StartLog(started / "shard0-rank0.txt")
    first.started(["a", "b", "c"])
    first.started(["a"])  # the runner retrying a batch one by one: not a new attempt
    first.close()  # died with a, b, c in flight
    second = StartLog(started / "shard1-rank0.txt")  # another shard count, later
    second.started(["a", "b"])
    second.finished("b")
    second.interrupted()  # SIGTERM with a in flight: not a's fault
    second.close()
    with PredictionLog(logs, "shard1-rank0") as log:
        log.append(PredictionRecord("x", "ok", prediction="A", answer_key="b"))
    with PredictionLog(logs, "main") as log:  # inline writers have no marks
        log.append(failed("y", "X", "y", answer_key="c"))
    assert crash_counts(started, logs) == {"a": 1, "b": 1, "c": 1}


class CountingEntry:
    def __init__(self, key, loads: Counter):
        self.key, self.loads = key, loads
        self.paths, self.timestamps = (Path(f"{key}.jpg"),), (0.0,)

    def load(self):
        self.loads[self.key] += 1
        return f"frames of {self.key}"


def test_prefetcher_reads_ahead_in_order_and_each_clip_once():
    loads: Counter = Counter()
    shared = CountingEntry("v1", loads)
    lookup = {
        "q1": shared,
        "q2": CountingEntry("v1", loads),  # same clip, another question
        "q3": CountingEntry("v2", loads),
        "q4": CountingEntry("v3", loads),
        "bad": FrameFailure("DecodeError", "x"),
    }
    with FramePrefetcher(lookup, ["q1", "q2", "q3", "q4", "bad"], depth=1) as prefetcher:
        frames = prefetcher.lookup
        assert frames["bad"] is lookup["bad"]
        assert not loads  # nothing read before the model asks
        assert frames["q1"].load() == "frames of v1"
        assert frames["q1"].paths == (Path("v1.jpg"),)
        assert frames["q2"].load() == "frames of v1"
        assert frames["q3"].load() == "frames of v2"
        assert frames["q4"].load() == "frames of v3"
        assert loads == {"v1": 1, "v2": 1, "v3": 1}


def test_watchdog_gives_start_up_its_own_allowance_then_watches_each_rank(tmp_path):
    log = tmp_path / "shard0-rank0.jsonl"
    watch = RankWatch(tmp_path, 1, {0: [log]}, watchdog_s=0.2, startup_s=0.6)
    time.sleep(0.3)
    assert watch.stuck() == []  # still importing torch: within start-up allowance
    status = RankStatus(tmp_path, 0)
    status.set("started")
    assert watch.stuck() == []
    time.sleep(0.3)
    assert watch.stuck() == [0] and "made no progress for 0.2 s (phase started)" in watch.describe(
        [0]
    )
    log.write_text("a record\n")  # a new record is progress
    assert watch.stuck() == []
    status.set("done")
    time.sleep(0.3)
    assert watch.stuck() == []  # a finished rank is not watched
