"""LongVideoBench: VLMEvalKit's layout, prompt and answer rule on a tiny dataset in its
layout (conftest.py), scored from fixed model outputs against hand-computed numbers."""

from __future__ import annotations

import dataclasses
import json

import pytest

from evalcore.benchmarks import get_benchmark
from evalcore.cell import Cell
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.dataset import DatasetError
from evalcore.frames import FrameSettings
from evalcore.predictions import PredictionRecord
from evalcore.scoring import score_samples, summarize

INSTRUCTION = "Answer with the option's letter from the given choices directly."

# Fixed model outputs for q0..q9 (conftest.LVB_QUESTIONS) and what VLMEvalKit's rule
# reads: the first capital A-E once the answer prefixes are deleted, then can_infer.
PREDICTIONS = {
    "0": "A",  # key A: right
    "1": "E",  # the fifth option; key E: right
    "2": "Everything suggests sitting",  # the E of Everything -> E; key C: wrong
    "3": "The answer is (B).",  # key B: right
    "4": "nobody",  # no capitals; can_infer_text: only "nobody" occurs -> D; key D: right
    "5": "before the song, or after the song",  # two options' texts: unreadable
    "6": "B",  # key A: wrong
    "7": "C. three times",  # C; key B: wrong
    "8": "D",  # key D: right
    "9": "no idea",  # no capitals, no option text: unreadable
}
READ = ["A", "E", "E", "B", "D", None, "B", "C", "D", None]


@pytest.fixture(scope="module")
def lvb():
    return get_benchmark("longvideobench")


def spec(root, **changes) -> DatasetSpec:
    return DatasetSpec(tsv=root / "LongVideoBench.tsv", benchmark="longvideobench", **changes)


@pytest.fixture(scope="module")
def samples(lvb, longvideobench_root):
    return lvb.load(spec(longvideobench_root))


def test_loads_vlmevalkit_layout(samples, longvideobench_root):
    # correct_choice 0, 4, 2, 1, 3, 2, 0, 1, 3, 0 as letters
    assert [s.answer for s in samples] == list("AECBDCABDA")
    assert samples[1].options == ("left", "right", "up", "down", "still")
    assert samples[8].options == ("red", "blue", "green", "black")  # its letters stripped
    assert samples[0].video_path == (longvideobench_root / "videos" / "lvA.mp4").resolve()
    assert all(s.video_path.is_file() for s in samples)
    assert all(s.subtitles == () for s in samples)  # subtitles off


def test_scores_fixed_outputs_as_vlmevalkit_does(samples, lvb):
    records = {i: PredictionRecord(i, "ok", text) for i, text in PREDICTIONS.items()}
    scored = score_samples(samples, records, lvb)
    assert [r.extracted for r in scored] == READ
    cell = summarize("m", "LongVideoBench", 0, scored)
    # right: q0 q1 q3 q4 q8 = 5 of 10; unreadable: q5 q9
    assert (cell.n, cell.correct, cell.accuracy) == (10, 5, 0.5)
    assert (cell.unreadable, cell.failed, cell.missing) == (2, 0, 0)
    assert cell.breakdowns == {
        "duration_group": {
            "15": {"accuracy": 2 / 3, "n": 3},  # lvA: q0 q1 right, q2 wrong
            "60": {"accuracy": 2 / 3, "n": 3},  # lvB: q3 q4 right, q5 unreadable
            "600": {"accuracy": 0.0, "n": 2},  # lvC: q6 q7 wrong
            "3600": {"accuracy": 0.5, "n": 2},  # lvD: q8 right, q9 unreadable
        },
        "question_category": {
            "S2E": {"accuracy": 1.0, "n": 2},  # q0, q3
            "T2O": {"accuracy": 0.5, "n": 2},  # q1 right, q5 unreadable
            "S2A": {"accuracy": 0.0, "n": 1},  # q2
            "E2O": {"accuracy": 1.0, "n": 1},  # q4
            "S2O": {"accuracy": 0.0, "n": 1},  # q6
            "E3E": {"accuracy": 0.0, "n": 1},  # q7
            "SSS": {"accuracy": 1.0, "n": 1},  # q8
            "TOS": {"accuracy": 0.0, "n": 1},  # q9
        },
    }
    assert cell.per_category == cell.breakdowns["duration_group"]


def test_prompt_as_vlmevalkit_builds_it_without_double_letters(samples, lvb):
    (turn,) = lvb.messages(samples[8], [0.5])
    assert turn.role == "user" and turn.video
    assert turn.text == (
        "What colour is the car?\nA. red\nB. blue\nC. green\nD. black\n" + INSTRUCTION
    )
    assert "A. A." not in turn.text


def test_subtitle_cues_in_clip_time(lvb, longvideobench_root):
    samples = lvb.load(spec(longvideobench_root, subtitles=True))
    # lvA: clock times minus its starting timestamp of 100 s
    cues = samples[0].subtitles
    assert [text for _, _, text in cues] == [
        "before the clip",
        "short cue",
        "long cue",
        "later cue",
    ]
    times = [t for start, end, _ in cues for t in (start, end)]
    assert times == pytest.approx([-10.0, -9.0, 0.2, 0.6, 1.0, 3.0, 10.0, 12.0])
    # lvB: an end that is null or a JSON integer (2) is the clip's duration (2.0 s)
    assert samples[3].subtitles == (
        (0.0, 2.0, "integer end"),
        (0.5, 2.0, "open end"),
        (0.25, 0.75, "float end"),
    )
    assert samples[6].subtitles == ()  # lvC: an empty cue list


@pytest.mark.parametrize(
    ("question", "timestamps", "shown"),
    [
        # "short cue" (0.2-0.6 s) is widened to 1 s around 0.4 s: -0.1..0.9 holds 0.5
        (0, [0.5, 1.5], ["short cue", "long cue"]),
        (0, [0.95], []),  # past the widened cue, before "long cue" (1.0-3.0)
        (0, [3.0], []),  # on "long cue"'s end: the bounds are strict
        (0, [1.2, 1.4, 2.0], ["long cue"]),  # once, however many frames it holds
        # lvB: "float end" (0.25-0.75) widened to 0.0-1.0; "open end" starts at 0.5
        (3, [0.1], ["integer end", "float end"]),
    ],
)
def test_subtitles_of_the_sampled_frames_only(
    lvb, longvideobench_root, question, timestamps, shown
):
    sample = lvb.load(spec(longvideobench_root, subtitles=True))[question]
    (turn,) = lvb.messages(sample, timestamps)
    (no_frames,) = lvb.messages(sample, [])  # no frame, no cue: the prompt alone
    assert no_frames.text.startswith(sample.question) and no_frames.text.endswith(INSTRUCTION)
    assert turn.text == "".join(f"{line}\n" for line in shown) + no_frames.text


def test_subtitles_change_the_answer_key(lvb, longvideobench_root):
    with_subs = lvb.load(spec(longvideobench_root, subtitles=True))
    without = lvb.load(spec(longvideobench_root))
    cell = Cell(
        ModelSpec(name="m", kind="reference"), spec(longvideobench_root), 0, 0, FrameSettings()
    )
    q0 = with_subs[0]
    fewer_cues = dataclasses.replace(q0, subtitles=q0.subtitles[1:])
    keys = {cell.answer_key(s, "fp") for s in (q0, fewer_cues, without[0])}
    assert len(keys) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"correct_choice": 5}, "line 3 .*correct_choice 5 is not an option index 0-4"),
        ({"correct_choice": "B"}, "line 3 .*correct_choice is not a whole number: 'B'"),
        ({"duration_group": 30}, "line 3 .*duration_group '30' is not one of 15, 60, 600, 3600"),
        ({"candidates": [str(i) for i in range(6)]}, "line 3 .*at most five options"),
        ({"candidates": "['x', "}, "line 3 .*candidates is not a Python list"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, lvb, write_tsv, lvb_rows, change, message):
    rows = lvb_rows[:3]
    rows[1] = {**rows[1], **change}
    tsv = write_tsv(tmp_path / "LongVideoBench.tsv", rows)
    with pytest.raises(DatasetError, match=f"LongVideoBench.tsv {message}"):
        lvb.load(spec(tmp_path))
    assert tsv.is_file()


def test_subtitle_columns_needed_only_with_subtitles(tmp_path, lvb, write_tsv, lvb_rows):
    rows = [
        {k: v for k, v in r.items() if k != "starting_timestamp_for_subtitles"} for r in lvb_rows
    ]
    write_tsv(tmp_path / "LongVideoBench.tsv", rows)
    assert len(lvb.load(spec(tmp_path))) == 10
    with pytest.raises(DatasetError, match="missing column.*starting_timestamp_for_subtitles"):
        lvb.load(spec(tmp_path, subtitles=True))


def test_bad_subtitle_files_name_the_row_and_file(tmp_path, lvb, write_tsv, lvb_rows):
    write_tsv(tmp_path / "LongVideoBench.tsv", lvb_rows[3:4])  # lvB, line 2
    (tmp_path / "subtitles").mkdir()
    with pytest.raises(DatasetError, match=r"line 2 .*subtitles .*lvB_en.json: No such file"):
        lvb.load(spec(tmp_path, subtitles=True))
    (tmp_path / "subtitles" / "lvB_en.json").write_text('[\n{"timestamp": [0.0, 1.0],\n')
    with pytest.raises(DatasetError, match=r"line 2 .*lvB_en.json line 3: Expecting"):
        lvb.load(spec(tmp_path, subtitles=True))
    (tmp_path / "subtitles" / "lvB_en.json").write_text(json.dumps([{"timestamp": [0.0]}]))
    with pytest.raises(DatasetError, match=r"line 2 .*lvB_en.json cue 0: malformed cue"):
        lvb.load(spec(tmp_path, subtitles=True))
