"""Video-MME: VLMEvalKit's layout, prompt and answer rule on a tiny dataset in its layout
(conftest.py), scored from fixed model outputs against hand-computed numbers."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from evalcore.benchmarks import get_benchmark
from evalcore.benchmarks.subtitles import parse_srt
from evalcore.cell import Cell
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.dataset import DatasetError
from evalcore.frames import FrameSettings
from evalcore.predictions import PredictionRecord
from evalcore.scoring import score_samples, summarize

INSTRUCTION = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
)

# Fixed model outputs for q0..q11 (conftest.VIDEOMME_QUESTIONS) and what VLMEvalKit's rule
# reads: extract_characters_regex (the first capital A-D once the answer prefixes are
# deleted), then can_infer against the options when the regex reads nothing.
PREDICTIONS = {
    "0": "The answer is (C).",  # prefix deleted -> "(C)." -> C; key C: right
    "1": "A. red",  # A; key A: right
    "2": "Saturn",  # no capital A-D; can_infer_text: only "saturn" occurs -> D; key D: right
    "3": "C. an umbrella",  # C; key B: wrong
    "4": "Best answer: C",  # "Best answer:" is no prefix (missing comma) -> the B of Best; key C
    "5": "the answer is d",  # no capitals; can_infer's "answer is d" (any case) -> D; key D: right
    "6": "I am not sure what happens in this clip.",  # no A-D, no option text: unreadable
    "7": "B",  # key B: right
    "8": "Definitely in a player's hands",  # the D of Definitely -> D; key C: wrong
    "9": "a dog",  # no capitals; can_infer_text: only "a dog" occurs -> B; key B: right
    "10": "",  # unreadable
    "11": "A",  # key C: wrong
}
READ = ["C", "A", "D", "C", "B", "D", None, "B", "D", "B", None, "A"]


@pytest.fixture(scope="module")
def videomme():
    return get_benchmark("videomme")


@pytest.fixture(scope="module")
def samples(videomme, videomme_root):
    return videomme.load(DatasetSpec(tsv=videomme_root / "Video-MME.tsv", benchmark="videomme"))


def test_loads_vlmevalkit_layout(samples, videomme_root):
    assert len(samples) == 12
    # q9's answer is the option text, q11's the whole candidate: both become letters
    assert [s.answer for s in samples] == list("CADBCDABCBAC")
    assert samples[0].video_path == (videomme_root / "video" / "vmA.mp4").resolve()
    assert all(s.video_path.is_file() for s in samples)
    assert samples[1].options == ("red", "blue", "green", "white")  # letters stripped once
    assert samples[0].category == "Counting Problem"
    assert all(s.subtitles == () and s.prompt_extra == "" for s in samples)  # subtitles off


def test_scores_fixed_outputs_as_vlmevalkit_does(samples, videomme):
    records = {i: PredictionRecord(i, "ok", text) for i, text in PREDICTIONS.items()}
    scored = score_samples(samples, records, videomme)
    assert [r.extracted for r in scored] == READ
    cell = summarize("m", "Video-MME", 0, scored)
    # right: q0 q1 q2 q5 q7 q9 = 6 of 12; unreadable: q6 q10
    assert (cell.n, cell.correct, cell.accuracy) == (12, 6, 0.5)
    assert (cell.unreadable, cell.failed, cell.missing) == (2, 0, 0)
    assert cell.breakdowns == {
        "duration": {
            "short": {"accuracy": 4 / 6, "n": 6},  # vmA q0 q1 q2 right, vmD q9 right
            "medium": {"accuracy": 1 / 3, "n": 3},  # vmB: q5
            "long": {"accuracy": 1 / 3, "n": 3},  # vmC: q7
        },
        "domain": {
            "Knowledge": {"accuracy": 1.0, "n": 3},  # vmA: 3 of 3
            "Film & Television": {"accuracy": 1 / 3, "n": 3},  # vmB: q5
            "Sports Competition": {"accuracy": 1 / 3, "n": 3},  # vmC: q7
            "Life Record": {"accuracy": 1 / 3, "n": 3},  # vmD: q9
        },
        "sub_category": {
            "Astronomy": {"accuracy": 1.0, "n": 3},
            "Animation": {"accuracy": 1 / 3, "n": 3},
            "Basketball": {"accuracy": 1 / 3, "n": 3},
            "Pet & Animal": {"accuracy": 1 / 3, "n": 3},
        },
        "task_type": {
            "Counting Problem": {"accuracy": 2 / 3, "n": 3},  # q0 right, q5 right, q11 wrong
            "Attribute Perception": {"accuracy": 1.0, "n": 1},  # q1
            "OCR Problems": {"accuracy": 1.0, "n": 2},  # q2, q7
            "Object Recognition": {"accuracy": 0.5, "n": 2},  # q3 wrong, q9 right
            "Temporal Reasoning": {"accuracy": 0.0, "n": 1},  # q4
            "Action Recognition": {"accuracy": 0.0, "n": 1},  # q6 unreadable
            "Spatial Perception": {"accuracy": 0.0, "n": 1},  # q8
            "Temporal Perception": {"accuracy": 0.0, "n": 1},  # q10 unreadable
        },
    }
    assert cell.per_category == cell.breakdowns["duration"]  # the headline table


@pytest.mark.parametrize(
    ("prediction", "letter"),
    [
        ("Answer: C", "C"),  # "Answer:" is deleted, so its A is not read
        ("The correct answer is B.", "B"),
        ("Best option: D", "B"),  # the joined prefix list misses it too: the B of Best
        ("Cannot determine the answer", "C"),  # the regex reads the C of Cannot first
        ("cannot determine", None),
        ("I'd say the correct answer is c", "C"),  # can_infer's "answer is", any case
        ("mars or venus", None),  # two options' texts: can_infer_text cannot tell
        ("Z", None),  # can_infer's "none of them": unreadable here
    ],
)
def test_answer_rule(samples, videomme, prediction, letter):
    extraction = videomme.extract(samples[2], prediction)  # options Mars Venus Earth Saturn
    assert (extraction.answer, extraction.rule) == (letter, "videomme-regex-v1")


def test_prompt_as_vlmevalkit_builds_it_without_double_letters(samples, videomme):
    (turn,) = videomme.messages(samples[1], [0.5, 1.0])
    assert turn.role == "user" and turn.video
    assert turn.text == (
        "These are the frames of a video. " + INSTRUCTION + "Question: What colour is the "
        "largest planet?\nA. red\nB. blue\nC. green\nD. white\nAnswer: "
    )
    assert "A. A." not in turn.text


def test_unlettered_candidates_are_lettered(tmp_path, videomme, write_tsv, videomme_rows):
    row = {**videomme_rows[1], "candidates": ["red", "blue", "green", "white"]}
    spec = DatasetSpec(tsv=write_tsv(tmp_path / "Video-MME.tsv", [row]), benchmark="videomme")
    (sample,) = videomme.load(spec)
    assert "\nA. red\nB. blue\nC. green\nD. white\n" in videomme.messages(sample, [])[0].text


def test_subtitles_of_the_sampled_frames_only(videomme, videomme_root):
    spec = DatasetSpec(tsv=videomme_root / "Video-MME.tsv", benchmark="videomme", subtitles=True)
    samples = videomme.load(spec)
    q0, q6 = samples[0], samples[6]
    assert q0.subtitles == (
        (0.0, 0.5, "Hello there."),
        (0.5, 1.2, "Two lines of text"),  # the cue's two lines, joined by a space
        (1.5, 2.0, "Never sampled."),
    )
    # frames at 0.25 s (cue 1), 0.5 s (on a boundary: no cue, the bounds are strict),
    # 0.75 s and 1.0 s (both cue 2: its line twice, as VLMEvalKit lists one per frame)
    (turn,) = videomme.messages(q0, [0.25, 0.5, 0.75, 1.0])
    assert turn.text == (
        "These are the frames of a video. This video's subtitles are listed below:\n"
        "Hello there.\nTwo lines of text\nTwo lines of text\n" + INSTRUCTION + "Question: "
        "How many planets are shown?\nA. Two.\nB. Three.\nC. Four.\nD. Five.\nAnswer: "
    )
    assert "Never sampled." not in turn.text
    assert "Hello" not in videomme.messages(q0, [0.75, 1.0, 1.25])[0].text
    # vmC has no .srt: the subtitle template with an empty list, as VLMEvalKit
    assert q6.subtitles == ()
    text = videomme.messages(q6, [0.5, 1.0])[0].text
    assert text.startswith("These are the frames of a video. This video's subtitles are "
                           "listed below:\n\nSelect the best answer")  # fmt: skip


def test_subtitles_change_the_answer_key(videomme, videomme_root):
    tsv = videomme_root / "Video-MME.tsv"
    with_subs = videomme.load(DatasetSpec(tsv=tsv, benchmark="videomme", subtitles=True))
    without = videomme.load(DatasetSpec(tsv=tsv, benchmark="videomme"))
    dataset = DatasetSpec(tsv=tsv, benchmark="videomme")
    cell = Cell(ModelSpec(name="m", kind="reference"), dataset, 0, 0, FrameSettings())
    q0 = with_subs[0]
    other_cues = dataclasses.replace(q0, subtitles=q0.subtitles[:1])
    keys = {cell.answer_key(s, "fp") for s in (q0, other_cues, without[0])}
    assert len(keys) == 3  # differing only in subtitles, or subtitles on/off
    # vmC has no subtitle file, yet the prompt (and so the key) differs with subtitles on
    assert cell.answer_key(with_subs[6], "fp") != cell.answer_key(without[6], "fp")


def test_root_elsewhere(tmp_path, videomme, videomme_root):
    tsv = shutil.copy(videomme_root / "Video-MME.tsv", tmp_path / "Video-MME.tsv")
    spec = DatasetSpec(tsv=tsv, root=videomme_root, benchmark="videomme", subtitles=True)
    samples = videomme.load(spec)
    assert samples[3].video_path == (videomme_root / "video" / "vmB.mp4").resolve()
    assert samples[3].subtitles == ((0.1, 1.9, "vmB speaks."),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"candidates": "['A. x', 'B. y'"}, "line 3 .*candidates is not a Python list"),
        ({"candidates": ["A. x", "B. y", "C. z"]}, "line 3 .*four options .*not 3"),
        ({"answer": "E"}, "line 3 .*answer 'E'"),
        ({"duration": "very long"}, "line 3 .*duration 'very long'"),
    ],
)
def test_malformed_rows_name_file_and_line(
    tmp_path, videomme, write_tsv, videomme_rows, change, message
):
    rows = videomme_rows[:3]
    rows[1] = {**rows[1], **change}
    spec = DatasetSpec(tsv=write_tsv(tmp_path / "Video-MME.tsv", rows), benchmark="videomme")
    with pytest.raises(DatasetError, match=f"Video-MME.tsv {message}"):
        videomme.load(spec)


def test_missing_column_is_named(tmp_path, videomme, write_tsv, videomme_rows):
    rows = [{k: v for k, v in row.items() if k != "task_type"} for row in videomme_rows]
    spec = DatasetSpec(tsv=write_tsv(tmp_path / "Video-MME.tsv", rows), benchmark="videomme")
    with pytest.raises(DatasetError, match="Video-MME.tsv: missing column.*task_type"):
        videomme.load(spec)


def test_malformed_srt_names_its_line_and_the_row(tmp_path, videomme, write_tsv, videomme_rows):
    (tmp_path / "subtitle").mkdir()
    (tmp_path / "subtitle" / "vmB.srt").write_text(
        "1\n00:00:00,000 --> 00:00:01,000\nfine\n\n2\n00:00:01 --> 00:00:02\nbroken\n"
    )
    tsv = write_tsv(tmp_path / "Video-MME.tsv", videomme_rows[2:4])  # vmA, then vmB
    spec = DatasetSpec(tsv=tsv, benchmark="videomme", subtitles=True)
    with pytest.raises(DatasetError, match=r"Video-MME.tsv line 3 .*vmB.srt line 6: not a cue"):
        videomme.load(spec)


def test_srt_parsing():
    cues = parse_srt(
        "\ufeff1\r\n00:00:01,000 --> 00:00:02,500 X1:10\r\n<i>one</i>\r\n\r\n"
        "2\r\n00:00:03.5 --> 00:00:04,000\r\nsays --> two\r\n3\r\n"
        "01:00:00,000 --> 01:00:01,000\r\nthree\r\n"
    )
    assert cues == (
        (1.0, 2.5, "<i>one</i>"),
        (3.5, 4.0, "says --> two"),  # no blank line before the next cue's number: still split
        (3600.0, 3601.0, "three"),
    )
    with pytest.raises(DatasetError, match="x.srt line 1: text before the first cue"):
        parse_srt("hello\n00:00:01,000 --> 00:00:02,000\nhi\n", "x.srt")
    with pytest.raises(DatasetError, match="x.srt line 2: the cue ends before it starts"):
        parse_srt("1\n00:00:02,000 --> 00:00:01,000\nhi\n", "x.srt")
