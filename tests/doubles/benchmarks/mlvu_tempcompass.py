"""Tiny datasets in VLMEvalKit's MLVU_MCQ and TempCompass layouts: real 1 s H.264 clips
(64x64) and TSVs in the benchmarks' own columns, plus fixed model outputs whose scores
the tests work out by hand from VLMEvalKit's rules."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd

MLVU_COLUMNS = ("index", "task_type", "prefix", "duration", "video", "question", "answer")
TEMPCOMPASS_COLUMNS = ("index", "task_type", "prefix", "suffix", "video", "question", "answer")


def write_clip(path: Path, colour: tuple[int, int, int], seconds: int = 1, fps: int = 8) -> Path:
    """A solid-colour H.264 clip; the container follows the suffix (.mp4 or .mkv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "matroska" if path.suffix == ".mkv" else "mp4"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        image = np.empty((64, 64, 3), np.uint8)
        image[:] = colour
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_tsv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> Path:
    """Rows as VLMEvalKit writes them (pandas, tab-separated, lists as Python literals)."""
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in columns]
    table[[*columns, *extra]].to_csv(path, sep="\t", index=False)
    return path


# --- MLVU -----------------------------------------------------------------------------

# (task_type, video, question, candidates, answer text); index = position
MLVU_QUESTIONS = [
    ("plotQA", "p1.mp4", "What colour is the car?", ["red", "blue", "green", "white"], "blue"),
    ("plotQA", "p1.mp4", "Which animal appears?", ["a cat", "a dog", "a bird", "a horse"], "a dog"),
    ("needle", "n1.mp4", "What is on the table?", ["knife", "spoon", "fork", "cup"], "cup"),
    ("needle", "n1.mp4", "What does he hold?", ["knife", "spoon", "fork", "cup"], "spoon"),
    ("count", "c1.mp4", "How many cars pass?", ["2", "3", "4", "5"], "3"),
    ("count", "c1.mp4", "How many people wave?", ["2", "3", "4", "5"], "5"),
    (
        "order",
        "o1.mp4",
        "In which order does he act?",
        ["open, pour, stir", "pour, open, stir", "stir, pour, open"],
        "pour, open, stir",
    ),
    (
        "order",
        "o1.mp4",
        "In which order do the lights go on?",
        ["open, pour, stir", "pour, open, stir", "stir, pour, open"],
        "stir, pour, open",
    ),
    ("ego", "e1.mp4", "Where am I?", ["kitchen", "garden", "garage", "office"], "garden"),
    ("ego", "e1.mp4", "Where did I leave the keys?", ["bed", "car", "sofa", "office"], "office"),
    (
        "needle",
        "n1.mp4",
        "What is the man's hat?",
        ["a cap", "a beret", "none", "a helmet"],
        "a beret",
    ),
]
MLVU_PREFIX = {
    "plotQA": "./MLVU/video/1_plotQA",
    "needle": "./MLVU/video/2_needle",
    "ego": "./MLVU/video/3_ego",
    "count": "./MLVU/video/4_count",
    "order": "./MLVU/video/5_order",
}


def mlvu_rows() -> list[dict]:
    return [
        {
            "index": i,
            "task_type": task,
            "prefix": MLVU_PREFIX[task],
            "duration": 1.0,
            "video": video,
            "question": question,
            "answer": answer,
            "candidates": str(candidates),
        }
        for i, (task, video, question, candidates, answer) in enumerate(MLVU_QUESTIONS)
    ]


def build_mlvu(root: Path, rows: list[dict] | None = None) -> Path:
    """`root/MLVU_MCQ.tsv` and its clips under root/prefix/video; returns the TSV path."""
    rows = mlvu_rows() if rows is None else rows
    for n, (prefix, video) in enumerate(sorted({(r["prefix"], r["video"]) for r in rows})):
        write_clip(root / prefix / video, (40 * n % 256, 120, 200))
    return write_tsv(root / "MLVU_MCQ.tsv", rows, (*MLVU_COLUMNS, "candidates"))


# --- TempCompass ----------------------------------------------------------------------

# (task_type, dim, video id, suffix, question, candidates or None, answer); index = position
TEMPCOMPASS_QUESTIONS = [
    (
        "multi-choice",
        "action",
        "1001",
        ".mp4",
        "What is the man doing?",
        ["A. running", "B. walking", "C. swimming"],
        "A. running",
    ),
    (
        "multi-choice",
        "speed",
        "1001",
        ".mp4",
        "What is the speed of the video?",
        ["A. normal speed", "B. slow motion", "C. fast forward", "D. reverse"],
        "B. slow motion",
    ),
    (
        "multi-choice",
        "direction",
        "1003",
        ".mkv",
        "In which direction is the car moving?",
        ["A. left to right", "B. right to left", "C. towards the camera"],
        "C. towards the camera",
    ),
    (
        "multi-choice",
        "action",
        "1002",
        ".mp4",
        "What are the people doing?",
        ["A. dancing", "B. cooking", "C. sleeping", "D. reading"],
        "D. reading",
    ),
    ("yes_no", "action", "1001", ".mp4", "Is the man running?", None, "yes"),
    ("yes_no", "speed", "1001", ".mp4", "Is the video in slow motion?", None, "no"),
    ("yes_no", "direction", "1002", ".mp4", "Is the car moving to the left?", None, "yes"),
    ("yes_no", "speed", "1002", ".mp4", "Is the video fast forwarded?", None, "no"),
    (
        "caption_matching",
        "action",
        "1001",
        ".mp4",
        "Which caption matches the video better?",
        ["Caption A: The man is running.", "Caption B: The man is walking."],
        "Caption A: The man is running.",
    ),
    (
        "caption_matching",
        "direction",
        "1002",
        ".mp4",
        "Which description is a more suitable match for the video?",
        ["Option 1: The car moves left.", "Option 2: The car moves right."],
        "Option 2: The car moves right.",
    ),
    (
        "caption_matching",
        "speed",
        "1002",
        ".mp4",
        "Which sentence better captures the essence of the video?",
        ["Sentence A: The video is in slow motion.", "Sentence B: The video is at normal speed."],
        "Sentence A: The video is in slow motion.",
    ),
    (
        "caption_matching",
        "direction",
        "1001",
        ".mp4",
        "Which caption matches the video better?",
        ["Caption A: The ball rolls away.", "Caption B: The ball rolls closer."],
        "Caption B: The ball rolls closer.",
    ),
    ("yes_no", "direction", "1001", ".mp4", "Is the car moving to the right?", None, "no"),
]


def tempcompass_rows() -> list[dict]:
    rows = []
    for i, (task, dim, video, suffix, question, candidates, answer) in enumerate(
        TEMPCOMPASS_QUESTIONS
    ):
        row = {
            "index": i,
            "task_type": task,
            "prefix": "./videos",
            "suffix": suffix,
            "video": video,
            "question": question,
            "answer": answer,
            "dim": dim,
        }
        if candidates is not None:
            row["candidates"] = str(candidates)
        rows.append(row)
    return rows


def build_tempcompass(root: Path, rows: list[dict] | None = None) -> Path:
    """`root/TempCompass.tsv` (all three task types in one file) and its clips under
    root/prefix/(video + suffix); returns the TSV path."""
    rows = tempcompass_rows() if rows is None else rows
    clips = sorted({(r["prefix"], r["video"] + r["suffix"]) for r in rows})
    for n, (prefix, name) in enumerate(clips):
        write_clip(root / prefix / name, (200, 40 * n % 256, 90))
    return write_tsv(root / "TempCompass.tsv", rows, TEMPCOMPASS_COLUMNS)
