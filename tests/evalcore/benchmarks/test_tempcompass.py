"""TempCompass as VLMEvalKit runs it without an LLM: its TSV layout (the `suffix` column is
the clip's file extension), its prompts per task type, and the accuracy its three rules
give fixed outputs, worked out by hand."""

from __future__ import annotations

import dataclasses

import pytest

from evalcore.benchmarks import get_benchmark
from evalcore.cell import Cell
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.dataset import DatasetError
from evalcore.frames import FrameSettings
from evalcore.predictions import PredictionRecord
from evalcore.scoring import score_samples, summarize
from tests.doubles.benchmarks.mlvu_tempcompass import (
    TEMPCOMPASS_COLUMNS,
    build_tempcompass,
    tempcompass_rows,
    write_tsv,
)
from tests.doubles.benchmarks.open_ended import build_tempcompass_captioning

# Fixed outputs by TSV index, and what VLMEvalKit's rule for the row's task type makes of
# them (key in brackets).
OUTPUTS = {
    # multi-choice, eval_rule_multi_choice
    "0": "A",  # [A. running] a bare letter == answer[0]: right
    "1": "(B) slow motion",  # [B. slow motion] starts with "(": fail -> unreadable
    "2": "C. towards the camera",  # [C. towards the camera] == answer: right
    "3": "B) cooking",  # [D. reading] starts with "B)": B, wrong
    # yes_no, eval_rule_YorN
    "4": "Yes, he is.",  # [yes] starts with yes: right
    "5": "No, it is not.",  # [no] starts with no: right
    "6": "Not sure.",  # [yes] "not sure." starts with "no": no, wrong
    "7": "no",  # [no] right
    # caption_matching, eval_rule_caption_matching
    "8": "Caption A",  # [Caption A: ...] a label == answer.split(":")[0]: right
    "9": "1.",  # [Option 2: ...] without dots "1" is Option 1's short label: wrong
    "10": "(A) The video is in slow motion.",  # [Sentence A] caption after ") ": right
    "11": "The ball rolls closer",  # [Caption B] no full stop, matches nothing: unreadable
    # yes_no
    "12": "I think so.",  # [no] starts with neither: unreadable
}


@pytest.fixture
def tempcompass(tmp_path):
    tsv = build_tempcompass(tmp_path / "tc")
    return DatasetSpec(tsv=tsv, benchmark="tempcompass"), get_benchmark("tempcompass")


def test_loads_all_three_task_types_with_clips_at_prefix_video_suffix(tempcompass):
    spec, adapter = tempcompass
    samples = adapter.load(spec)
    assert len(samples) == 13
    by_id = {s.sample_id: s for s in samples}
    assert by_id["0"].options == ("running", "walking", "swimming")  # own labels dropped
    assert by_id["0"].answer == "A"
    assert by_id["3"].answer == "D"
    assert by_id["4"].options == () and by_id["4"].answer == "yes"
    assert by_id["9"].options == (
        "Option 1: The car moves left.",
        "Option 2: The car moves right.",
    )
    assert by_id["9"].answer == "B"
    videos = spec.tsv.parent / "videos"
    assert by_id["0"].video_path == (videos / "1001.mp4").resolve()
    # the `suffix` column is the file extension: this row's clip is a Matroska file
    assert by_id["2"].video_path == (videos / "1003.mkv").resolve()
    assert all(s.video_path.is_file() for s in samples)


def test_the_yes_no_file_needs_no_candidates_column(tmp_path):
    rows = [r for r in tempcompass_rows() if r["task_type"] == "yes_no"]
    assert all("candidates" not in r for r in rows)
    tsv = build_tempcompass(tmp_path / "yorn", rows)
    samples = get_benchmark("tempcompass").load(DatasetSpec(tsv=tsv, benchmark="tempcompass"))
    assert [s.answer for s in samples] == ["yes", "no", "yes", "no", "no"]


def test_prompts_are_vlmevalkits_and_follow_the_task_type(tempcompass):
    spec, adapter = tempcompass
    by_id = {s.sample_id: s for s in adapter.load(spec)}
    (mc,) = adapter.messages(by_id["0"], timestamps=[0.5])  # no system turn
    assert mc.role == "user" and mc.video
    assert mc.text == (
        "What is the man doing?\nA. running\nB. walking\nC. swimming"
        "\nPlease directly give the best option:"
    )
    (cm,) = adapter.messages(by_id["9"], timestamps=[0.5])
    assert cm.text == (
        "Which description is a more suitable match for the video?\n"
        "Option 1: The car moves left.\nOption 2: The car moves right."
        "\nPlease directly give the best option:"
    )
    (yn,) = adapter.messages(by_id["4"], timestamps=[0.5])
    assert yn.text == "Is the man running?\nPlease answer yes or no:"


def test_the_row_specific_prompt_text_is_in_the_answer_key(tempcompass):
    """What the prompt adds after the question (candidate lines, the task type's
    instruction) is the sample's `prompt_extra`, so changing it re-asks the question."""
    spec, adapter = tempcompass
    by_id = {s.sample_id: s for s in adapter.load(spec)}
    yes_no = by_id["4"]
    assert yes_no.prompt_extra == "\nPlease answer yes or no:"
    assert adapter.messages(yes_no, [0.5])[-1].text.endswith(yes_no.prompt_extra)
    cell = Cell(
        model=ModelSpec(name="m", kind="reference"),
        dataset=spec,
        trial=0,
        seed=0,
        frames=FrameSettings(),
    )
    key = cell.answer_key(yes_no, "fp")
    for other in ("", "\nPlease directly give the best option:"):
        assert cell.answer_key(dataclasses.replace(yes_no, prompt_extra=other), "fp") != key


def test_the_suffix_column_picks_the_clip(tmp_path):
    rows = tempcompass_rows()
    rows[0]["suffix"] = ".mkv"  # same video id, another file: 1001.mkv besides 1001.mp4
    tsv = build_tempcompass(tmp_path / "tc", rows)
    samples = get_benchmark("tempcompass").load(DatasetSpec(tsv=tsv, benchmark="tempcompass"))
    assert samples[0].video_path.name == "1001.mkv" and samples[0].video_path.is_file()
    assert samples[1].video_path.name == "1001.mp4"


def test_fixed_outputs_score_as_vlmevalkit_scores_them(tempcompass):
    spec, adapter = tempcompass
    samples = adapter.load(spec)
    records = {sid: PredictionRecord(sid, "ok", text) for sid, text in OUTPUTS.items()}
    scored = score_samples(samples, records, adapter)
    cell = summarize("m", "D", 0, scored)

    # right: 0, 2, 4, 5, 7, 8, 10 -> 7 of 13; unreadable: 1, 11, 12
    assert cell.n == 13
    assert cell.correct == 7
    assert cell.accuracy == pytest.approx(7 / 13)
    assert cell.unreadable == 3
    assert cell.failed == 0 and cell.judged == 0

    def table(name):
        return {k: (v["accuracy"], v["n"]) for k, v in cell.breakdowns[name].items()}

    assert table("dim") == {
        "action": (0.75, 4),  # 0 right, 3 wrong, 4 right, 8 right
        "direction": (0.2, 5),  # 2 right; 6, 9 wrong; 11, 12 unreadable
        "speed": (0.75, 4),  # 1 unreadable; 5, 7, 10 right
    }
    assert cell.per_category == cell.breakdowns["dim"]
    assert table("task_type") == {
        "caption_matching": (0.5, 4),  # 8, 10 right; 9 wrong; 11 unreadable
        "multi-choice": (0.5, 4),  # 0, 2 right; 1 unreadable; 3 wrong
        "yes_no": (0.6, 5),  # 4, 5, 7 right; 6 wrong; 12 unreadable
    }
    assert table("dim.task_type") == {
        "action. caption_matching": (1.0, 1),  # 8
        "action. multi-choice": (0.5, 2),  # 0 right, 3 wrong
        "action. yes_no": (1.0, 1),  # 4
        "direction. caption_matching": (0.0, 2),  # 9 wrong, 11 unreadable
        "direction. multi-choice": (1.0, 1),  # 2
        "direction. yes_no": (0.0, 2),  # 6 wrong, 12 unreadable
        "speed. caption_matching": (1.0, 1),  # 10
        "speed. multi-choice": (0.0, 1),  # 1 unreadable
        "speed. yes_no": (1.0, 2),  # 5, 7
    }
    read = {s.sample.sample_id: s.extracted for s in scored}
    assert read == {
        "0": "A",
        "1": None,
        "2": "C",
        "3": "B",
        "4": "yes",
        "5": "no",
        "6": "no",
        "7": "no",
        "8": "A",
        "9": "A",
        "10": "A",
        "11": None,
        "12": None,
    }


def test_the_judge_reads_yes_no_rows_as_yes_or_no(tempcompass):
    spec, adapter = tempcompass
    by_id = {s.sample_id: s for s in adapter.load(spec)}
    assert adapter.judge_choices(by_id["12"]) == ("yes", "no")
    assert adapter.from_choice(by_id["12"], 1) == "no"
    assert adapter.judge_choices(by_id["1"]) == by_id["1"].options
    assert adapter.from_choice(by_id["1"], 1) == "B"


@pytest.mark.parametrize(
    ("index", "change", "message"),
    [
        (3, {"task_type": "captioning"}, "task_type 'captioning' (scored only by an LLM"),
        (5, {"answer": "maybe"}, "answer 'maybe' is neither 'yes' nor 'no'"),
        (1, {"answer": "E. sideways"}, "answer 'E. sideways' does not start with one of ABCD"),
        (9, {"candidates": "['Option 1 The car', 'Option 2: x']"}, "has no 'label: caption'"),
        (10, {"answer": "Sentence C: fast"}, "answer 'Sentence C: fast' is not one of"),
        (7, {"dim": ""}, "empty dim"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, index, change, message):
    rows = tempcompass_rows()
    rows[index].update(change)
    tsv = build_tempcompass(tmp_path / "tc", rows)
    with pytest.raises(DatasetError) as err:
        get_benchmark("tempcompass").load(DatasetSpec(tsv=tsv, benchmark="tempcompass"))
    assert str(err.value).startswith(f"{tsv} line {index + 2} (index '{index}'): ")  # header: 1
    assert message in str(err.value)


def test_a_missing_column_names_the_file(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "task_type"} for r in tempcompass_rows()]
    columns = tuple(c for c in TEMPCOMPASS_COLUMNS if c != "task_type")
    tsv = write_tsv(tmp_path / "t.tsv", rows, columns)
    with pytest.raises(DatasetError, match=rf"^{tsv}: missing column\(s\) task_type"):
        get_benchmark("tempcompass").load(DatasetSpec(tsv=tsv, benchmark="tempcompass"))


# --- the table VLMEvalKit pools over the multi-choice, captioning and yes/no files ------

# vlmeval/dataset/tempcompass.py `TempCompass.evaluate` over `ConcatVideoDataset.evaluate`,
# worked by hand for the files below (and the same as VLMEvalKit's code prints for these
# counts): the `dim. task_type` rows file by file (MCQ, captioning, yes/no; in each, in
# the order first met), then a row per dim, task type and `overall` in the order first
# met walking those rows; acc = round(success / overall * 100, 2).
POOLED_ROWS = [
    ("action. multi-choice", 1, 2, 50.0),  # MCQ file: q0 right, q3 wrong
    ("speed. multi-choice", 0, 1, 0.0),  # q1 unreadable: 0
    ("direction. multi-choice", 1, 1, 100.0),  # q2
    ("action. caption_matching", 1, 1, 100.0),  # q8
    ("direction. caption_matching", 0, 2, 0.0),  # q9 wrong, q11 unreadable
    ("speed. caption_matching", 1, 1, 100.0),  # q10
    ("action. captioning", 2, 3, 66.67),  # captioning file: c0 1, c1 0, c6 1
    ("direction. captioning", 1, 3, 33.33),  # c2 1, c5 0, c7 0
    ("speed. captioning", 1, 1, 100.0),  # c3 1; c4 unjudged: in no count
    ("action. yes_no", 1, 1, 100.0),  # yes/no file: q4
    ("speed. yes_no", 2, 2, 100.0),  # q5, q7
    ("direction. yes_no", 0, 2, 0.0),  # q6 wrong, q12 unreadable
    ("action", 5, 7, 71.43),  # 1 + 1 + 2 + 1 of 2 + 1 + 3 + 1
    ("multi-choice", 2, 4, 50.0),
    ("overall", 11, 20, 55.0),  # every question of the three files but c4
    ("speed", 4, 5, 80.0),  # 0 + 1 + 1 + 2 of 1 + 1 + 1 + 2
    ("direction", 2, 8, 25.0),  # 1 + 0 + 1 + 0 of 1 + 2 + 3 + 2
    ("caption_matching", 2, 4, 50.0),
    ("captioning", 4, 7, 57.14),
    ("yes_no", 3, 5, 60.0),
]
FILES = ["TempCompass_MCQ", "TempCompass_Captioning", "TempCompass_YorN"]
# the judge's scores of the captioning file (utils/tempcompass.py `parse_llm_output`: 1
# right, 0 wrong); c4's judge failed: unjudged, in no count
CAPTIONING_SCORES = {
    "0": 1.0,
    "1": 0.0,
    "2": 1.0,
    "3": 1.0,
    "4": None,
    "5": 0.0,
    "6": 1.0,
    "7": 0.0,
}
MCQ_IDS = ["0", "1", "2", "3", "8", "9", "10", "11"]  # multi-choice, caption matching
YORN_IDS = ["4", "5", "6", "7", "12"]


def _pooled_rows(rows) -> list[tuple]:
    return [(r["dim.task_type"], r["success"], r["overall"], r["acc"]) for r in rows]


def test_the_pooled_table_is_tempcompass_evaluate(tempcompass, tmp_path):
    spec, adapter = tempcompass
    samples = {s.sample_id: s for s in adapter.load(spec)}
    records = {i: PredictionRecord(i, "ok", text) for i, text in OUTPUTS.items()}
    hits = {
        r.sample.sample_id: float(r.hit)
        for r in score_samples(list(samples.values()), records, adapter)
    }
    captioning = get_benchmark("tempcompass_captioning")
    caption_tsv = build_tempcompass_captioning(tmp_path / "cap")
    caption_samples = captioning.load(DatasetSpec(tsv=caption_tsv))

    def answers(ids):
        return [(adapter.breakdown_values(samples[i]), hits[i]) for i in ids]

    cap = [
        (captioning.breakdown_values(s), CAPTIONING_SCORES[s.sample_id]) for s in caption_samples
    ]
    # given in any order, the files pool in VLMEvalKit's: MCQ, captioning, yes/no
    files = {"TempCompass_YorN": answers(YORN_IDS), "TempCompass_MCQ": answers(MCQ_IDS)}
    files["TempCompass_Captioning"] = cap
    order, rows = adapter.pooled_rating(files)
    assert order == FILES
    assert _pooled_rows(rows) == POOLED_ROWS
    assert captioning.pooled_rating(files) == (order, rows)  # one table for the pool

    # one file alone: its rows, then its dims and task type in the order first met
    order, rows = adapter.pooled_rating({"TempCompass_YorN": answers(YORN_IDS)})
    assert order == ["TempCompass_YorN"]
    assert _pooled_rows(rows) == [
        ("action. yes_no", 1, 1, 100.0),
        ("speed. yes_no", 2, 2, 100.0),
        ("direction. yes_no", 0, 2, 0.0),
        ("action", 1, 1, 100.0),
        ("yes_no", 3, 5, 60.0),
        ("overall", 3, 5, 60.0),
        ("speed", 2, 2, 100.0),
        ("direction", 0, 2, 0.0),
    ]
    with pytest.raises(ValueError, match="both hold 'action. yes_no'"):  # two copies
        adapter.pooled_rating({"a": answers(YORN_IDS), "b": answers(YORN_IDS)})
