"""The Cell: every answer-relevant setting changes its keys, no other setting does, and
answer keys follow each sample's own inputs (its row and its video's content)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, CellTrials, cells_of, frame_plans
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.dataset import Sample
from evalcore.frames import FrameCache, FrameSettings
from evalcore.frames.index import video_fingerprints
from evalcore.models import GenerationConfig
from evalcore.predictions import Journal, PredictionRecord, failed
from evalcore.workspace import Workspace


@pytest.fixture
def bench(small_bench, tmp_path) -> Path:
    """A private copy of the small benchmark (its videos may be replaced)."""
    copy = tmp_path / "bench"
    shutil.copytree(small_bench.parent, copy)
    return copy / small_bench.name


def cell(tsv: Path, **changes) -> Cell:
    model = ModelSpec(**{"name": "m", "kind": "reference", **changes.pop("model", {})})
    base = dict(model=model, dataset=DatasetSpec(tsv=tsv), trial=0, seed=0, frames=FrameSettings())
    return Cell(**{**base, **changes})


def test_every_answer_relevant_setting_changes_the_cell_key_and_no_other(bench):
    base = cell(bench)
    relevant = [
        cell(bench, model={"params": {"colour_tolerance": 70.0}}),
        cell(bench, model={"generation": GenerationConfig(max_new_tokens=8)}),
        cell(bench, model={"generation": GenerationConfig(temperature=0.5)}),
        cell(bench, model={"kind": "random"}),
        cell(bench, trial=1),
        cell(bench, seed=5),
        cell(bench, frames=FrameSettings(nframe=4)),
        cell(bench, frames=FrameSettings(fps=1.0)),
        cell(bench, frames=FrameSettings(max_side=None)),
        cell(bench, frames=FrameSettings(jpeg_quality=80)),
        cell(bench, frames=FrameSettings(sampler="vlmevalkit")),
        cell(bench, device_class="cuda"),
        cell(bench, dataset=DatasetSpec(tsv=bench, pack=True)),  # another prompt
        cell(bench, dataset=DatasetSpec(tsv=bench, benchmark="mlvu")),  # (layout aside)
    ]
    keys = {c.key for c in relevant}
    assert len(keys) == len(relevant) and base.key not in keys
    irrelevant = [
        cell(bench, model={"batch_size": 1}),
        cell(bench, model={"name": "renamed"}),  # the name is the log folder, not the key
        cell(bench, frames=FrameSettings(workers=1, timeout_s=5, backend="decord")),
        cell(bench, dataset=DatasetSpec(tsv=bench, limit=3)),
        cell(bench, dataset=DatasetSpec(tsv=bench, root=bench.parent)),
    ]
    assert {c.key for c in irrelevant} == {base.key}


def test_keys_and_paths_all_come_from_the_cell(bench, tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    c = cell(bench)
    assert c.log_dir(ws) == ws.work_dir / "predictions" / "m" / "Tiny" / c.key / "trial-0"
    assert c.shard_dir(ws) == ws.work_dir / "shards" / "m" / "Tiny" / c.key / "trial-0"
    # one frame index per dataset and frame plan: models with equal plans share it
    assert c.frame_index_path(ws) == cell(bench, model={"kind": "random"}).frame_index_path(ws)
    assert c.frame_index_path(ws) != cell(bench, frames=FrameSettings(nframe=4)).frame_index_path(
        ws
    )
    assert c.unit_key("infer", ["a"], "d") != c.unit_key("infer", ["b"], "d")
    assert c.unit_key("infer", ["a"], "d") != c.unit_key("infer", ["a"], "e")


def test_per_model_frames_override_the_run_and_equal_plans_share_extraction(bench):
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=bench)],
        models=[
            ModelSpec(name="a", kind="random"),
            ModelSpec(name="b", kind="random", frames={"fps": 2, "max_frames": 16}),
            ModelSpec(name="c", kind="reference", frames={"nframe": 8}),  # = the run's
        ],
    )
    frames = {c.model.name: c.frames for c in cells_of(config)}
    assert frames["b"].fps == 2 and frames["b"].nframe is None and frames["b"].max_frames == 16
    assert frames["a"] == frames["c"] == config.frames
    assert len(frame_plans(cells_of(config))) == 2


def answer_keys(tsv: Path, cache: FrameCache) -> dict[str, str]:
    c = cell(tsv)
    samples = load_samples(c.dataset)
    return c.answer_keys(samples, video_fingerprints(samples, cache))


def test_answer_keys_follow_each_samples_own_inputs(bench, tmp_path):
    cache = FrameCache(tmp_path / "frames")
    before = answer_keys(bench, cache)
    table = pd.read_csv(bench, sep="\t", dtype=str, keep_default_na=False)
    rows = table.to_dict("records")

    # replace one video's file (same path, new content): exactly its questions change
    video = rows[0]["video_path"]
    replaced = bench.parent / video
    replaced.write_bytes((bench.parent / rows[-1]["video_path"]).read_bytes())
    after = answer_keys(bench, cache)
    changed = {i for i in before if before[i] != after[i]}
    assert changed == {r["index"] for r in rows if r["video_path"] == video}

    # edit one row: exactly that row
    table.loc[5, "question"] = table.loc[5, "question"] + " (edited)"
    table.to_csv(bench, sep="\t", index=False)
    edited = answer_keys(bench, cache)
    assert {i for i in after if after[i] != edited[i]} == {rows[5]["index"]}

    # append rows: only the new ones are new, the others keep their keys
    extra = dict(rows[0], index="1000")
    pd.concat([table, pd.DataFrame([extra])]).to_csv(bench, sep="\t", index=False)
    appended = answer_keys(bench, cache)
    assert set(appended) - set(edited) == {"1000"}
    assert all(appended[i] == edited[i] for i in edited)


# The fields of a Sample that an answer does not depend on, and why; every other field
# must be declared on Sample as an answer field. A new field fails this test until it
# is put in one place or the other.
NOT_ANSWER_FIELDS = {
    "dataset": "the log folder's, not the sample's",
    "sample_id": "names the record; a renumbered row is asked again all the same",
    "video": "its content is in the key (the video's fingerprint)",
    "video_path": "its content is in the key (the video's fingerprint)",
    "path_error": "a path that cannot be resolved is the video's state in the key",
    "answer": "the reference: scoring reads it, the model never sees it",
    "category": "a breakdown: reports read it, the prompt does not",
    "row": "the TSV row as read, for the reports' sheet and the breakdowns",
}


def test_every_sample_field_is_declared_in_or_out_of_the_answer_key():
    declared = Sample.ANSWER_FIELDS + Sample.LATER_ANSWER_FIELDS
    assert len(set(declared)) == len(declared)
    assert {f.name for f in dataclasses.fields(Sample)} == set(declared) | set(NOT_ANSWER_FIELDS)
    assert not set(declared) & set(NOT_ANSWER_FIELDS)


def test_each_declared_field_changes_the_answer_key_and_no_other(bench):
    c = cell(bench)
    base = load_samples(c.dataset)[0]
    key = c.answer_key(base, "fp")
    changed = {
        "question": base.question + "?",
        "options": base.options + ("another",),
        "start": 0.5,
        "end": 1.5,
        "subtitles": ((0.0, 1.0, "hello"),),
        "prompt_extra": "(A) x",
    }
    assert set(changed) == set(Sample.ANSWER_FIELDS + Sample.LATER_ANSWER_FIELDS)
    for name, value in changed.items():
        assert c.answer_key(dataclasses.replace(base, **{name: value}), "fp") != key, name
    assert c.answer_key(base, "other video") != key
    same = dict(dataset="D", sample_id="x", answer="Z", category="c", row={"a": 1})
    assert c.answer_key(dataclasses.replace(base, **same), "fp") == key


def test_cell_trials_group_a_configs_cells_by_model_and_dataset(bench):
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=bench), DatasetSpec(tsv=bench, name="Again")],
        models=[ModelSpec(name="a", kind="random"), ModelSpec(name="b", kind="random")],
        trials=2,
    )
    groups = CellTrials.group(cells_of(config))
    assert [g.label for g in groups] == ["a x Tiny", "b x Tiny", "a x Again", "b x Again"]
    assert all([c.trial for c in g.trials] == [0, 1] for g in groups)
    with pytest.raises(ValueError, match="more than one model x dataset"):
        CellTrials(groups[0].trials + groups[1].trials)
    with pytest.raises(ValueError, match="at least one trial"):
        CellTrials(())


def test_what_counts_is_per_trial_and_follows_the_current_answer_keys(bench, tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    trials = CellTrials([cell(bench), cell(bench, trial=1)])
    samples = trials.samples
    videos = {s.sample_id: "fp" for s in samples}
    keys = {c.trial: c.answer_keys(samples, videos) for c in trials.trials}
    first, second = samples[0].sample_id, samples[1].sample_id
    with Journal(trials.trials[0].log_dir(ws), "main") as log:
        log.append(failed(first, "Timeout", "slow", attempts=2, answer_key=keys[0][first]))
        log.append(PredictionRecord(first, "ok", "A", answer_key=keys[0][first]))
        log.append(failed(first, "Timeout", "slow", attempts=3, answer_key=keys[0][first]))
        log.append(PredictionRecord(second, "ok", "B", answer_key="made under other settings"))
    with Journal(trials.trials[1].log_dir(ws), "main") as log:
        log.append(PredictionRecord(second, "ok", "C", answer_key=keys[1][second]))
    current = trials.current_records(ws, videos)
    assert list(current) == [0, 1]
    assert current[0].answer_keys == keys[0] and current[1].answer_keys == keys[1]
    assert {i: r.prediction for i, r in current[0].records.items()} == {first: "A"}
    assert {i: r.prediction for i, r in current[1].records.items()} == {second: "C"}
    # another video under the same id: nothing made before counts
    moved = trials.current_records(ws, {**videos, first: "new", second: "new"})
    assert not moved[0].records and not moved[1].records
