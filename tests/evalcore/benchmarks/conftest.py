"""Tiny Video-MME and LongVideoBench datasets in VLMEvalKit's own layouts: real H.264
clips, the TSV columns VLMEvalKit writes, and subtitle files where the layout has them.

Each row's comment gives what the hand-computed scores in the tests rely on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evalcore.dataset.synthetic import VideoSpec, encode_video

# Video-MME: three questions per video, lettered candidates, the answer a letter (as
# VLMEvalKit's Video-MME.tsv), except q9 (the option's text) and q11 (the whole candidate).
VIDEOMME_VIDEOS = {
    # videoID: (duration, domain, sub_category)
    "vmA": ("short", "Knowledge", "Astronomy"),
    "vmB": ("medium", "Film & Television", "Animation"),
    "vmC": ("long", "Sports Competition", "Basketball"),
    "vmD": ("short", "Life Record", "Pet & Animal"),
}
VIDEOMME_QUESTIONS = [
    # (videoID, task_type, question, candidates, answer)
    ("vmA", "Counting Problem", "How many planets are shown?",
     ["A. Two.", "B. Three.", "C. Four.", "D. Five."], "C"),  # q0
    ("vmA", "Attribute Perception", "What colour is the largest planet?",
     ["A. red", "B. blue", "C. green", "D. white"], "A"),  # q1
    ("vmA", "OCR Problems", "What is written on the sign?",
     ["A. Mars", "B. Venus", "C. Earth", "D. Saturn"], "D"),  # q2
    ("vmB", "Object Recognition", "What does the rabbit carry?",
     ["A. a carrot", "B. a basket", "C. an umbrella", "D. a book"], "B"),  # q3
    ("vmB", "Temporal Reasoning", "What happens after the rabbit jumps?",
     ["A. It falls.", "B. It runs away.", "C. It sleeps.", "D. It eats."], "C"),  # q4
    ("vmB", "Counting Problem", "How many carrots are on the table?",
     ["A. one", "B. two", "C. three", "D. four"], "D"),  # q5
    ("vmC", "Action Recognition", "Which team scores first?",
     ["A. the red team", "B. the blue team", "C. neither", "D. both at once"], "A"),  # q6
    ("vmC", "OCR Problems", "What is the final score shown on the board?",
     ["A. 98-97", "B. 101-99", "C. 88-90", "D. 100-100"], "B"),  # q7
    ("vmC", "Spatial Perception", "Where is the ball at the end?",
     ["A. in the hoop", "B. on the floor", "C. in a player's hands", "D. out of bounds"],
     "C"),  # q8
    ("vmD", "Object Recognition", "What animal appears?",
     ["A. a cat", "B. a dog", "C. a parrot", "D. a rabbit"], "a dog"),  # q9: B
    ("vmD", "Temporal Perception", "What does the dog do first?",
     ["A. barks", "B. sits", "C. runs", "D. sleeps"], "A"),  # q10
    ("vmD", "Counting Problem", "How many toys are there?",
     ["A. 1", "B. 2", "C. 3", "D. 4"], "C. 3"),  # q11: C
]  # fmt: skip

# vmA's subtitles (vmC has none: Video-MME ships no .srt for some videos).
VMA_SRT = """\
1
00:00:00,000 --> 00:00:00,500
Hello there.

2
00:00:00,500 --> 00:00:01,200
Two lines
of text

3
00:00:01,500 --> 00:00:02,000
Never sampled.
"""

# LongVideoBench: unlettered candidates (q8's carry letters), correct_choice an index.
LVB_VIDEOS = {
    # video_id: (duration_group, clip duration s, starting_timestamp_for_subtitles)
    "lvA": (15, 2.0, 100.0),
    "lvB": (60, 2.0, 0.0),
    "lvC": (600, 1.0, 0.0),
    "lvD": (3600, 1.0, 0.0),
}
LVB_QUESTIONS = [
    # (video_id, question_category, question, candidates, correct_choice)
    ("lvA", "S2E", "What does the man hold?",
     ["a red ball", "a blue cube", "a green cone", "a yellow star"], 0),  # q0: A
    ("lvA", "T2O", "Which way does the ball move?",
     ["left", "right", "up", "down", "still"], 4),  # q1: E
    ("lvA", "S2A", "What is the woman doing?",
     ["walking", "running", "sitting", "jumping"], 2),  # q2: C
    ("lvB", "S2E", "What does the child wear?",
     ["a hat", "a scarf", "gloves", "boots"], 1),  # q3: B
    ("lvB", "E2O", "Who opens the door?",
     ["the teacher", "the student", "the dog", "nobody"], 3),  # q4: D
    ("lvB", "T2O", "When does the light turn on?",
     ["before the song", "during the song", "after the song", "never"], 2),  # q5: C
    ("lvC", "S2O", "What is next to the window?",
     ["a lamp", "a chair", "a table", "a sofa"], 0),  # q6: A
    ("lvC", "E3E", "How often does the bell ring?",
     ["once", "twice", "three times", "never"], 1),  # q7: B
    ("lvD", "SSS", "What colour is the car?",
     ["A. red", "B. blue", "C. green", "D. black"], 3),  # q8: D
    ("lvD", "TOS", "Where does the scene end?",
     ["the kitchen", "the garden", "the garage", "the roof"], 0),  # q9: A
]  # fmt: skip

# lvA: YouTube-style cues (clock times, shifted by its starting timestamp of 100 s);
# lvB: TikTok-style cues (seconds, an end that is null or a JSON integer -> duration).
LVB_SUBTITLES = {
    "lvA": [
        {"start": "00:01:30.000", "end": "00:01:31.000", "line": "before the clip"},
        {"start": "00:01:40.200", "end": "00:01:40.600", "line": "short cue"},
        {"start": "00:01:41.000", "end": "00:01:43.000", "line": "long cue"},
        {"start": "00:01:50.000", "end": "00:01:52.000", "line": "later cue"},
    ],
    "lvB": [
        {"timestamp": [0.0, 2], "text": "integer end"},
        {"timestamp": [0.5, None], "text": "open end"},
        {"timestamp": [0.25, 0.75], "text": "float end"},
    ],
    "lvC": [],
    "lvD": [],
}


def encode_clip(path: Path, seconds: float, fps: int = 8) -> None:
    """A plain 64x64 H.264 clip of `seconds`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = VideoSpec(path.stem, round(seconds * fps), fps, 64, 64, "right", 0, 0, ())
    encode_video(spec, path)


def write_table(path: Path, rows: list[dict]) -> Path:
    """`rows` as a TSV (the columns of the first row), Python lists as their repr."""
    columns = list(rows[0])
    lines = ["\t".join(columns)]
    lines += ["\t".join(str(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def write_tsv() -> Callable[[Path, list[dict]], Path]:
    return write_table


@pytest.fixture
def videomme_rows() -> list[dict]:
    """The rows of the Video-MME fixture, to edit into a broken TSV."""
    return _videomme_rows()


@pytest.fixture
def lvb_rows() -> list[dict]:
    """The rows of the LongVideoBench fixture, to edit into a broken TSV."""
    return _lvb_rows()


def _videomme_rows() -> list[dict]:
    rows = []
    for i, (video, task, question, candidates, answer) in enumerate(VIDEOMME_QUESTIONS):
        duration, domain, sub_category = VIDEOMME_VIDEOS[video]
        rows.append(
            {
                "index": i,
                "video": video,
                "video_path": f"./video/{video}.mp4",
                "duration": duration,
                "domain": domain,
                "candidates": candidates,
                "sub_category": sub_category,
                "task_type": task,
                "subtitle_path": f"./subtitle/{video}.srt",
                "question": question,
                "answer": answer,
            }
        )
    return rows


def _lvb_rows() -> list[dict]:
    rows = []
    for i, (video, category, question, candidates, choice) in enumerate(LVB_QUESTIONS):
        group, duration, offset = LVB_VIDEOS[video]
        rows.append(
            {
                "video_id": video,
                "question": question,
                "candidates": candidates,
                "correct_choice": choice,
                "question_category": category,
                "video_path": f"./videos/{video}.mp4",
                "subtitle_path": f"{video}_en.json",
                "duration_group": group,
                "starting_timestamp_for_subtitles": offset,
                "duration": duration,
                "index": i,
                "video": video,
            }
        )
    return rows


@pytest.fixture(scope="session")
def videomme_root(tmp_path_factory) -> Path:
    """Video-MME.tsv with video/<id>.mp4 and subtitle/<id>.srt beside it. Read-only."""
    root = tmp_path_factory.mktemp("Video-MME")
    for video in VIDEOMME_VIDEOS:
        encode_clip(root / "video" / f"{video}.mp4", seconds=2)
    (root / "subtitle").mkdir()
    (root / "subtitle" / "vmA.srt").write_text(VMA_SRT, encoding="utf-8")
    for video in ("vmB", "vmD"):
        (root / "subtitle" / f"{video}.srt").write_text(
            f"1\n00:00:00,100 --> 00:00:01,900\n{video} speaks.\n", encoding="utf-8"
        )
    write_table(root / "Video-MME.tsv", _videomme_rows())
    return root


@pytest.fixture(scope="session")
def longvideobench_root(tmp_path_factory) -> Path:
    """LongVideoBench.tsv with videos/<file> and subtitles/<id>_en.json. Read-only."""
    root = tmp_path_factory.mktemp("LongVideoBench")
    (root / "subtitles").mkdir()
    for video, (_, duration, _) in LVB_VIDEOS.items():
        encode_clip(root / "videos" / f"{video}.mp4", seconds=duration)
        cues = json.dumps(LVB_SUBTITLES[video])
        (root / "subtitles" / f"{video}_en.json").write_text(cues, encoding="utf-8")
    write_table(root / "LongVideoBench.tsv", _lvb_rows())
    return root
