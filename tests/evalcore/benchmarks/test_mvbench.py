"""MVBench as VLMEvalKit runs it: its TSV layout with MP4, GIF, WebM and frame-folder
clips, `bound`, its prompt, real frame extraction, and the accuracy its `check_ans_with_model`
rule gives fixed outputs, worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalcore.benchmarks import get_benchmark
from evalcore.benchmarks.mvbench import ANSWER_PREFIX, SYSTEM_PROMPT
from evalcore.cell import extract_dataset_frames
from evalcore.config import DatasetSpec
from evalcore.dataset import DatasetError
from evalcore.frames import FrameCache, FrameEntry, FrameSettings, VideoJob
from evalcore.frames.index import read_frame_index, video_job
from evalcore.predictions import PredictionRecord
from evalcore.scoring import score_samples, summarize
from evalcore.workspace import Workspace
from tests.doubles.benchmarks.mvbench import COLUMNS, ROWS, build_mvbench, webm_codec
from tests.doubles.videos import read_frame_number


@pytest.fixture(scope="module")
def mvbench(tmp_path_factory):
    """MVBench.tsv and its videos (a WebM question too when PyAV can encode one)."""
    tsv = build_mvbench(tmp_path_factory.mktemp("MVBench"))
    return DatasetSpec(tsv=tsv, benchmark="mvbench"), get_benchmark("mvbench")


def test_loads_paths_answers_and_bounds_as_vlmevalkit_reads_them(mvbench):
    spec, adapter = mvbench
    samples = {s.sample_id: s for s in adapter.load(spec)}
    root = Path(spec.tsv).parent
    assert len(samples) == len(ROWS) + (webm_codec() is not None)
    # root/prefix/video as written: nothing appended to g.gif, a folder for `frame` rows
    assert samples["0"].video_path == root / "video/star/Charades_v1_480/clip.mp4"
    assert samples["3"].video_path == root / "video/ssv2_video/g.gif"
    assert samples["5"].video_path == root / "video/tvqa/frames_fps3_hq/s01e01_seg01_clip_00"
    assert samples["5"].video_path.is_dir()
    assert all(s.path_error is None and s.video_path.exists() for s in samples.values())
    # the answer is the option's text; its letter is the sample's answer
    answers = [samples[str(i)].answer for i in range(len(ROWS))]
    assert answers == ["B", "D", "A", "A", "B", "B", "C", "B", "B", "A", "B"]
    # "a" is the text of option B in Character Order, never the letter A
    assert samples["10"].options == ("c", "a", "b") and samples["10"].answer == "B"
    # bound True: the clip; bound False: the whole video, though start/end are filled in
    assert (samples["0"].start, samples["0"].end) == (1.0, 2.0)
    assert (samples["1"].start, samples["1"].end) == (0.0, 3.0)
    assert samples["2"].row["start"] == "1.0" and samples["2"].row["end"] == "2.0"
    assert (samples["2"].start, samples["2"].end) == (None, None)
    assert video_job(samples["2"]) == VideoJob(samples["2"].video_path, None, None)
    assert video_job(samples["5"]) == VideoJob(samples["5"].video_path, 1.0, 3.0)
    assert (samples["3"].start, samples["7"].end) == (None, None)
    assert adapter.breakdowns == ("task_type",)
    assert adapter.breakdown_values(samples["5"]) == {"task_type": "Episodic Reasoning"}
    assert samples["5"].category == "Episodic Reasoning"


def test_the_prompt_is_vlmevalkits(mvbench):
    spec, adapter = mvbench
    sample = adapter.load(spec)[7]
    system, user, assistant = adapter.messages(sample, (0.0, 1.0))
    assert (system.role, system.text) == ("system", SYSTEM_PROMPT)
    assert SYSTEM_PROMPT == (
        "Carefully watch the video and pay attention to the cause and sequence of events, "
        "the detail and movement of objects, and the action and pose of persons. Based on "
        "your observations, select the best option that accurately addresses the question.\n"
    )
    assert (user.role, user.video) == ("user", True)
    assert user.text == (
        "Question: How many metal objects are moving?\n"
        "Options:\n"
        "(A) 2\n"
        "(B) 3\n"
        "(C) 4\n"
        "Only give the best option."
    )
    assert (
        (assistant.role, assistant.text)
        == ("assistant", ANSWER_PREFIX)
        == (
            "assistant",
            "Best option:(",
        )
    )


def _write_rows(path: Path, rows: list[dict]) -> Path:
    lines = ["\t".join([*COLUMNS, "index"])]
    lines += ["\t".join(str(row[c]) for c in [*COLUMNS, "index"]) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(**changes) -> dict:
    row = dict(zip(COLUMNS, ROWS[0], strict=True))
    row.update({"index": 0, "candidates": repr(row["candidates"])}, **changes)
    return row


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bound": "maybe"}, "bound must be True or False, got 'maybe'"),
        ({"end": ""}, "bound is True but start or end is empty"),
        ({"answer": "Jumped."}, "answer 'Jumped.' is not one of the candidates"),
        ({"task_type": " "}, "empty task_type"),
    ],
)
def test_malformed_rows_are_refused_naming_the_line(tmp_path, changes, message):
    tsv = _write_rows(tmp_path / "MVBench.tsv", [_row(**changes)])
    with pytest.raises(DatasetError, match="line 2") as info:
        get_benchmark("mvbench").load(DatasetSpec(tsv=tsv, benchmark="mvbench"))
    assert message in str(info.value)


def test_a_path_that_leaves_the_root_fails_alone(tmp_path):
    rows = [_row(), _row(index=1, prefix="../elsewhere/")]
    tsv = _write_rows(tmp_path / "MVBench.tsv", rows)
    first, second = get_benchmark("mvbench").load(DatasetSpec(tsv=tsv, benchmark="mvbench"))
    assert first.path_error is None
    assert second.video_path is None and "escapes the dataset root" in second.path_error


# Frames each clip gets with FrameSettings(nframe=4) (midpoints of 4 equal segments of
# the clip's frames: start + floor((2i + 1) * L / 8)); every frame shows its number.
EXPECTED_FRAMES = {
    "0": [16, 20, 24, 28],  # clip.mp4 [1, 2) s at 15 fps = frames 15..29, L = 15
    "1": [5, 16, 28, 39],  # clip.mp4 [0, 3) s = all 45 frames
    "2": [5, 16, 28, 39],  # bound False: the whole video, not [1, 2) s
    "3": [2, 7, 12, 17],  # g.gif: 20 frames
    "4": [2, 7, 12, 17],
    "5": [3, 5, 6, 8],  # frame folder [1, 3) s at 3 fps = frames 3..8, L = 6
    "6": [1, 4, 7, 10],  # frame folder [0, 4) s = all 12 frames
    "7": [3, 11, 18, 26],  # video_10000.mp4: 30 frames
    "8": [3, 11, 18, 26],
    "9": [3, 11, 18, 26],
    "10": [2, 7, 12, 17],  # order.mp4: 20 frames
    "11": [3, 11, 18, 26],  # w.webm (when made): 30 frames
}


def test_every_clip_is_extracted_with_its_bounds(mvbench, tmp_path):
    spec, adapter = mvbench
    ws = Workspace(tmp_path, tmp_path)
    summary = extract_dataset_frames(spec, FrameSettings(nframe=4), ws)
    with_webm = webm_codec() is not None
    # distinct clips: clip.mp4 x 3 bounds, g.gif, the folder x 2 bounds, two mp4s (+ webm)
    assert (summary.videos, summary.failed) == (8 + with_webm, 0)
    assert summary.decoded == summary.videos
    index = read_frame_index(Path(summary.index_path), FrameCache(ws.frame_cache_dir))
    samples = adapter.load(spec)
    assert len(samples) == len(ROWS) + with_webm
    for sample in samples:
        entry = index.frames_for(sample.sample_id)
        assert isinstance(entry, FrameEntry), (sample.sample_id, entry)
        got = [read_frame_number(frame) for frame in entry.load()]
        assert got == EXPECTED_FRAMES[sample.sample_id], sample.sample_id
    folder = index.frames_for("5")
    assert folder.manifest()["backend"] == "folder"
    assert folder.timestamps == pytest.approx([1.0, 5 / 3, 2.0, 8 / 3])


# Fixed outputs by TSV index, and what VLMEvalKit's rule (evaluate -> check_ans_with_model
# with the judge unavailable) makes of each; [key] is the correct letter.
OUTPUTS = {
    # Action Sequence
    "0": "B) Opened the door.",  # [B] first word "b)" is part of "(b)": right
    "1": "(C) Sat on the bed.",  # [D] "(c)" vs "(d)": no; can_infer_option: lone C is
    #                            word 1 of 5, not among the last 4; can_infer_text: only
    #                            "sat on the bed." occurs -> C: wrong
    "2": "a cup is taken",  # [A] first word "a" is part of "(a)": right (the article!)
    # Action Antonym (GIF)
    "3": "Pushing something from left to right.",  # [A] no letter word; can_infer_text:
    #                            only option A's text occurs (B's is "right to left"): right
    "4": "I believe the correct answer is **B** because it moves right, which matches "
    "the motion seen in the clip.",  # [B] "i": no; lone B is word 7 of 19, too early;
    #                            "correct answer is **B**" -> B: right
    # Episodic Reasoning (frame folder)
    "5": "E",  # [B] "e" is not part of "(b)"; can_infer_option: lone E -> E: wrong
    "6": "Cannot determine the answer from these frames.",  # [C] a refusal: can_infer's Z,
    #                            wrong; here unreadable (None)
    # Moving Count
    "7": "3",  # [B] "3" vs "(b)": no; no letter word; can_infer_text: only "3" -> B: right
    "8": "There are 1 or 2 cubes",  # [B] no letter word; 22 characters > 2 x 3 (the
    #                            options' length): can_infer_text reads nothing: unreadable
    "9": "(A) 2",  # [A] first word "(a)": right
    # Character Order
    "10": "a",  # [B] first word "a" names A, not B; can_infer_option: no capital letter
    #                            word; can_infer_text: only option B's text "a" -> B: right
}
# right: 0, 2 | 3, 4 | - | 7, 9 | 10 -> 7 of 11; unreadable: 6 (refusal) and 8
EXPECTED_READ = ["B", "C", "A", "A", "B", "E", None, "B", None, "A", "B"]


def test_fixed_outputs_score_as_vlmevalkits_rule_says(mvbench):
    spec, adapter = mvbench
    samples = [s for s in adapter.load(spec) if s.sample_id in OUTPUTS]
    records = {i: PredictionRecord(i, "ok", text) for i, text in OUTPUTS.items()}
    scored = score_samples(samples, records, adapter)
    assert [s.extracted for s in scored] == EXPECTED_READ
    assert [s.hit for s in scored] == [
        True, False, True, True, True, False, False, True, False, True, True,
    ]  # fmt: skip
    score = summarize("model", "MVBench", 0, scored)
    assert (score.n, score.correct, score.failed, score.missing) == (11, 7, 0, 0)
    assert score.accuracy == 7 / 11
    assert (score.unreadable, score.judged) == (2, 0)
    per_task = {
        "Action Antonym": {"accuracy": 2 / 2, "n": 2},  # 3, 4
        "Action Sequence": {"accuracy": 2 / 3, "n": 3},  # 0, 2 (1 wrong)
        "Character Order": {"accuracy": 1 / 1, "n": 1},  # 10
        "Episodic Reasoning": {"accuracy": 0 / 2, "n": 2},  # 5 wrong, 6 unreadable
        "Moving Count": {"accuracy": 2 / 3, "n": 3},  # 7, 9 (8 unreadable)
    }
    assert score.breakdowns == {"task_type": per_task}
    assert score.per_category == per_task


@pytest.mark.parametrize(
    ("prediction", "read"),
    [
        ("B", "B"),
        ("(B).", "B"),  # dots removed: "(b)" is part of "(b)"
        ("b) opened the door", "B"),
        ("Best option:(B)", "B"),  # not the first word; can_infer_option: lone B at the end
        ("A", "A"),  # names A: a reading, wrong
        ("The answer is D", "D"),  # lone D among the last 4 words
        ("opened the door.", "B"),  # can_infer_text
        ("A or B", None),  # two letters, no option text
        ("Z", None),  # can_infer's "no option"
        ("I can't process this file.", None),  # a refusal
        ("Failed to obtain answer via API", None),
        # Where VLMEvalKit's check_ans counts these right for any question (the first word
        # is part of, or contains, every "(x)"), we read nothing:
        ("", None),
        ("(", None),
        (") whatever", None),
        ("...", None),
        ("(A)(B)", None),
    ],
)
def test_the_rule_on_single_predictions(mvbench, prediction, read):
    spec, adapter = mvbench
    sample = adapter.load(spec)[0]  # options SEQUENCE, the key B ("Opened the door.")
    extraction = adapter.extract(sample, prediction)
    assert (extraction.answer, extraction.rule) == (read, "mvbench-check-ans-v1")
