"""`benchmark: mmbench_video`: MMBench-Video's free-text questions, scored 0-3 by an LLM
judge as VLMEvalKit scores and reports them.

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f05), reproduced in our code:

- Layout: vlmeval/dataset/mmbench_video.py `MMBenchVideo.prepare_dataset`: the Hugging
  Face snapshot of `opencompass/MMBench-Video` holds `MMBench-Video.tsv` (index, video,
  video_path, question, answer, dimensions, ...) and, unpacked from `video_pkl/` by
  `unwrap_hf_pkl`, `video/<video>.mp4`; `check_integrity` finds each clip at
  `snapshot/video_path`, so the TSV's folder is the root. `dimensions` is a Python list of
  the question's fine (L3) capabilities, e.g. `['Counting', 'OCR']`. A row without
  `video_path` is read at `video/<video>.mp4` (where `save_video_frames` looks).
- Prompt: `build_prompt_nopack` for frames (VLMEvalKit's `_nopack` configs; `pack`, which
  asks every question of a video at once as JSON, is not reproduced): a text item
  `FRAMES_TMPL_NOPACK` filled with the frame count, the frames, then
  `Question: {question}\\nAnswer: `, with no system turn. Here the frames come first in
  the one user turn, then the template and the question (our turns put the frames before
  a turn's text).
- Judge: `MMBenchVideo.evaluate` with vlmeval/dataset/utils/mmbench_video.py
  `system_prompt` as the system turn and `build_prompt`'s user turn
  `Question: {question}\\nGroundtruth answer: {answer}\\nCandidate answer: {prediction}\\n
  Your response: ` (run.py `get_judge_kwargs`: `gpt-4-turbo`, i.e. gpt-4-1106-preview,
  at OpenAIWrapper's temperature 0).
- Score: `evaluate` keeps a reply when `istype(reply, int)` (vlmeval/smp/misc.py: it
  `eval`s the reply, which OpenAIWrapper has stripped) and otherwise records -1, as for a
  question without a prediction; -1 is a failure in the report. Here the stripped reply is
  read as a Python integer literal (`ast.literal_eval`, never `eval`).
- Report: utils/mmbench_video.py `get_dimension_rating`: per fine dimension (`L3_DIMS`),
  the mean score of the questions listing it (a dimension listed twice counts twice), and
  per coarse dimension of `MMV_DIMENSIONS` (CP, FP-S, FP-C, HL, LR, AR, RR, CSR, TR, and
  Perception, Reasoning, Overall, their unions) the mean over the questions listing any
  of its fine dimensions, each question once. `_all` counts a failure as 0; `_valid`
  leaves failures out. Overall is so a mean over questions, not of dimension means.

Deliberate differences: a reply that reads as an integer outside 0-3 is no score (None;
VLMEvalKit would average a 4 or 7 in as it is, and treats a negative one as a failure), and
neither is `True`/`False` (ints to Python's `eval`). A question whose `dimensions` is empty
or names a dimension VLMEvalKit does not know is a load error (VLMEvalKit would leave it
out of every dimension, Overall included, or fail with a KeyError). Dimensions without
questions are left out of the tables (VLMEvalKit prints `nan`).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.dataset.sample import Sample
from evalcore.dataset.tsv import DatasetError, row_sample, tsv_video_path
from evalcore.models import ChatMessage

# MMBenchVideo.FRAMES_TMPL_NOPACK (VLMEvalKit's text, leading newline included)
FRAMES_TEMPLATE = (
    "\nYou will be provided with {} separate frames uniformly sampled from a video, "
    "the frames are provided in chronological order of the video.\n"
    "Please analyze these images and provide the answer to the question about the video "
    "content.\nPlease directly reply with your response to the only question.\n"
)

# utils/mmbench_video.py `system_prompt`, as VLMEvalKit sends it (newlines included)
JUDGE_SYSTEM_PROMPT = (
    "\nAs an AI assistant, your task is to evaluate a candidate answer in comparison to a "
    "given correct answer.\n"
    "The question itself, the correct 'groundtruth' answer, and the candidate answer will "
    "be provided to you.\n"
    "Your assessment should range from 0 to 3, based solely on the semantic similarity "
    "between the groundtruth and the candidate answer, disregarding any grammatical "
    "differences.\n"
    "A rating of 0 suggests no similarity, implying the candidate answer is entirely "
    "incorrect.\n"
    "A rating of 1 suggests low similarity, meaning the candidate answer is largely "
    "incorrect.\n"
    "A rating of 2 suggests high similarity, meaning the candidate answer is largely "
    "correct.\n"
    "Lastly, a rating of 3 indicates complete similarity, which means the candidate answer "
    "is entirely correct.\n"
    "Your response should be a single integer from 0, 1, 2, or 3.\n"
)
# utils/mmbench_video.py `build_prompt`
JUDGE_USER_TEMPLATE = "Question: {}\nGroundtruth answer: {}\nCandidate answer: {}\nYour response: "

# utils/mmbench_video.py MMV_DIMENSIONS: coarse dimension -> its fine (L3) dimensions
COARSE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "CP": ("Video Topic", "Video Emotion", "Video Scene", "Video Style"),
    "FP-S": (
        "OCR",
        "Object Recognition",
        "Attribute Recognition",
        "Event Recognition",
        "Human Motion",
        "Counting",
    ),
    "FP-C": ("Spatial Relationship", "Human-object Interaction", "Human Interaction"),
    "HL": ("Hallucination",),
    "LR": ("Structuralized Image-Text Understanding", "Mathematical Calculation"),
    "AR": ("Physical Property", "Function Reasoning", "Identity Reasoning"),
    "RR": ("Natural Relation", "Physical Relation", "Social Relation"),
    "CSR": ("Common Sense Reasoning",),
    "TR": ("Counterfactual Reasoning", "Causal Reasoning", "Future Prediction"),
}
FINE_DIMENSIONS = tuple(d for dims in COARSE_DIMENSIONS.values() for d in dims)
PERCEPTION = ("CP", "FP-C", "FP-S", "HL")
REASONING = ("LR", "AR", "RR", "CSR", "TR")
COARSE_DIMENSIONS["Perception"] = tuple(d for k in PERCEPTION for d in COARSE_DIMENSIONS[k])
COARSE_DIMENSIONS["Reasoning"] = tuple(d for k in REASONING for d in COARSE_DIMENSIONS[k])
COARSE_DIMENSIONS["Overall"] = COARSE_DIMENSIONS["Perception"] + COARSE_DIMENSIONS["Reasoning"]

SCORES = range(0, 4)  # what the judge is asked for


class MMBenchVideo(Benchmark):
    name = "mmbench_video"
    template = "mmbench-video-vlmevalkit-nopack-v1"
    rule = "mmbench-video-judge-score-v1"
    breakdowns = ("coarse", "fine")
    layout = (
        "VLMEvalKit's MMBench-Video.tsv (index, video, video_path, question, answer as free "
        "text, dimensions as a Python list of fine dimensions), the clip at root/video_path "
        "(default root/video/<video>.mp4); the Hugging Face snapshot of opencompass/"
        "MMBench-Video with video/ unpacked from video_pkl/ (VLMEvalKit's unwrap_hf_pkl)"
    )
    judged = True
    metric = "mean score (0-3)"
    # Bump when the judge's prompt or the reading of its reply changes.
    judge_version = "mmbench-video-judge-v1"

    columns = ("video", "question", "answer", "dimensions")

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        dims = parse_dimensions(row["dimensions"], where)
        for column in ("question", "answer"):
            if not str(row[column]).strip():
                raise DatasetError(f"{where}: empty {column}")
        return row_sample(
            name,
            sample_id,
            row,
            root,
            # no video_path: video/<video>.mp4, where VLMEvalKit's save_video_frames reads it
            tsv_video_path(row, prefix="video"),
            options=(),
            answer=str(row["answer"]),
            category=dims[0],
        )

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        text = FRAMES_TEMPLATE.format(len(timestamps)) + f"Question: {sample.question}\nAnswer: "
        return (ChatMessage(role="user", text=text, video=True),)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(None, self.rule)  # free text: only the judge scores it

    def judge_messages(self, sample: Sample, prediction: str) -> tuple[ChatMessage, ...]:
        user = JUDGE_USER_TEMPLATE.format(sample.question, sample.answer, prediction)
        return (
            ChatMessage(role="system", text=JUDGE_SYSTEM_PROMPT),
            ChatMessage(role="user", text=user),
        )

    def parse_judgement(self, sample: Sample, reply: str) -> float | None:
        return read_score(reply)

    def overall(self, scores: Sequence[float | None]) -> float:
        """VLMEvalKit's coarse `Overall` (`_all`): the mean score over questions, a
        failure (None: no answer, or no score from the judge) counting 0."""
        return _mean([s or 0.0 for s in scores])

    def breakdown_scores(
        self, scored: Sequence[tuple[Sample, float | None]]
    ) -> dict[str, dict[str, dict[str, float]]]:
        """`get_dimension_rating`: {"coarse"|"fine": {dimension: {"accuracy": the mean
        score with failures as 0 (`_all`), "valid": the mean without them (`_valid`;
        absent when all failed), "n": questions, "failed": failures}}}. A question counts
        in each fine dimension it lists and in each coarse dimension that has any of them,
        so the tables are not partitions (VLMEvalKit's own report)."""
        fine: dict[str, list[float | None]] = {d: [] for d in FINE_DIMENSIONS}
        coarse: dict[str, list[float | None]] = {d: [] for d in COARSE_DIMENSIONS}
        for sample, score in scored:
            dims = sample_dimensions(sample)
            for d in dims:
                fine[d].append(score)
            for name, members in COARSE_DIMENSIONS.items():
                if any(d in members for d in dims):
                    coarse[name].append(score)
        return {"coarse": _rating(coarse), "fine": _rating(fine)}

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        """For display only (a question is in several dimensions): the coarse and fine
        dimensions it counts in; `breakdown_scores` makes the tables."""
        dims = sample_dimensions(sample)
        coarse = [c for c, members in COARSE_DIMENSIONS.items() if any(d in members for d in dims)]
        return {"coarse": ", ".join(coarse), "fine": ", ".join(dims)}


def parse_dimensions(text: str, where: str) -> tuple[str, ...]:
    """The `dimensions` cell: a Python list of fine dimensions VLMEvalKit knows."""
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError) as exc:
        raise DatasetError(f"{where}: dimensions is not a Python list literal: {text!r}") from exc
    if not isinstance(value, list | tuple) or not value:
        raise DatasetError(f"{where}: dimensions must be a non-empty list: {text!r}")
    unknown = [d for d in value if d not in FINE_DIMENSIONS]
    if unknown:
        raise DatasetError(
            f"{where}: unknown dimension(s) {', '.join(map(repr, unknown))}; "
            f"VLMEvalKit's are {', '.join(FINE_DIMENSIONS)}"
        )
    return tuple(value)


def sample_dimensions(sample: Sample) -> tuple[str, ...]:
    return parse_dimensions(sample.row["dimensions"], sample.sample_id)


def read_score(reply: str) -> float | None:
    """The judge's reply as VLMEvalKit reads it: the whole (stripped) reply an integer,
    here one of 0-3; None otherwise (`3`, ` 2\\n` -> a score; `Score: 2`, `2.5`, `4`,
    `-1`, `True` -> None)."""
    try:
        value = ast.literal_eval(reply.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in SCORES:
        return None
    return float(value)


def _rating(groups: dict[str, list[float | None]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for name, scores in groups.items():
        if not scores:
            continue  # VLMEvalKit: nan
        valid = [s for s in scores if s is not None]
        row = {"accuracy": _mean([s or 0.0 for s in scores]), "n": len(scores)}
        if valid:
            row["valid"] = _mean(valid)
        row["failed"] = len(scores) - len(valid)
        table[name] = row
    return table


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
