"""`benchmark: tempcompass_captioning`: TempCompass's captioning task, as VLMEvalKit's
`TempCompass_Captioning` runs it and has an LLM judge score it.

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f05), reproduced in our code:

- Layout: vlmeval/dataset/tempcompass.py `TempCompass_Captioning.prepare_dataset` (its
  `generate_tsv`) writes `TempCompass_Captioning.tsv` with columns task_type
  (`captioning`), prefix (`./videos`), suffix (`.mp4`), video (the video id), question,
  answer, dim, mc_question, mc_answer, index. `question` is the whole captioning
  instruction (its `Information A: {...}` lines and the closing `Generated Caption:`),
  `answer` the consistent information (`B. dunking a basketball`), `mc_question` a
  multiple-choice question with its lettered options and `mc_answer` its answer in the
  same `B. ...` form. The clip is `root/prefix/(video + suffix)` (`build_prompt`), the TSV
  in the Hugging Face snapshot of `lmms-lab/TempCompass` beside `videos/` (see
  `evalcore.benchmarks.tempcompass`). There are no options: the model writes a caption.
- Prompt: `TempCompass_Captioning.build_prompt`: no system turn, the video, then the
  question as it is (no instruction after it).
- Judge: `TempCompass_Captioning.evaluate` builds the judge with utils/tempcompass.py
  `sys_prompt` (`You are an AI assistant for question answering.`) as its system turn,
  by default `chatgpt-1106` (gpt-3.5-turbo-1106) with max_tokens 128, temperature 1.0,
  top_p 1, presence_penalty 1; `evaluate_tempcompass_captioning` writes the user turn:
  `system_prompt_captioning`, then `Video Description:{prediction}` (no space) and
  `Multi-Choice Question:` with `mc_question`, each line ending in a newline. The judge
  answers the multiple-choice question from the model's caption; neither `answer` nor
  `mc_answer` is shown to it.
- Verdict: `parse_llm_output` on the stripped reply: the last line containing `Answer`
  (case-sensitive), with `Answer:` removed and stripped, is the judge's answer (no such
  line: the whole reply); it is right (1) when its text before the first `. ` equals
  `mc_answer`'s and it holds exactly one of `A.`, `B.`, `C.`, `D.`, else wrong (0). So a
  bare `Answer: B` is wrong, and so is `None of the choices are correct` or any other
  reply (a verdict, not a failure); an empty reply (or `invalid_request_error`) is -1, the
  failure value.
- Report: `get_dimension_rating` counts `int(score)` per `dim. task_type`, and
  `TempCompass.evaluate` sums them per dim, per task type and overall: accuracy over
  questions, the breakdowns of `evalcore.benchmarks.tempcompass` (reused here), and the
  table pooled with the multi-choice and yes/no files (`tempcompass_rating`).

Deliberate differences: a failure (None: an empty reply, or no answer) counts 0 in the
means; VLMEvalKit adds its -1 to the sum, taking one right answer away.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.benchmarks.tempcompass import INSTRUCTIONS, TempCompass
from evalcore.dataset.sample import Sample
from evalcore.dataset.tsv import DatasetError, row_sample, tsv_video_path
from evalcore.models import ChatMessage
from evalcore.prompts import chat_messages

CAPTIONING = "captioning"
JUDGE_SYSTEM_PROMPT = "You are an AI assistant for question answering."  # `sys_prompt`

# utils/tempcompass.py `system_prompt_captioning`: the start of the judge's user turn
JUDGE_INSTRUCTIONS = """
You will receive a video description and a multi-choice question. Your task is to choose the \
correct answer and briefly explain the reason why you choose the answer. If none of the choice \
candidates are correct or the video description lacks enough information to answer the \
question, just answer "None of the choices are correct". Please organize your response in this \
format:
```
Reasoning: [Your reason to obtain the answer]
Answer: [Your answer]
```

Here are some examples of video description, multi-choice question and the expected answer:
```
Video Description: A person is palying football.
Multi-Choice Question:
What is the person doing in the video?
A. cooking
B. palying football
C. playing basketball
D. reading book
Reasoning: The video description mentions that the person is playing football.
Answer: B. palying football

Video Description: A bird is flying clockwise.
Multi-Choice Question:
In which direction is the bird flying?
A. backwark
B. counter-clockwise
C. clockwise
D. downward
Reasoning: The video description mentions that the bird is flying clockwise
Answer: C. clockwise

Video Description: An air balloon is inflating.
Multi-Choice Question:
What is happening to the air balloon?
A. exploding
B. getting smaller
C. flying
Reasoning: The video description mentions that the air balloon is inflating, while none of the \
coices can be explained as inflating.
Answer: None of the choices are correct
```
"""

_OPTION_MARKS = ("A.", "B.", "C.", "D.")  # what parse_llm_output counts
_FAILED_REPLIES = ("", "invalid_request_error")  # rating -1 there


class TempCompassCaptioning(Benchmark):
    name = "tempcompass_captioning"
    template = "tempcompass-captioning-vlmevalkit-v1"
    rule = "tempcompass-captioning-judge-verdict-v1"
    # dim, task_type, dim.task_type: as the multiple-choice adapter reports them
    breakdowns = TempCompass.breakdowns
    breakdown_values = TempCompass.breakdown_values
    # pooled with the multi-choice and yes/no files, as `TempCompass.evaluate` pools them
    pool = TempCompass.pool
    pooled_rating = TempCompass.pooled_rating
    layout = (
        "VLMEvalKit's TempCompass_Captioning.tsv (index, task_type captioning, dim, video id, "
        "prefix, suffix (the file extension), question, answer, mc_question, mc_answer), "
        "video at root/prefix/(video + suffix); VLMEvalKit writes it to $HF_HUB_CACHE "
        "(default ~/.cache/huggingface/hub)/datasets--lmms-lab--TempCompass/snapshots/"
        "<revision>/"
    )
    judged = True
    metric = "accuracy"
    # Bump when the judge's prompt or the reading of its verdict changes.
    judge_version = "tempcompass-captioning-judge-v1"

    columns = ("task_type", "video", "question", "answer", "mc_question", "mc_answer")

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        task = str(row["task_type"]).strip()
        if task != CAPTIONING:
            hint = " (benchmark tempcompass reads it)" if task in INSTRUCTIONS else ""
            raise DatasetError(f"{where}: task_type {task!r}{hint}; this adapter reads captioning")
        dim = str(row.get("dim") or row.get("dimension") or "").strip()
        if not dim:
            raise DatasetError(f"{where}: empty dim")
        for column in ("question", "mc_question", "mc_answer"):
            if not str(row[column]).strip():
                raise DatasetError(f"{where}: empty {column}")
        return row_sample(
            name,
            sample_id,
            row,
            root,
            # `suffix` is the file extension: the clip is prefix/(video + suffix)
            tsv_video_path(row, video=str(row["video"]) + str(row.get("suffix") or "")),
            options=(),
            answer=str(row["answer"]),
            category=dim,
        )

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return chat_messages(sample.question)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(None, self.rule)  # a caption: only the judge scores it

    def judge_messages(self, sample: Sample, prediction: str) -> tuple[ChatMessage, ...]:
        user = (
            f"{JUDGE_INSTRUCTIONS}\nVideo Description:{prediction}\n"
            f"Multi-Choice Question:\n{sample.row['mc_question']}\n"
        )
        return (
            ChatMessage(role="system", text=JUDGE_SYSTEM_PROMPT),
            ChatMessage(role="user", text=user),
        )

    def parse_judgement(self, sample: Sample, reply: str) -> float | None:
        return read_verdict(reply, str(sample.row["mc_answer"]))

    def overall(self, scores: Sequence[float | None]) -> float:
        """`TempCompass.evaluate`'s accuracy: right answers over questions, a failure
        (None: no answer, or an empty reply) counting 0."""
        return _mean([s or 0.0 for s in scores])

    def breakdown_scores(
        self, scored: Sequence[tuple[Sample, float | None]]
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Accuracy per value of each breakdown: {name: {value: {"accuracy", "n",
        "failed"}}}, failures counting 0."""
        groups: dict[str, dict[str, list[float | None]]] = {b: {} for b in self.breakdowns}
        for sample, score in scored:
            for name, value in self.breakdown_values(sample).items():
                groups[name].setdefault(value, []).append(score)
        return {
            name: {
                value: {
                    "accuracy": _mean([s or 0.0 for s in scores]),
                    "n": len(scores),
                    "failed": sum(s is None for s in scores),
                }
                for value, scores in sorted(values.items())
            }
            for name, values in groups.items()
        }


def read_verdict(reply: str, mc_answer: str) -> float | None:
    """`parse_llm_output`: 1.0 when the judge's answer is `mc_answer`'s option, 0.0 for
    any other reply; None for an empty one (VLMEvalKit's -1)."""
    text = reply.strip()  # OpenAIWrapper strips the reply
    if text in _FAILED_REPLIES:
        return None
    answer = text
    for line in text.split("\n"):
        line = line.strip()
        if "Answer" in line:  # the last such line wins, a `Reasoning:` line included
            answer = line.replace("Answer:", "").strip()
    marks = sum(answer.count(mark) for mark in _OPTION_MARKS)
    right = answer.split(". ")[0] == mc_answer.split(". ")[0] and marks == 1
    return 1.0 if right else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
