"""The `eval` flow with `launcher: torchrun`: shards as Prefect tasks, each a torchrun job."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from doubles.frames import HeldClip

from evalcore.benchmarks import load_samples
from evalcore.cell import extract_dataset_frames, find_cell
from evalcore.config import DatasetSpec, EvalConfig, InferenceSettings, ModelSpec
from evalcore.frames import VideoJob
from evalcore.inference import infer_inline
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.inference.torchrun.shard import shard_paths
from evalcore.predictions import iter_records, read_records
from evalcore.workspace import Workspace
from flows.eval import eval_flow
from tests.doubles.records import cell_records
from tests.doubles.scripted_model import FAKE_KIND, read_calls

PACKING = "tests.doubles.models:PackingModel"  # ranks import it by this name

pytestmark = pytest.mark.usefixtures("subprocess_imports_tests")  # ranks import tests.doubles


def config_for(tsv: Path, tmp: Path, model: ModelSpec, inference: InferenceSettings) -> EvalConfig:
    return EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[model],
        inference=inference,
        output_dir=tmp / "outputs",
        work_dir=tmp / "work",
    )


def fake(tmp: Path, batch_size: int = 2, **params) -> ModelSpec:
    params = {"calls_file": str(tmp / "calls.jsonl"), **params}
    return ModelSpec(name="fake", kind=FAKE_KIND, params=params, batch_size=batch_size)


def torchrun(**kw) -> InferenceSettings:
    return InferenceSettings(launcher="torchrun", watchdog_s=60, grace_s=2, **kw)


def log_dir(config: EvalConfig):
    return find_cell(config).log_dir(Workspace(config.work_dir, config.output_dir))


def predictions(config: EvalConfig) -> dict[str, str | None]:
    records = cell_records(find_cell(config), Workspace(config.work_dir, config.output_dir))
    return {i: r.prediction for i, r in records.items()}


def plan_cell_shards(dataset: DatasetSpec, inference: InferenceSettings):
    groups = device_groups([], inference.ranks_per_shard, 1, inference.cpu_groups)
    return plan_shards(dataset_videos(dataset), groups, inference.shards)


def ok_counts(config: EvalConfig) -> Counter:
    logs = log_dir(config).glob("*.jsonl")
    return Counter(r.sample_id for p in logs for r in iter_records(p) if r.ok)


def launches(config: EvalConfig, shard: str) -> list[Path]:
    ws = Workspace(config.work_dir, config.output_dir)
    root = shard_paths(find_cell(config), ws).root
    return sorted(root.glob(f"{shard}-of-*/launch-*"))


def rank_status(launch: Path, rank: int) -> dict:
    return json.loads((launch / f"rank{rank}.json").read_text())


def test_two_shards_of_two_ranks_equal_the_inline_path(prefect_harness, small_bench, tmp_path):
    inline = config_for(small_bench, tmp_path / "inline", fake(tmp_path), InferenceSettings())
    sharded_config = config_for(
        small_bench,
        tmp_path / "sharded",
        fake(tmp_path),
        torchrun(shards=2, ranks_per_shard=2, cpu_groups=1),
    )
    # The single-process path, as the inline launcher runs it (without Prefect).
    ws = Workspace(inline.work_dir, inline.output_dir)
    extract_dataset_frames(inline.datasets[0], inline.frames, ws)
    infer_inline(find_cell(inline), ws)
    sharded = eval_flow(sharded_config)

    assert predictions(sharded_config) == predictions(inline)
    assert len(predictions(inline)) == 48
    assert set(ok_counts(sharded_config).values()) == {1}  # no duplicates
    (row,) = sharded["leaderboard"]
    assert (row["n"], row["failed"]) == (48, 0)
    plan = plan_cell_shards(sharded_config.datasets[0], sharded_config.inference)
    assert sorted((s["shard"], s["ids"], s["answered"]) for s in sharded["inference"]) == [
        (s.index, len(s.ids), len(s.ids)) for s in plan
    ]
    logs = sorted(p.name for p in log_dir(sharded_config).glob("*.jsonl"))
    assert logs == [f"shard{s}-rank{r}.jsonl" for s in (0, 1) for r in (0, 1)]
    # Shards and ranks by video: one writer answered all the questions about a video.
    writer = {
        r.sample_id: p.stem
        for p in log_dir(sharded_config).glob("*.jsonl")
        for r in iter_records(p)
    }
    writers_of_video: dict[str, set[str]] = {}
    for sample in load_samples(sharded_config.datasets[0]):
        writers_of_video.setdefault(sample.video, set()).add(writer[sample.sample_id])
    assert all(len(w) == 1 for w in writers_of_video.values()) and len(writers_of_video) == 12
    # One CPU device group: the second shard started after the first one's ranks ended.
    (first,), (second,) = launches(sharded_config, "shard0"), launches(sharded_config, "shard1")
    ends = {k: max(rank_status(k, r)["time"] for r in (0, 1)) for k in (first, second)}
    earlier, later = sorted((first, second), key=ends.get)
    assert (later / "job.json").stat().st_mtime >= ends[earlier]


def test_killed_rank_fails_its_shard_fast_and_the_retry_resumes_from_the_log(
    prefect_harness, small_bench, tmp_path, caplog
):
    budget = tmp_path / "kill-once"
    budget.write_text("1")
    model = fake(
        tmp_path, fault="kill", fault_after_calls=3, fault_rank=1, fault_budget_file=str(budget)
    )
    config = config_for(
        small_bench, tmp_path, model, torchrun(shards=1, ranks_per_shard=2, cpu_groups=1, retries=1)
    )
    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
        result = eval_flow(config)

    killed, retried = launches(config, "shard0")
    # The task run's failure (logged by Prefect before its retry) quotes the dead rank.
    (retry_log,) = [r.getMessage() for r in caplog.records if "Retry 1/1" in r.getMessage()]
    assert "ShardFailed" in retry_log and "rank 1" in retry_log and "SIGKILL" in retry_log
    failure = (killed / "failure.txt").read_text()
    assert "rank 1" in failure and "SIGKILL" in failure
    calls = read_calls(tmp_path / "calls.jsonl")
    kill_time = [c["t"] for c in calls if c["rank"] == 1][2]  # its third call killed it
    # failed when torchrun exited, not when the watchdog (60 s) or the deadline fired
    assert ": torchrun exited with " in failure
    assert (killed / "failure.txt").stat().st_mtime - kill_time < 60  # slack for a busy machine

    assert len(predictions(config)) == 48 and set(ok_counts(config).values()) == {1}
    assert result["leaderboard"][0]["n"] == 48 and result["leaderboard"][0]["failed"] == 0
    retry_pids = {rank_status(retried, r)["pid"] for r in (0, 1)}  # both ranks finished
    finished_before = {
        r.sample_id
        for p in log_dir(config).glob("*.jsonl")
        for r in iter_records(p)
        if r.finished_at < (killed / "failure.txt").stat().st_mtime
    }
    assert finished_before
    recomputed = {i for c in calls if c["pid"] in retry_pids for i in c["ids"]}
    assert recomputed and not recomputed & finished_before


def test_rerun_after_a_failed_shard_recomputes_only_that_shard(
    prefect_harness, small_bench, tmp_path
):
    dataset = DatasetSpec(tsv=small_bench)
    inference = torchrun(shards=2, ranks_per_shard=1, cpu_groups=2, retries=1)
    shard_ids = [set(s.ids) for s in plan_cell_shards(dataset, inference)]
    victim = sorted(shard_ids[1], key=int)[3]
    budget = tmp_path / "fail-twice"
    budget.write_text("2")
    model = fake(tmp_path, fault="raise", fault_ids=[victim], fault_budget_file=str(budget))
    config = config_for(small_bench, tmp_path, model, inference)

    state = eval_flow(config, return_state=True)
    assert state.is_failed()
    assert budget.read_text() == "0"  # shard 1 failed on both of its attempts
    first_calls = read_calls(tmp_path / "calls.jsonl")

    eval_flow(config)
    new_ids = {
        i for c in read_calls(tmp_path / "calls.jsonl")[len(first_calls) :] for i in c["ids"]
    }
    assert new_ids and new_ids <= shard_ids[1]  # shard 0 was a cache hit: no model call
    assert len(launches(config, "shard0")) == 1 and len(launches(config, "shard1")) == 3
    assert set(predictions(config)) == {s.sample_id for s in load_samples(dataset)}
    assert set(ok_counts(config).values()) == {1}


def test_shards_answer_while_a_video_is_decoded_and_pack_each_video_whole(
    prefect_harness, small_bench, tmp_path
):
    """Two shards side by side, pack mode, one video slow (its decode lock held) for
    longer than the watchdog lets a silent rank live: the other videos' questions are
    answered meanwhile, all the questions about a video in one request, and the rank
    waiting for frames is not taken for a stuck one."""
    calls = tmp_path / "calls.txt"
    model = ModelSpec(name="packer", kind=PACKING, params={"calls_file": str(calls)})
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=small_bench, pack=True)],
        models=[model],
        inference=torchrun(shards=2, ranks_per_shard=1, cpu_groups=2).model_copy(
            update={"watchdog_s": 4.0}
        ),
        output_dir=tmp_path / "outputs",
        work_dir=tmp_path / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    samples = load_samples(config.datasets[0])
    slow_video = samples[0].video_path
    slow = {s.sample_id for s in samples if s.video_path == slow_video}
    held = HeldClip(ws.frame_cache_dir, VideoJob(slow_video), config.frames).release_after(180)

    log = find_cell(config).log_dir(ws)

    def release_when_the_others_are_answered() -> None:
        while len({r.sample_id for r in read_records(log)}) < len(samples) - len(slow):
            time.sleep(0.1)
        time.sleep(6)  # > watchdog_s: the rank of the slow video waits, silent but alive
        held.release()

    threading.Thread(target=release_when_the_others_are_answered, daemon=True).start()
    outcome = eval_flow(config)

    records = cell_records(find_cell(config), ws)
    assert len(records) == 48 and [r for r in records.values() if not r.ok] == []
    assert max(r.finished_at for i, r in records.items() if i not in slow) < held.released_at
    assert min(records[i].finished_at for i in slow) > held.released_at
    requests = sorted(sorted(line.split(), key=int) for line in calls.read_text().splitlines())
    by_video: dict[str, list[str]] = {}
    for s in samples:
        by_video.setdefault(s.video, []).append(s.sample_id)
    assert requests == sorted(by_video.values())  # one request per video, all its questions
    assert [len(launches(config, f"shard{k}")) for k in (0, 1)] == [1, 1]  # no retry
    assert outcome["leaderboard"][0]["failed"] == 0
