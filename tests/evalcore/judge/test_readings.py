"""The judge stage over loopback HTTP: only the answers the benchmark's rule cannot read
go to the judge, once; a re-run sends nothing; a judge failure stays unreadable."""

from __future__ import annotations

import pandas as pd

from evalcore.api.endpoint import EndpointSpec
from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, CellTrials
from evalcore.config import ApiSettings, ModelSpec
from evalcore.frames.index import read_index_videos
from evalcore.judge import judge_unreadable
from evalcore.predictions import Journal, PredictionRecord
from evalcore.reports import report_cell
from evalcore.workspace import Workspace


def test_unreadable_answers_go_to_the_judge_once(server, bench_frames, dask_cluster, tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    for name in ("frames", "frame-index"):
        (ws.work_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (ws.work_dir / name).symlink_to(bench_frames.work_dir / name, target_is_directory=True)
    cell = Cell(ModelSpec(name="m", kind="random"), bench_frames.dataset, 0, 0, bench_frames.frames)
    samples = load_samples(cell.dataset)
    keys = cell.answer_keys(samples, read_index_videos(cell.frame_index_path(ws)))
    # 40 readable letters; 8 answers no regex reads: 5 name the correct option in words
    # the judge maps back, 3 the judge cannot map (it replies Z)
    rambling = {s.sample_id: s for s in samples[40:]}
    with Journal(cell.log_dir(ws), "main") as log:
        for s in samples:
            text = s.answer if s.sample_id not in rambling else f"hmm, maybe {s.sample_id}?"
            log.append(PredictionRecord(s.sample_id, "ok", text, answer_key=keys[s.sample_id]))

    def judge_reply(prompt: str, digest: str) -> str:
        for sid, s in rambling.items():
            if f"maybe {sid}?" in prompt:
                return s.answer if int(sid) % 8 < 5 else "Z"
        return "A"

    server.behaviour.answer = judge_reply
    spec = EndpointSpec(base_url=server.url, model="judge-model", timeout=2)
    api = ApiSettings(cache_path=tmp_path / "cache.sqlite3", progress=False, processes=False)

    first = judge_unreadable(CellTrials([cell]), ws, spec, api, None, client=dask_cluster)
    assert first.asked == 8 and len(server.seen) == 8
    assert all("maybe" in seen.prompt and "Z" in seen.prompt for seen in server.seen)
    read = {sid: a for sid, a in first.answers[0].items() if a is not None}
    assert read == {sid: s.answer for sid, s in rambling.items() if int(sid) % 8 < 5}

    again = judge_unreadable(CellTrials([cell]), ws, spec, api, None, client=dask_cluster)
    assert len(server.seen) == 8 and again.requests == 0 and again.cache_hits == 8
    assert again.answers == first.answers

    summary = report_cell(CellTrials([cell]), ws, first.answers, cell.card("judge-model"))
    assert summary["accuracy"] == 45 / 48 and summary["judged"] == 5
    assert summary["unreadable"] == 3  # counted, never silently a wrong option
    sheet = pd.read_excel(ws.cell_xlsx("m", cell.dataset.dataset_name))
    assert sheet["extracted_by"].value_counts().to_dict() == {"rule": 40, "judge": 5, "none": 3}


def test_a_failing_judge_leaves_answers_unreadable(server, bench_frames, dask_cluster, tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    for name in ("frames", "frame-index"):
        (ws.work_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (ws.work_dir / name).symlink_to(bench_frames.work_dir / name, target_is_directory=True)
    cell = Cell(ModelSpec(name="m", kind="random"), bench_frames.dataset, 0, 0, bench_frames.frames)
    samples = load_samples(cell.dataset)[:4]
    keys = cell.answer_keys(samples, read_index_videos(cell.frame_index_path(ws)))
    with Journal(cell.log_dir(ws), "main") as log:
        for s in samples:
            log.append(PredictionRecord(s.sample_id, "ok", "no idea", answer_key=keys[s.sample_id]))
    server.behaviour.scripted = {"no idea": ["400"]}
    spec = EndpointSpec(base_url=server.url, model="judge-model", timeout=2, max_attempts=1)
    api = ApiSettings(cache_path=tmp_path / "cache.sqlite3", progress=False, processes=False)
    result = judge_unreadable(CellTrials([cell]), ws, spec, api, None, client=dask_cluster)
    assert result.asked == 4 and result.read == 0 and result.failures == {"BadRequest": 4}
    server.behaviour.scripted = {}
    retried = judge_unreadable(CellTrials([cell]), ws, spec, api, None, client=dask_cluster)
    assert retried.requests == 4  # failures were never cached: asked again
