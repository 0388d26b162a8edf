"""A work dir made by the code of an earlier commit (`data/make_workdir_v1.py`: three
models, two frame plans, two trials) stays valid: its frame indexes keep their names,
every frame is a cache hit, every answer still counts, nothing is pending and the cell
reports say the same (rewritten once, to name `generic`'s newer letter rule)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import CellTrials, cells_of, extract_dataset_frames, frame_plans
from evalcore.config import EvalConfig
from evalcore.frames.index import index_frame_keys
from evalcore.inference import infer_inline
from evalcore.predictions import read_records
from evalcore.reports import report_cell
from evalcore.reports.history import cells_to_evaluate
from evalcore.reports.run_summary import sample_counts
from evalcore.workspace import Workspace
from tests.doubles.records import cell_records

FIXTURE = Path(__file__).parent / "data" / "workdir_v1"


@pytest.fixture
def old(tmp_path) -> tuple[EvalConfig, Workspace]:
    """The fixture's config and work dir, moved to `tmp_path`; each frame index renamed
    from the name it has under the TSV's first place (checked) to its name here."""
    shutil.copytree(FIXTURE, tmp_path / "v1")
    raw = (FIXTURE / "config.json").read_text(encoding="utf-8")
    built = Path(json.loads(raw)["work_dir"]).parent
    config = EvalConfig.model_validate_json(raw.replace(str(built), str(tmp_path / "v1")))
    ws = Workspace(config.work_dir, config.output_dir)
    then = built / "bench" / "Old.tsv"
    names = set()
    for dataset, frames in frame_plans(cells_of(config)):
        made = frames.index_path(dataset.model_copy(update={"tsv": then}), ws)
        assert made.is_file(), f"{made.name}: no such index in the old work dir"
        made.rename(frames.index_path(dataset, ws))
        names.add(made.name)
    assert names == {p.name for p in (FIXTURE / "work" / "frame-index").iterdir()}
    return config, ws


def test_every_answer_in_an_old_work_dir_still_counts(old):
    config, ws = old
    cells = cells_of(config)
    samples = {s.sample_id for s in load_samples(config.datasets[0])}
    logs = {p.parent for p in ws.predictions_root.glob("*/*/*/*/*.jsonl")}
    assert logs == {cell.log_dir(ws) for cell in cells}  # every cell key is the same
    for cell in cells:
        records = cell_records(cell, ws)
        assert set(records) == samples and all(r.ok for r in records.values())
        assert len(read_records(cell.log_dir(ws))) == len(samples)
        summary = infer_inline(cell, ws)
        assert (summary.skipped, summary.answered, summary.model_calls) == (len(samples), 0, 0)
    assert cells_to_evaluate(config, ws) == {"Old": {}}
    counts = sample_counts(config, since=float("inf"))
    assert {c["restored"] for c in counts.values()} == {len(samples) * config.trials}


def test_old_frames_are_cache_hits_and_old_reports_stay(old):
    config, ws = old
    for dataset, frames in frame_plans(cells_of(config)):
        index = frames.index_path(dataset, ws)
        keys = index_frame_keys(index)
        summary = extract_dataset_frames(dataset, frames, ws)
        assert (summary.hits, summary.decoded, summary.failed) == (summary.videos, 0, 0)
        assert index_frame_keys(index) == keys
    cells = cells_of(config)
    for model in config.models:
        report = ws.cell_json(model.name, config.datasets[0].dataset_name)
        before = json.loads(report.read_text(encoding="utf-8"))
        result = report_cell(CellTrials([c for c in cells if c.model == model]), ws)
        after = json.loads(report.read_text(encoding="utf-8"))
        # `generic` reads letters by VLMEvalKit's can_infer since these reports were made:
        # the card names the new rule, so each report is written once more, every number
        # and outcome in it the same; then it stays
        rules = [r["settings"]["card"].pop("extraction_rule") for r in (before, after)]
        assert rules == ["letter-v1", "letter-can-infer-v2"]
        # and the protocol these cells ran under (ours, the only one then), which cards
        # now name with the family and frame setting `explain --sensitivity` reads
        card = after["settings"]["card"]
        added = {k: card.pop(k) for k in ("protocol", "family", "answer_rule_set")}
        assert added == {"protocol": "evalcore", "family": "frame-based",
                         "answer_rule_set": "evalcore"}  # fmt: skip
        setting = card.pop("frame_setting")
        frames = next(c.frames for c in cells if c.model == model)
        own = bool({"nframe", "fps"} & set(model.frames or {}))
        assert setting == {"nframe": frames.nframe, "fps": frames.fps, "model_set": own}
        renamed = ("report_digest", "evaluated_at")  # what rewriting the card changes
        # and the headline under each answer rule set, which reports now carry: the
        # default set's is the cell's accuracy (no judge here)
        assert "rule_sets" not in before
        assert after.pop("rule_sets")["headlines"]["evalcore"] == after["accuracy"]
        assert {k: v for k, v in after.items() if k not in renamed} == {
            k: v for k, v in before.items() if k not in renamed
        }
        assert result["accuracy"] == before["accuracy"] and result["n"] == before["n"]
        written = report.read_text(encoding="utf-8")
        report_cell(CellTrials([c for c in cells if c.model == model]), ws)
        assert report.read_text(encoding="utf-8") == written  # not rewritten again
