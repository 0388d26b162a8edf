"""`evalcore gc`: only what no current config references is removed, and it says so."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import yaml

from evalcore.cell import cells_of, extract_dataset_frames, find_cell, frame_plans
from evalcore.config import parse_config
from evalcore.frames.index import FrameIndexWriter
from evalcore.gc import collect_garbage
from evalcore.inference import infer_inline
from evalcore.predictions import read_records
from evalcore.workspace import Workspace
from tests.doubles.records import cell_records


def evaluate(config) -> None:
    ws = Workspace(config.work_dir, config.output_dir)
    for dataset, frames in frame_plans(cells_of(config)):
        extract_dataset_frames(dataset, frames, ws)
    infer_inline(find_cell(config), ws)


def test_gc_keeps_current_records_and_frames_and_frees_the_rest(small_bench, tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(small_bench.parent, bench)
    tsv = bench / small_bench.name
    raw = {
        "datasets": [{"tsv": str(tsv)}],
        "models": [{"name": "random", "kind": "random"}],
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "out"),
    }
    old = parse_config({**raw, "frames": {"nframe": 4}})  # an older frame plan
    evaluate(old)
    current = parse_config(raw)
    evaluate(current)
    ws = Workspace(current.work_dir, current.output_dir)
    cell = find_cell(current)
    # one edited row: its old record is stale, the new one current
    table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    table.loc[0, "question"] += " (edited)"
    table.to_csv(tsv, sep="\t", index=False)
    evaluate(current)
    assert len(read_records(cell.log_dir(ws))) == 49
    before = cell_records(cell, ws)

    dry = collect_garbage([current], dry_run=True)
    assert (dry.records, dry.log_dirs, dry.frame_entries) == (1, 1, 12)
    assert len(read_records(cell.log_dir(ws))) == 49  # a dry run removes nothing

    config_file = tmp_path / "eval.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "gc", str(config_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "1 stale records, 1 log folders of old settings, 12 frame cache entries" in out
    assert "freed" in out and "MB" in out
    assert len(read_records(cell.log_dir(ws))) == 48
    assert cell_records(cell, ws) == before  # what counts is untouched
    assert not find_cell(old).log_dir(ws).exists()
    again = collect_garbage([current])
    assert (again.records, again.log_dirs, again.frame_entries, again.bytes) == (0, 0, 0, 0)

    # A run begins extracting again: until its index lists every clip, every frame stays.
    (index,) = [f.index_path(d, ws) for d, f in frame_plans(cells_of(current))]
    with FrameIndexWriter(index, videos={}):
        busy = collect_garbage([current], dry_run=True)
        assert (busy.frame_entries, busy.extracting) == (0, [str(index)])
        assert "an extraction is writing" in busy.describe()
    assert collect_garbage([current], dry_run=True).frame_entries == 12  # it listed none
