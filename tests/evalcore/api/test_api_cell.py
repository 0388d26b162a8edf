"""One API model x dataset x trial end to end, without Prefect: real frames from the small
synthetic benchmark, real HTTP to the loopback server, a Dask cluster, durable logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from doubles.frames import HeldClip

from evalcore.api.cache import ResponseCache
from evalcore.api.client import ChatJob, media_parts
from evalcore.api.endpoint import EndpointSpec
from evalcore.benchmarks import load_samples
from evalcore.benchmarks.generic import GenericMCQ
from evalcore.cell import Cell, extract_dataset_frames
from evalcore.config import (
    ApiSettings,
    ConfigError,
    DatasetSpec,
    ModelSpec,
    Price,
    parse_config,
)
from evalcore.frames import FrameCache, FrameSettings, VideoJob
from evalcore.frames.index import read_frame_index
from evalcore.inference.api import infer_api_cell
from evalcore.predictions import read_records
from evalcore.prompts import render_mcq_prompt
from evalcore.reports import cell_usage
from evalcore.scoring import score_samples
from evalcore.workspace import Workspace
from tests.doubles.openai_server import RANDOM_FAULTS, content_digest
from tests.doubles.records import cell_records


def cell_of(bench, model: ModelSpec) -> Cell:
    return Cell(model, bench.dataset, trial=0, seed=0, frames=bench.frames, device_class="api")


FAST = {"timeout": 0.5, "max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05}


def api_model(server, name: str, **params) -> ModelSpec:
    base = {"base_url": server.url, "model": "test-model", **FAST}
    return ModelSpec(name=name, kind="openai-compatible", params={**base, **params})


def digests(bench) -> dict[str, str]:
    """sample id -> the server's `content_digest` of its request (prompt and frames): the
    same question text recurs across videos, so the prompt alone names no sample."""
    spec = EndpointSpec(base_url="http://127.0.0.1:9/v1", model="test-model")
    ws = Workspace(bench.work_dir, bench.work_dir / "out")
    path = bench.frames.index_path(bench.dataset, ws)
    lookup = read_frame_index(path, FrameCache(ws.frame_cache_dir)).lookup
    out = {}
    for s in load_samples(bench.dataset):
        prompt = render_mcq_prompt(s.question, s.options)
        job = ChatJob(s.sample_id, prompt, "", frames=lookup[s.sample_id])
        out[s.sample_id] = content_digest(
            [*media_parts(spec, job), {"type": "text", "text": prompt}]
        )
    return out


def oracle(bench):
    """Answer every sample correctly, so a wrong score can only come from a failure."""
    correct = {digests(bench)[s.sample_id]: s.answer for s in load_samples(bench.dataset)}
    return lambda prompt, digest: correct.get(digest, "Z")


def run_cell(bench, model, tmp_path, client=None, api_key=None, **api):
    settings = {"cache_path": tmp_path / "cache.sqlite3", "progress": False, "requests_per_task": 4}
    ws = Workspace(bench.work_dir, tmp_path / "out")
    cell = cell_of(bench, model)
    summary = infer_api_cell(cell, ws, ApiSettings(**{**settings, **api}), api_key, client=client)
    return summary, cell_records(cell, ws)


def test_faults_end_as_answers_or_typed_failures_never_cached_or_scored(
    server, bench_frames, dask_cluster, tmp_path
):
    server.behaviour.answer = oracle(bench_frames)
    server.behaviour.fault_rate = 0.25
    server.behaviour.hang = 1.0
    samples = load_samples(bench_frames.dataset)
    ids = digests(bench_frames)
    doomed = {ids[samples[0].sample_id]: "400", ids[samples[1].sample_id]: "503"}
    server.behaviour.scripted = {d: [fault] for d, fault in doomed.items()}
    model = api_model(server, "faulty")

    summary, records = run_cell(bench_frames, model, tmp_path, dask_cluster)

    assert len(records) == 48 and summary.answered + summary.failed == 48
    bad = {r.sample_id: r for r in records.values() if not r.ok}
    assert {samples[0].sample_id, samples[1].sample_id} <= set(bad)
    assert bad[samples[0].sample_id].error_type == "BadRequest"
    assert bad[samples[0].sample_id].attempts == 1  # final at once
    assert bad[samples[1].sample_id].error_type == "ServerError"
    assert bad[samples[1].sample_id].attempts == 3  # out of attempts
    assert all(r.prediction is None and r.error for r in bad.values())
    assert summary.failures["BadRequest"] == 1 and sum(summary.failures.values()) == len(bad)
    assert summary.retries > 0 and "failed" in summary.describe()
    outcomes = server.outcomes()
    assert sum(outcomes[f] for f in RANDOM_FAULTS) >= 5  # the faults really happened

    with ResponseCache(tmp_path / "cache.sqlite3") as cache:
        assert cache.stats().entries == summary.answered  # failures are never cached
    scored = score_samples(samples, records, GenericMCQ())
    assert sum(s.hit for s in scored) == summary.answered  # failed: counted wrong
    assert not any(s.hit for s in scored if s.status == "failed")

    # the next run retries the failures only, with attempts accumulating
    server.reset_log()
    server.behaviour.fault_rate = 0.0
    again, records = run_cell(bench_frames, model, tmp_path, dask_cluster)
    assert again.skipped == 48 - len(bad) and again.cache_hits == 0
    assert {s.digest for s in server.seen} == {ids[sid] for sid in bad}
    assert records[samples[0].sample_id].attempts == 2
    assert records[samples[1].sample_id].attempts == 6


def test_second_run_over_the_same_data_sends_nothing(server, bench_frames, dask_cluster, tmp_path):
    server.behaviour.answer = oracle(bench_frames)
    # (a timeout in no key: the 0.5 s of FAST retries requests on a loaded machine)
    patient = {"timeout": 30}
    first, _ = run_cell(bench_frames, api_model(server, "clean", **patient), tmp_path, dask_cluster)
    assert (first.answered, first.failed, first.model_calls) == (48, 0, 48)
    assert all(seen.images == 8 for seen in server.seen)  # the cached JPEG frames

    server.reset_log()
    # a fresh prediction log (another name), same endpoint and data: all from the cache
    second, records = run_cell(bench_frames, api_model(server, "clean-rerun", **patient), tmp_path)
    assert server.seen == [] and second.model_calls == 0 and second.dask_tasks == 0
    assert second.cache_hits == 48 and all(r.ok for r in records.values())
    # any change to what determines the answer misses the cache
    changed, _ = run_cell(
        bench_frames, api_model(server, "t07", temperature=0.7), tmp_path, dask_cluster
    )
    assert changed.cache_hits == 0 and len(server.seen) == 48


def words_sent(seen) -> int:
    """The loopback server's token count: whitespace words of the request's text parts."""
    texts = []
    for message in seen.body["messages"]:
        content = message["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        texts += [p["text"] for p in parts if p["type"] == "text"]
    return sum(len(t.split()) for t in texts)


def test_records_carry_the_servers_usage_and_cache_hits_what_they_saved(
    server, bench_frames, dask_cluster, tmp_path
):
    server.behaviour.answer = lambda prompt, digest: "The answer is A"  # 4 completion tokens
    _, records = run_cell(bench_frames, api_model(server, "usage"), tmp_path, dask_cluster)
    spent = {digest: words_sent(seen) for seen in server.seen for digest in [seen.digest]}
    by_sample = {sid: spent[d] for sid, d in digests(bench_frames).items()}
    assert len(records) == 48 and all(r.ok and not r.from_cache for r in records.values())
    assert {sid: r.prompt_tokens for sid, r in records.items()} == by_sample
    assert all(r.completion_tokens == 4 for r in records.values())
    assert min(by_sample.values()) > 10  # the prompt's words, really counted

    # the same requests under another name: every answer from the cache, same tokens
    server.reset_log()
    _, again = run_cell(bench_frames, api_model(server, "usage-again"), tmp_path, dask_cluster)
    assert server.seen == [] and all(r.from_cache for r in again.values())
    assert {sid: r.prompt_tokens for sid, r in again.items()} == by_sample

    price = Price(input_per_million=3.0, output_per_million=15.0)
    first, second = cell_usage(records.values(), price), cell_usage(again.values(), price)
    total = sum(by_sample.values())
    assert (first.prompt_tokens, first.completion_tokens, first.cached_answers) == (total, 192, 0)
    assert first.cost == pytest.approx((total * 3.0 + 192 * 15.0) / 1e6) and first.saved_cost == 0
    assert (second.prompt_tokens, second.cached_prompt_tokens, second.cached_answers) == (
        0,
        total,
        48,
    )
    assert second.cost == 0 and second.saved_cost == pytest.approx(first.cost)


def test_scheduler_address_uses_a_scheduler_started_here(server, bench_frames, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        model = api_model(server, "external")
        summary, _ = run_cell(bench_frames, model, tmp_path, scheduler_address=address)
        # a batch holds twice its slot's share of max_in_flight (32 / 2 slots): 32, then 16
        assert summary.answered == 48 and summary.dask_tasks == 2
        assert "api-batch" in cluster.scheduler.task_prefixes  # the batches ran there


KILL_SCRIPT = """
import json, sys
from pathlib import Path
from evalcore.inference.api import infer_api_cell
from evalcore.cell import Cell
from evalcore.config import ApiSettings, DatasetSpec, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.workspace import Workspace
a = json.loads(sys.argv[1])
if __name__ == "__main__":
    cell = Cell(
        ModelSpec.model_validate(a["model"]), DatasetSpec(tsv=Path(a["tsv"])), 0, 0,
        FrameSettings.model_validate(a["frames"]), device_class="api",
    )
    infer_api_cell(
        cell, Workspace(Path(a["work"]), Path(a["out"])), ApiSettings.model_validate(a["api"]),
        None,
    )
"""


def test_killed_mid_run_then_resumed_resends_no_answered_sample(server, bench_frames, tmp_path):
    server.behaviour.answer = oracle(bench_frames)
    server.behaviour.latency = 0.25
    model = api_model(server, "killed", max_in_flight=2)
    api = ApiSettings(
        cache_path=tmp_path / "cache.sqlite3", progress=False, requests_per_task=2, processes=False
    )
    ws = Workspace(bench_frames.work_dir, tmp_path / "out")
    cell = cell_of(bench_frames, model)
    args = {
        "model": model.model_dump(mode="json"),
        "tsv": str(bench_frames.dataset.tsv),
        "frames": bench_frames.frames.model_dump(mode="json"),
        "work": str(bench_frames.work_dir),
        "out": str(tmp_path / "out"),
        "api": api.model_dump(mode="json"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(args)],
        start_new_session=True,
        stderr=open(tmp_path / "run.log", "wb"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 120
    while len(cell_records(cell, ws)) < 10:
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never answered"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    answered_before = {sid for sid, r in cell_records(cell, ws).items() if r.ok}
    assert 10 <= len(answered_before) < 48
    sent_before = len(server.seen)

    server.reset_log()
    server.behaviour.latency = 0.0
    summary, records = run_cell(bench_frames, model, tmp_path, processes=False)
    ids = digests(bench_frames)
    resent = {s.digest for s in server.seen}
    assert resent and not resent & {ids[sid] for sid in answered_before}
    assert summary.skipped == len(answered_before)
    assert len(records) == 48 and all(r.ok for r in records.values())
    assert sent_before + len(server.seen) >= 48


def test_bad_api_model_configs_fail_at_config_time_naming_the_field(small_bench):
    def error_for(params: dict) -> str:
        raw = {
            "datasets": [{"tsv": str(small_bench)}],
            "models": [{"name": "m", "kind": "openai-compatible", "params": params}],
        }
        with pytest.raises(ConfigError) as info:
            parse_config(raw)
        return str(info.value)

    ok = {"base_url": "http://127.0.0.1:8000/v1", "model": "qwen"}
    key = "sk-proj-Secret123456"
    message = error_for({**ok, "api_key": key})
    assert "params.api_key" in message and "api_key_env" in message and key not in message
    message = error_for({**ok, "api_key_env": key})
    assert "params.api_key_env" in message and key not in message
    assert "params.base_url" in error_for({**ok, "base_url": "localhost:8000"})
    assert "params.model" in error_for({"base_url": ok["base_url"]})
    assert "params.max_tokens" in error_for({**ok, "max_tokens": 0})
    assert "params.media" in error_for({**ok, "media": "audio"})
    assert "params.temprature" in error_for({**ok, "temprature": 0.5})
    parse_config(  # and a good one passes
        {
            "datasets": [{"tsv": str(small_bench)}],
            "models": [{"name": "m", "kind": "openai-compatible", "params": ok}],
        }
    )


def test_default_cache_path_is_under_work_dir(tmp_path):
    assert Workspace(tmp_path, tmp_path / "o").response_cache_path.is_relative_to(tmp_path)
    assert isinstance(ApiSettings().cache_path, type(None) | Path)


def test_pack_mode_asks_each_video_once_and_reasks_a_lost_answer_alone(
    server, bench_frames, dask_cluster, tmp_path
):
    """12 videos x 4 questions: 12 requests of 4 numbered questions. The server drops
    the last answer of the packs of 3 videos: those 3 questions fail alone
    (PackUnanswered); the resume asks exactly those 3, one request each, unpacked."""
    import json as _json
    import re as _re

    dropped: set[str] = set()

    def answer(prompt: str, digest: str) -> str:
        m = _re.search(r"following (\d+) questions", prompt)
        if not m:  # a question asked alone
            return "B"
        n = int(m.group(1))
        answers = ["B"] * n
        if len(dropped) < 3:  # the first three packs lose their last answer
            dropped.add(digest)
            answers = answers[:-1]
        return _json.dumps(answers)

    server.behaviour.answer = answer
    dataset = bench_frames.dataset.model_copy(update={"pack": True})
    bench = type(bench_frames)(dataset, bench_frames.frames, bench_frames.work_dir)
    model = api_model(server, "packed")
    summary, records = run_cell(bench, model, tmp_path, dask_cluster)
    assert len(server.seen) == 12  # one request per video
    assert all("following 4 questions" in seen.prompt for seen in server.seen)
    lost = {i for i, r in records.items() if not r.ok}
    assert len(lost) == 3 and {records[i].error_type for i in lost} == {"PackUnanswered"}
    assert summary.answered == 45 and all(
        records[i].prediction == "B" for i in records if i not in lost
    )

    server.reset_log()
    again, records = run_cell(bench, model, tmp_path, dask_cluster)
    assert len(server.seen) == 3  # only the lost questions, one request each
    assert not any("following" in seen.prompt for seen in server.seen)
    assert again.skipped == 45 and all(r.ok for r in records.values())


def test_an_api_cell_asks_as_frames_arrive_and_a_slow_video_waits_alone(
    server, small_bench, dask_cluster, tmp_path
):
    """The cell starts while its frames are decoded: the questions about every other
    video are answered while one video's decode is held back, its own after it."""
    dataset, frames = DatasetSpec(tsv=small_bench), FrameSettings()
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    cell = Cell(api_model(server, "streamer"), dataset, 0, 0, frames, device_class="api")
    samples = load_samples(dataset)
    slow_video = samples[0].video_path
    slow = {s.sample_id for s in samples if s.video_path == slow_video}
    held = HeldClip(ws.frame_cache_dir, VideoJob(slow_video), frames).release_after(120)
    extraction = threading.Thread(target=extract_dataset_frames, args=(dataset, frames, ws))
    extraction.start()
    while not cell.frame_index_path(ws).exists():  # the head: every answer key is known
        time.sleep(0.02)
    log_dir = cell.log_dir(ws)
    others_answered = len(samples) - len(slow)
    held.release_when(lambda: len({r.sample_id for r in read_records(log_dir)}) == others_answered)
    settings = ApiSettings(cache_path=tmp_path / "cache.sqlite3", progress=False)
    summary = infer_api_cell(cell, ws, settings, None, client=dask_cluster)
    extraction.join(timeout=60)

    records = {r.sample_id: r for r in read_records(log_dir)}
    assert len(records) == 48 and all(r.ok for r in records.values())
    assert (summary.answered, summary.failed, summary.cache_hits) == (48, 0, 0)
    others = [r.finished_at for i, r in records.items() if i not in slow]
    assert max(others) < held.released_at  # asked while the slow video was not decoded
    assert min(records[i].finished_at for i in slow) > held.released_at
    assert len(server.answered) == 48  # each sample asked once
