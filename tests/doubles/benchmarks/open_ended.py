"""Tiny datasets in VLMEvalKit's MMBench-Video, MLVU_OpenEnded and TempCompass_Captioning
layouts (real 1 s H.264 clips, TSVs in the benchmarks' own columns), plus fixed judge
replies whose scores and reports the tests work out by hand from VLMEvalKit's rules."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.benchmarks.mlvu_tempcompass import write_clip, write_tsv

# --- MMBench-Video --------------------------------------------------------------------

MMBENCH_VIDEO_COLUMNS = ("index", "video", "video_path", "question", "answer", "dimensions")

# (video, question, answer, fine dimensions); index = position. The coarse dimensions
# (utils/mmbench_video.py MMV_DIMENSIONS) are in the comments.
MMBENCH_VIDEO_QUESTIONS = [
    ("mmvA", "How many birds are there?", "Three birds.", ["Counting"]),  # q0 FP-S
    ("mmvA", "What does the sign say?", "It says OPEN, twice.", ["OCR", "Counting"]),  # q1 FP-S
    ("mmvA", "What is the video about?", "Bird watching.", ["Video Topic"]),  # q2 CP
    ("mmvB", "Where is the cup?", "On the table.", ["Spatial Relationship"]),  # q3 FP-C
    ("mmvB", "Why did the glass break?", "It fell.", ["Causal Reasoning"]),  # q4 TR
    (
        "mmvB",
        "What will the man do next?",
        "He will pick up the pieces.",
        ["Common Sense Reasoning", "Future Prediction"],
    ),  # q5 CSR, TR
    (
        "mmvC",
        "Is there a dog, and why does it bark?",
        "There is no dog.",
        ["Hallucination", "Causal Reasoning"],
    ),  # q6 HL (Perception) and TR (Reasoning)
    ("mmvC", "What is written on the truck?", "FRESH MILK", ["OCR"]),  # q7 FP-S
]


def mmbench_video_rows() -> list[dict]:
    return [
        {
            "index": i,
            "video": video,
            "video_path": f"video/{video}.mp4",
            "question": question,
            "answer": answer,
            "dimensions": str(dims),
        }
        for i, (video, question, answer, dims) in enumerate(MMBENCH_VIDEO_QUESTIONS)
    ]


def build_mmbench_video(root: Path, rows: list[dict] | None = None) -> Path:
    """`root/MMBench-Video.tsv` with its clips at root/video/<video>.mp4 (the snapshot's
    layout after unwrap_hf_pkl); returns the TSV path."""
    rows = mmbench_video_rows() if rows is None else rows
    for n, video in enumerate(sorted({r["video"] for r in rows})):
        write_clip(root / "video" / f"{video}.mp4", (30 * n % 256, 200, 80))
    columns = tuple(c for c in MMBENCH_VIDEO_COLUMNS if c in rows[0])
    return write_tsv(root / "MMBench-Video.tsv", rows, columns)


# --- MLVU open-ended ------------------------------------------------------------------

MLVU_OPEN_COLUMNS = (
    "task_type",
    "prefix",
    "duration",
    "video",
    "question",
    "answer",
    "scoring_points",
    "index",
)
MLVU_OPEN_PREFIX = {"sub_scene": "./MLVU/video/8_sub_scene", "summary": "./MLVU/video/9_summary"}
SUMMARY_QUESTION = "Please summarize this video, including its main content."
# (task_type, video, question, answer, scoring_points); index = position
MLVU_OPEN_QUESTIONS = [
    (
        "sub_scene",
        "s1.mp4",
        "What does the girl do after she opens the door?",
        "She waves at the postman and takes a parcel.",
        str(["waves at the postman", "takes a parcel"]),
    ),
    (
        "sub_scene",
        "s1.mp4",
        "Describe the scene in the kitchen.",
        "A man cuts onions while a kettle boils.",
        str(["cuts onions", "kettle boils", "a man"]),
    ),
    (
        "sub_scene",
        "s2.mp4",
        "What happens at the bus stop?",
        "Two boys argue and a bus arrives.",
        str(["two boys argue", "a bus arrives"]),
    ),
    (
        "sub_scene",
        "s2.mp4",
        "What is on the screen at the end?",
        "A red logo.",
        str(["a red logo"]),
    ),
    ("summary", "m1.mp4", SUMMARY_QUESTION, "A family prepares a picnic and eats in a park.", ""),
    ("summary", "m2.mp4", SUMMARY_QUESTION, "A cyclist rides through a city at night.", ""),
    ("summary", "m3.mp4", SUMMARY_QUESTION, "A cat explores an empty house.", ""),
]


def mlvu_open_rows() -> list[dict]:
    return [
        {
            "task_type": task,
            "prefix": MLVU_OPEN_PREFIX[task],
            "duration": 1.0,
            "video": video,
            "question": question,
            "answer": answer,
            "scoring_points": points,
            "index": i,
        }
        for i, (task, video, question, answer, points) in enumerate(MLVU_OPEN_QUESTIONS)
    ]


def build_mlvu_open(root: Path, rows: list[dict] | None = None) -> Path:
    """`root/MLVU_OpenEnded.tsv` and its clips under root/prefix/video."""
    rows = mlvu_open_rows() if rows is None else rows
    for n, (prefix, video) in enumerate(sorted({(r["prefix"], r["video"]) for r in rows})):
        write_clip(root / prefix / video, (120, 30 * n % 256, 60))
    return write_tsv(root / "MLVU_OpenEnded.tsv", rows, MLVU_OPEN_COLUMNS)


# --- TempCompass captioning -----------------------------------------------------------

TEMPCOMPASS_CAPTIONING_COLUMNS = (
    "task_type",
    "prefix",
    "suffix",
    "video",
    "question",
    "answer",
    "dim",
    "mc_question",
    "mc_answer",
    "index",
)
CAPTIONING_INSTRUCTION = (
    "You will be presented with a video and several pieces of information. One piece of "
    "information is consistent with the video while the others are not. Please identify the "
    "information that consistent with the video and generate a video caption accordingly."
)


def captioning_question(info: list[str], dim: str) -> str:
    """The question as TempCompass words it: the instruction, one `Information X:` line
    per piece of information, then `Generated Caption:`."""
    lines = [
        f"Information {chr(65 + i)}: {{'subject': 'man', '{dim}': '{value}'}}"
        for i, value in enumerate(info)
    ]
    return "\n".join([CAPTIONING_INSTRUCTION, *lines, "Generated Caption:"])


# (dim, video id, information values, answer, mc_question, mc_answer); index = position
TEMPCOMPASS_CAPTIONING_QUESTIONS = [
    (
        "action",
        "2001",
        ["dribbling a basketball", "dunking a basketball", "passing a basketball"],
        "B. dunking a basketball",
        "What is the man doing?\nA. dribbling a basketball\nB. dunking a basketball\n"
        "C. passing a basketball",
        "B. dunking a basketball",
    ),  # q0
    (
        "action",
        "2002",
        ["running", "swimming", "cycling"],
        "A. running",
        "What is the man doing?\nA. running\nB. swimming\nC. cycling",
        "A. running",
    ),  # q1
    (
        "direction",
        "2001",
        ["moving from left to right", "moving from right to left"],
        "A. moving from left to right",
        "In which direction is the man moving?\nA. from left to right\nB. from right to left",
        "A. from left to right",
    ),  # q2
    (
        "speed",
        "2002",
        ["at normal speed", "in slow motion", "fast forwarded"],
        "B. in slow motion",
        "What is the speed of the video?\nA. normal speed\nB. slow motion\nC. fast forward",
        "B. slow motion",
    ),  # q3
    (
        "speed",
        "2003",
        ["at normal speed", "in slow motion"],
        "A. at normal speed",
        "What is the speed of the video?\nA. normal speed\nB. slow motion",
        "A. normal speed",
    ),  # q4
    (
        "direction",
        "2003",
        ["moving towards the camera", "moving away from the camera"],
        "B. moving away from the camera",
        "In which direction is the man moving?\nA. towards the camera\nB. away from the camera",
        "B. away from the camera",
    ),  # q5
    (
        "action",
        "2003",
        ["reading a book", "writing a letter", "eating an apple", "drinking tea"],
        "D. drinking tea",
        "What is the man doing?\nA. reading a book\nB. writing a letter\n"
        "C. eating an apple\nD. drinking tea",
        "D. drinking tea",
    ),  # q6
    (
        "direction",
        "2002",
        ["moving up", "moving down"],
        "A. moving up",
        "In which direction is the man moving?\nA. up\nB. down",
        "A. up",
    ),  # q7
]


def tempcompass_captioning_rows() -> list[dict]:
    rows = []
    for i, (dim, video, info, answer, mc_question, mc_answer) in enumerate(
        TEMPCOMPASS_CAPTIONING_QUESTIONS
    ):
        rows.append(
            {
                "task_type": "captioning",
                "prefix": "./videos",
                "suffix": ".mp4",
                "video": video,
                "question": captioning_question(info, dim),
                "answer": answer,
                "dim": dim,
                "mc_question": mc_question,
                "mc_answer": mc_answer,
                "index": i,
            }
        )
    return rows


def build_tempcompass_captioning(root: Path, rows: list[dict] | None = None) -> Path:
    """`root/TempCompass_Captioning.tsv` and its clips under root/prefix/(video + suffix)."""
    rows = tempcompass_captioning_rows() if rows is None else rows
    clips = sorted({(r["prefix"], r["video"] + r["suffix"]) for r in rows})
    for n, (prefix, name) in enumerate(clips):
        write_clip(root / prefix / name, (60, 90, 30 * n % 256))
    return write_tsv(root / "TempCompass_Captioning.tsv", rows, TEMPCOMPASS_CAPTIONING_COLUMNS)
