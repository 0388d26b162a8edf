"""Pack mode: one request per clip with all its pending questions; answers parsed back
per question; an answer not found fails that question alone and is asked again alone."""

from __future__ import annotations

import json
import re

from evalcore.benchmarks import load_samples
from evalcore.inference.pack import unpack_answers


def test_unpack_reads_a_json_list_an_object_or_numbered_lines():
    assert unpack_answers('Sure: ["A", "C", "B"]', 3) == ["A", "C", "B"]
    assert unpack_answers('["A", "C"]', 3) == ["A", "C", None]  # one missing
    assert unpack_answers('{"1": "B", "3": "D"}', 3) == ["B", None, "D"]
    assert unpack_answers("1. B\n2) the red one\nQuestion 3: D", 3) == ["B", "the red one", "D"]
    assert unpack_answers("I cannot tell.", 2) == [None, None]
    assert unpack_answers('["A", null, ""]', 3) == ["A", None, None]


def pack_answers(prompt: str) -> str:
    """A model that answers a packed prompt: "B" to each question, as a JSON list."""
    n = int(re.search(r"following (\d+) questions", prompt).group(1))
    return json.dumps(["B"] * n)


def test_a_local_model_answers_one_request_per_clip(ws, small_bench, tmp_path):
    from doubles.models import PACKING

    from evalcore.cell import Cell
    from evalcore.config import DatasetSpec, ModelSpec
    from evalcore.frames import FrameSettings
    from evalcore.inference import infer_inline
    from tests.doubles.records import cell_records

    calls = tmp_path / "calls.txt"
    dataset = DatasetSpec(tsv=small_bench, pack=True)
    first_of_clip = [s.sample_id for s in load_samples(dataset)][::4]  # 4 questions per video
    params = {"calls_file": str(calls), "drop_last_of": first_of_clip[:2]}
    model = ModelSpec(name="packer", kind=PACKING, params=params, batch_size=4)
    cell = Cell(model, dataset, trial=0, seed=0, frames=FrameSettings())
    summary = infer_inline(cell, ws)
    requests = calls.read_text().splitlines()
    assert len(requests) == 12 and all(len(r.split()) == 4 for r in requests)
    assert (summary.answered, summary.failed) == (46, 2)
    lost = {i for i, r in cell_records(cell, ws).items() if not r.ok}
    assert {cell_records(cell, ws)[i].error_type for i in lost} == {"PackUnanswered"}

    again = infer_inline(cell, ws)
    asked_again = calls.read_text().splitlines()[12:]
    assert sorted(asked_again) == sorted(lost) and again.answered == 2  # alone, unpacked
    # packed answers are keyed apart from unpacked ones: the unpacked cell starts empty
    unpacked = Cell(model, DatasetSpec(tsv=small_bench), trial=0, seed=0, frames=FrameSettings())
    assert unpacked.key != cell.key
