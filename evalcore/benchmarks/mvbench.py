"""`benchmark: mvbench`: MVBench (20 temporal tasks) as VLMEvalKit lays it out, asks it
and scores it, so a number here can be set beside VLMEvalKit's.

Facts read in VLMEvalKit (vlmeval/dataset/mvbench.py, class `MVBench`, unless named
otherwise), reproduced here in our own code:

- Layout (`prepare_dataset` and its `generate_tsv`; `get_cache_path` in
  vlmeval/smp/misc.py): `MVBench.tsv` sits in the dataset folder, which is VLMEvalKit's
  Hugging Face snapshot of OpenGVLab/MVBench
  (`$HF_HUB_CACHE/datasets--OpenGVLab--MVBench/snapshots/<revision>/`), next to the
  unzipped `video/` tree; `$LMUData` receives only VLMEvalKit's extracted frames
  (`images/MVBench/`), never the TSV or the videos. Columns: task_type (one of the 20
  keys of `type_data_list`), prefix (the task's folder, relative to the dataset folder,
  e.g. `video/star/Charades_v1_480/`), data_type (`video`, `gif` or `frame`), bound
  (True/False), start, end (seconds), video, question, answer (the option's TEXT),
  candidates (a Python list), index.
- Paths (`save_video_into_images`, `load_into_video_and_process`): `root/prefix/video`
  exactly as written. The name keeps its own suffix (.mp4, .webm, .gif, .avi) and none
  is added, so `g.gif` is never looked for as `g.gif.mp4`; a `frame` row names a folder
  of 00001.jpg, 00002.jpg, ... (`read_frame`), shown at 3 fps (`read_frame`'s fps,
  `frame_fps`). The decoder needs no data_type: a folder is read as frames
  (`frames.decoders.FrameFolderSource`), any file by FFmpeg.
- Bounds (`save_video_into_images`, `load_into_video_and_process`): the clip is
  [start, end] only when `bound` is true; with bound false the whole video counts,
  whatever start and end say.
- Prompt (`build_prompt`, `qa_template`, `SYS`): the system prompt `SYS`; a user turn
  with the frames, "Question: {question}\\nOptions:\\n(A) ...\\n(B) ..." and then the text
  "\\nOnly give the best option."; an assistant turn "Best option:(" that the model's
  answer continues (a prefill; API endpoints take no prefill and get the rest).
- Correct option (`qa_template`, `evaluate`): the candidate equal to `answer` (the last
  one, should candidates repeat).
- Rule (`evaluate` -> `check_ans_with_model` in vlmeval/dataset/utils/mvbench.py):
  1. `check_ans`: the first space-separated word of the lower-cased prediction, dots
     removed, is part of "(x)" for the correct letter x, or contains "(x)" ("B",
     "b)", "(B)", "(b)." all name B; so does the word "a" name A);
  2. else `extract_answer_from_item` (vlmeval/dataset/utils/multiple_choice.py) ->
     `can_infer` (vlmeval/utils/matching_util.py): `can_infer_option` (a refusal phrase
     or a lone "Z" is the answer Z, never right; else the one option letter standing
     alone among the last 4 words; else "answer is X" for X in A-D), then
     `can_infer_text` (the one option whose text is in the prediction, for
     predictions at most twice as long as all options together);
  3. else the LLM judge; here `Extraction(None)`, which the run's judge, if any, reads.
- Report (`get_dimension_rating` in vlmeval/dataset/utils/mvbench.py): accuracy per
  task_type and overall.

Where we part from VLMEvalKit, on purpose:
- A first word that names more than one option ("(", ")", "" or dots: an empty answer
  included) counts for none; `check_ans` counts it right for every question.
- `get_dimension_rating` counts a score by its truth value, so a failed request (-1)
  and a row without a prediction (NaN) count as right there; here they count wrong.
- `can_infer`'s "Z" (a refusal such as "Cannot determine the answer", or a lone Z) is
  scored wrong there without asking the judge; here it is unreadable (None), as in the
  MLVU adapter: the report counts it so, and the run's judge, if any, reads it.
- `can_infer_option` has an extra refusal check switched on by the VERBOSE environment
  variable; we follow its default (off).
- The answer text is matched to a candidate exactly, then ignoring case and outer
  spaces; VLMEvalKit scores every answer of a row without an exact match wrong.
- Frames follow the run's `FrameSettings`. VLMEvalKit's MVBench always takes 8 frames
  per clip (`prepare_dataset` sets nframe = 8; `get_index`: segment midpoints, with
  start/end rounded to frame numbers, GIFs assumed 25 fps) and refuses fps sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.dataset.sample import LETTERS, Sample
from evalcore.dataset.tsv import DatasetError, parse_candidates, parse_seconds, row_sample
from evalcore.models import ChatMessage
from evalcore.scoring.rule_sets import read_letter

SYSTEM_PROMPT = (
    "Carefully watch the video and pay attention to the cause and sequence of events, "
    "the detail and movement of objects, and the action and pose of persons. "
    "Based on your observations, select the best option that accurately addresses the "
    "question.\n"
)
INSTRUCTION = "\nOnly give the best option."
ANSWER_PREFIX = "Best option:("
COLUMNS = ("task_type", "prefix", "bound", "start", "end", "video", "question", "answer",
           "candidates")  # fmt: skip

_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no", "", "nan", "none"}


class MVBench(Benchmark):
    name = "mvbench"
    template = "mvbench-v1"
    rule = "mvbench-check-ans-v1"
    breakdowns = ("task_type",)
    layout = (
        "VLMEvalKit's MVBench.tsv (task_type, prefix, data_type, bound, start, end, video, "
        "question, answer as the option's text, candidates, index) in its dataset folder: "
        "the Hugging Face snapshot of OpenGVLab/MVBench that VLMEvalKit downloads "
        "($HF_HUB_CACHE/datasets--OpenGVLab--MVBench/snapshots/<revision>/; $LMUData holds "
        "only VLMEvalKit's frames). Videos at <root>/<prefix>/<video>: .mp4, .webm, .gif "
        "files or folders of JPEG frames (3 fps); start/end used only where bound is True"
    )

    columns = COLUMNS

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        return _sample(name, sample_id, row, where, root)

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return (
            ChatMessage(role="system", text=SYSTEM_PROMPT),
            ChatMessage(role="user", text=render_question(sample) + INSTRUCTION, video=True),
            ChatMessage(role="assistant", text=ANSWER_PREFIX),
        )

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        letter = read_letter(self.name, self.rule_set, prediction, sample.options, sample.answer)
        return Extraction(letter, self.rule)


def render_question(sample: Sample) -> str:
    """`qa_template`: the question, then each option as "(A) text", one per line."""
    lines = [f"Question: {sample.question}", "Options:"]
    lines += [f"({LETTERS[i]}) {option}" for i, option in enumerate(sample.options)]
    return "\n".join(lines).rstrip()


def _sample(name: str, sample_id: str, row: dict, where: str, root: Path) -> Sample:
    options = parse_candidates(row["candidates"], where)
    if not row["task_type"].strip():
        raise DatasetError(f"{where}: empty task_type")
    start = end = None
    if _bound(row["bound"], where):  # else the whole video, whatever start and end say
        start = parse_seconds(row["start"], where, "start")
        end = parse_seconds(row["end"], where, "end")
        if start is None or end is None:
            raise DatasetError(f"{where}: bound is True but start or end is empty")
    return row_sample(
        name,
        sample_id,
        row,
        root,
        Path(row["prefix"]) / row["video"],  # as written: a .gif stays one, a folder too
        options=options,
        answer=_answer_letter(row["answer"], options, where),
        category=row["task_type"],
        start=start,
        end=end,
    )


def _bound(value: str, where: str) -> bool:
    """pandas writes the column as True/False; VLMEvalKit reads it back as booleans."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DatasetError(f"{where}: bound must be True or False, got {value!r}")


def _answer_letter(answer: str, options: tuple[str, ...], where: str) -> str:
    """The letter of the candidate equal to `answer` (the last, as `qa_template`), else
    of the one equal ignoring case and outer spaces. Never reads `answer` as a letter:
    "a" is the text of an option in Character Order."""
    exact = [i for i, option in enumerate(options) if option == answer]
    if exact:
        return LETTERS[exact[-1]]
    loose = [
        i for i, option in enumerate(options) if option.strip().lower() == answer.strip().lower()
    ]
    if loose:
        return LETTERS[loose[0]]
    raise DatasetError(f"{where}: answer {answer!r} is not one of the candidates {list(options)}")
