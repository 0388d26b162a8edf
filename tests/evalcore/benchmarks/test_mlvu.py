"""MLVU (multiple choice) as VLMEvalKit runs it: its TSV layout and clips, its prompt, and
the accuracy its `check_ans_with_model` rule gives fixed outputs, worked out by hand."""

from __future__ import annotations

import shutil

import pytest

from evalcore.benchmarks import get_benchmark
from evalcore.config import DatasetSpec
from evalcore.dataset import DatasetError
from evalcore.predictions import PredictionRecord
from evalcore.scoring import score_samples, summarize
from tests.doubles.benchmarks.mlvu_tempcompass import build_mlvu, mlvu_rows, write_tsv

# Fixed outputs by TSV index. What VLMEvalKit's rule makes of each (key letter in brackets):
OUTPUTS = {
    "0": "B",  # [B] no ")": "B" == key -> right
    "1": "(C) a bird",  # [B] cut before ")" -> "C"; can_infer -> C: wrong
    "2": "The answer is D.",  # [D] can_infer_option: lone letter D among the last 5 words: right
    "3": "spoon",  # [B] no letter; can_infer_text: only "spoon" occurs -> B: right
    "4": "I cannot tell from this video.",  # [B] no letter, text too long: unreadable
    "5": "(A)",  # [D] cut -> "A"; can_infer -> A: wrong
    "6": "B) pour, open, stir",  # [B] cut before ")" -> "B": right
    "7": "Sorry, I can't help with images of people yet.",  # [C] a refusal (Z): unreadable
    "8": "A or B, hard to say",  # [B] two letters, no option text: unreadable
    "9": "D",  # [D] right
    "10": "Not (A), the answer is B",  # [B] cut -> "A" != B, but "answer is B" -> B: right
}


@pytest.fixture
def mlvu(tmp_path):
    tsv = build_mlvu(tmp_path / "mlvu")
    return DatasetSpec(tsv=tsv, benchmark="mlvu"), get_benchmark("mlvu")


def test_loads_the_layout_with_clips_under_prefix_and_the_answer_as_a_letter(mlvu):
    spec, adapter = mlvu
    samples = adapter.load(spec)
    assert [s.sample_id for s in samples] == [str(i) for i in range(11)]
    first = samples[0]
    assert first.options == ("red", "blue", "green", "white")
    assert first.answer == "B"  # "blue" is the second candidate
    assert first.video_path == (spec.tsv.parent / "MLVU/video/1_plotQA/p1.mp4").resolve()
    assert all(s.video_path.is_file() and s.path_error is None for s in samples)
    assert [s.answer for s in samples] == ["B", "B", "D", "B", "B", "D", "B", "C", "B", "D", "B"]


def test_root_is_honoured(mlvu, tmp_path):
    spec, adapter = mlvu
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = shutil.copy(spec.tsv, elsewhere / "MLVU_MCQ.tsv")
    samples = adapter.load(DatasetSpec(tsv=moved, root=spec.tsv.parent, benchmark="mlvu"))
    assert all(s.video_path.is_file() for s in samples)


def test_prompt_is_vlmevalkits(mlvu):
    spec, adapter = mlvu
    system, user = adapter.messages(adapter.load(spec)[0], timestamps=[0.5])
    assert system.role == "system"
    assert system.text == (
        "Carefully watch this video and pay attention to every detail. Based on your "
        "observations, select the best option that accurately addresses the question."
    )
    assert user.role == "user" and user.video
    assert user.text == (
        "Question: What colour is the car?\nOptions:\n(A) red\n(B) blue\n(C) green\n(D) white"
        "\nOnly give the best option."
    )


def test_fixed_outputs_score_as_vlmevalkit_scores_them(mlvu):
    spec, adapter = mlvu
    samples = adapter.load(spec)
    records = {sid: PredictionRecord(sid, "ok", text) for sid, text in OUTPUTS.items()}
    scored = score_samples(samples, records, adapter)
    cell = summarize("m", "D", 0, scored)

    # right: 0, 2, 3, 6, 9, 10 -> 6 of 11; unreadable: 4, 7, 8
    assert cell.n == 11
    assert cell.correct == 6
    assert cell.accuracy == pytest.approx(6 / 11)
    assert cell.unreadable == 3
    assert cell.failed == 0 and cell.judged == 0
    per_task = {k: (v["accuracy"], v["n"]) for k, v in cell.breakdowns["task_type"].items()}
    assert per_task == {
        "count": (0.0, 2),  # 4 unreadable, 5 wrong
        "ego": (0.5, 2),  # 8 unreadable, 9 right
        "needle": (1.0, 3),  # 2, 3, 10 right
        "order": (0.5, 2),  # 6 right, 7 unreadable
        "plotQA": (0.5, 2),  # 0 right, 1 wrong
    }
    assert cell.per_category == cell.breakdowns["task_type"]
    # VLMEvalKit's M-Avg is hits / questions summed over the tasks: the overall accuracy
    hits = sum(v["accuracy"] * v["n"] for v in cell.breakdowns["task_type"].values())
    assert hits / cell.n == pytest.approx(cell.accuracy)
    read = {s.sample.sample_id: s.extracted for s in scored}
    assert read == {
        "0": "B",
        "1": "C",
        "2": "D",
        "3": "B",
        "4": None,
        "5": "A",
        "6": "B",
        "7": None,
        "8": None,
        "9": "D",
        "10": "B",
    }


def test_an_answer_not_among_the_candidates_names_file_and_line(tmp_path):
    rows = mlvu_rows()
    rows[3]["answer"] = "a teapot"
    tsv = build_mlvu(tmp_path / "mlvu", rows)
    with pytest.raises(DatasetError) as err:
        get_benchmark("mlvu").load(DatasetSpec(tsv=tsv, benchmark="mlvu"))
    # the header is line 1, so TSV index 3 is line 5
    assert str(err.value).startswith(f"{tsv} line 5 (index '3'): answer 'a teapot'")


def test_malformed_candidates_and_missing_columns_name_the_file(tmp_path):
    rows = mlvu_rows()
    rows[6]["candidates"] = "['open', 'pour'"
    tsv = build_mlvu(tmp_path / "a", rows)
    with pytest.raises(DatasetError, match=rf"^{tsv} line 8 \(index '6'\): candidates"):
        get_benchmark("mlvu").load(DatasetSpec(tsv=tsv, benchmark="mlvu"))

    no_type = write_tsv(
        tmp_path / "b.tsv",
        [{k: v for k, v in r.items() if k != "task_type"} for r in mlvu_rows()],
        ("index", "video", "question", "answer", "candidates"),
    )
    with pytest.raises(DatasetError, match=rf"^{no_type}: missing column\(s\) task_type"):
        get_benchmark("mlvu").load(DatasetSpec(tsv=no_type, benchmark="mlvu"))
