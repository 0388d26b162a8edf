"""The shard plan, the rank assignment, crash counting and the frame prefetcher (no torchrun)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from doubles.clocks import FakeClock

from evalcore.benchmarks import load_samples
from evalcore.config import DatasetSpec, InferenceSettings
from evalcore.frames import FrameFailure
from evalcore.inference.prefetch import FramePrefetcher
from evalcore.inference.torchrun.attempts import StartLog, crash_counts
from evalcore.inference.torchrun.job import RankStatus
from evalcore.inference.torchrun.launch import RankWatch, torchrun_command
from evalcore.inference.torchrun.plan import (
    DeviceGroup,
    bucket,
    dataset_videos,
    device_groups,
    plan_shards,
    rank_of,
    video_key,
)
from evalcore.predictions import Journal, PredictionRecord, failed


def questions(videos: int, per_video: int = 4, first: int = 0) -> dict[str, str]:
    """Sample id -> video key: `per_video` questions about each of `videos` videos."""
    return {
        str(v * per_video + q): f"videos/v{v}.mp4"
        for v in range(first, first + videos)
        for q in range(per_video)
    }


def test_plan_puts_every_question_about_a_video_in_one_shard():
    videos = questions(videos=40)
    groups = device_groups([], ranks_per_shard=1, cpu_groups=2)
    plan = plan_shards(videos, groups, shards=3)
    assert sorted(i for s in plan for i in s.ids) == sorted(videos)
    assert [s.index for s in plan] == [0, 1, 2] and all(s.count == 3 for s in plan)
    assert [s.group.index for s in plan] == [0, 1, 0]  # shard k on group k mod G
    shard_of = {i: s.index for s in plan for i in s.ids}
    for v in range(40):  # the 4 questions about each video: one shard
        assert len({shard_of[str(4 * v + q)] for q in range(4)}) == 1
    assert all(list(s.ids) == sorted(s.ids, key=int) for s in plan)  # manifest order
    assert all(30 < len(s.ids) < 80 for s in plan)  # a hash: balanced on average
    assert plan_shards(videos, groups, shards=3) == plan  # a function of the manifest only
    assert len({s.digest for s in plan}) == 3

    # Rows about new videos appended: no question moves to another shard.
    grown = plan_shards({**videos, **questions(videos=10, first=40)}, groups, shards=3)
    assert all(shard_of[i] == s.index for s in grown for i in s.ids if i in shard_of)


def test_a_video_is_named_relative_to_the_dataset_root(small_bench, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(small_bench.parent, moved)
    here, there = DatasetSpec(tsv=small_bench), DatasetSpec(tsv=moved / small_bench.name)
    assert dataset_videos(here) == dataset_videos(there)  # the same plan wherever it lives
    assert len(set(dataset_videos(here).values())) == 12
    (sample,) = load_samples(DatasetSpec(tsv=small_bench, limit=1))
    escaped = replace(sample, video_path=None, path_error="escapes")
    assert video_key(escaped, small_bench.parent) == f"video:{sample.video}"


def test_shards_and_ranks_hash_videos_stably_and_independently():
    videos = questions(videos=40)
    for shard in plan_shards(videos, device_groups([], 1, cpu_groups=2), shards=2):
        ranks = {i: rank_of(videos[i], 2) for i in shard.ids}
        assert set(ranks.values()) == {0, 1}  # each shard's videos spread over both ranks
        for i in shard.ids:  # and each video's questions on one rank
            assert {ranks[j] for j in shard.ids if videos[j] == videos[i]} == {ranks[i]}
    code = "from evalcore.inference.torchrun.plan import bucket; print(bucket('v7', 3, 'shard'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == bucket("v7", 3, "shard")  # not Python's per-process salted hash


def test_default_is_one_shard_per_device_group_and_no_empty_shards():
    groups = device_groups([0, 1, 2, 3, 4, 5, 6, 7], ranks_per_shard=2)
    assert [g.gpus for g in groups] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert len(plan_shards(questions(videos=40), groups)) == 4
    two_videos = plan_shards(questions(videos=2), groups, shards=5)  # at most one per video
    assert sum(len(s.ids) for s in two_videos) == 8 and all(s.ids for s in two_videos)
    assert {s.count for s in two_videos} == {2}


def test_gpu_groups_must_divide_the_gpus():
    assert [g.gpus for g in device_groups([0, 1, 2, 3], 1, gpus_per_rank=2)] == [(0, 1), (2, 3)]
    with pytest.raises(ValueError, match="do not split"):
        device_groups([0, 1, 2], ranks_per_shard=2)
    with pytest.raises(ValueError, match="gpus"):
        InferenceSettings(gpus=[0, 1, 2], ranks_per_shard=2)


def test_torchrun_pins_one_gpu_per_rank_only_on_gpu_groups(tmp_path):
    cpu = torchrun_command(tmp_path / "job.json", tmp_path, 2, DeviceGroup(0))
    gpu = torchrun_command(tmp_path / "job.json", tmp_path, 2, DeviceGroup(0, (2, 3)))
    assert "--virtual-local-rank" not in cpu and "--virtual-local-rank" in gpu
    assert "--max-restarts" not in " ".join(gpu)  # retries are fresh launches
    # the rendezvous on loopback, a port per job: never the hostname (test_shard_on_a_host)
    assert "--standalone" not in cpu and "--rdzv-endpoint=127.0.0.1:0" in cpu
    assert "--local-addr=127.0.0.1" in gpu
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
    with Journal(logs, "shard1-rank0") as log:
        log.append(PredictionRecord("x", "ok", prediction="A", answer_key="b"))
    with Journal(logs, "main") as log:  # inline writers have no marks
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
    clock = FakeClock()
    watch = RankWatch(tmp_path, 2, {0: [log]}, watchdog_s=2.0, startup_s=6.0, clock=clock)
    clock.now = 5.0
    assert watch.stuck() == []  # still importing torch: within start-up allowance
    status = RankStatus(tmp_path, 0)
    status.set("started")
    assert watch.stuck() == []  # rank 0 started at 5.0; rank 1 has until 6.0
    clock.now = 6.0
    assert watch.stuck() == []  # the allowances run out only past their end
    clock.now = 6.5
    assert watch.stuck() == [1] and "rank 1 did not start within 6 s" in watch.describe([1])
    clock.now = 7.5
    assert watch.stuck() == [0, 1] and "made no progress for 2 s (phase started)" in (
        watch.describe([0])
    )
    log.write_text("a record\n")  # a new record is progress
    assert watch.stuck() == [1]
    clock.now = 9.5
    assert watch.stuck() == [1]  # 2 s since the record: not past
    status.set("done")
    clock.now = 100.0
    assert watch.stuck() == [1]  # a finished rank is not watched
