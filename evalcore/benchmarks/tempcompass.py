"""`benchmark: tempcompass`: TempCompass's multi-choice, yes/no and caption-matching
questions, as VLMEvalKit runs and scores them without an LLM.

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f05), reproduced in our code:

- Layout: vlmeval/dataset/tempcompass.py `TempCompass_MCQ.prepare_dataset` (its
  `generate_tsv`) writes `TempCompass_MCQ.tsv` (task_type `multi-choice` and
  `caption_matching`) with columns task_type, prefix, suffix, video, question, answer, dim,
  candidates, index; `TempCompass_YorN.prepare_dataset` writes `TempCompass_YorN.tsv`
  (task_type `yes_no`) with the same columns but no candidates. `question` is the first
  line of the original question, `candidates` (a Python list) its other lines, labels
  included: `A. dunking a basketball` (multi-choice; `answer` the same form) or
  `Option 1: ...` / `Sentence A: ...` / `Caption A: ...` (caption matching; `answer` one of
  the candidates); `answer` is `yes`/`no` for yes_no. `dim` is the temporal aspect (action,
  speed, direction, ...; the original questions' keys). The clip is `root/prefix/(video + suffix)`
  (`build_prompt`, `save_video_frames`): `video` is the video id, `prefix` `./videos` and
  `suffix` the file extension `.mp4`. So `suffix` is honoured here as VLMEvalKit does, in
  the video path: it is never prompt text there. Both TSVs are written into the Hugging
  Face snapshot of `lmms-lab/TempCompass` (vlmeval/smp/misc.py `get_cache_path`:
  `$HF_HUB_CACHE` or `~/.cache/huggingface/hub`, then
  `datasets--lmms-lab--TempCompass/snapshots/<revision>/`), not under `$LMUData`, beside
  `videos/`; point one dataset at each file. `TempCompass_Captioning` (task_type
  `captioning`) is scored only by an LLM there and is refused here.
- Prompt: `TempCompass_MCQ.build_prompt`, `qa_template`: no system turn, the video, then
  `{question}\\n{candidates joined by \\n}` and the text item
  `\\nPlease directly give the best option:`; `TempCompass_YorN.build_prompt`: the video,
  `{question}`, then `\\nPlease answer yes or no:`. What follows the question (candidate
  lines and instruction) is the sample's `prompt_extra`, so it is in every answer key.
- Rules (vlmeval/dataset/utils/tempcompass.py), applied to the prediction as recorded
  (VLMEvalKit strips nothing):
  multi-choice, `eval_rule_multi_choice`: right if the prediction equals `answer`; else a
  prediction that is `A`..`D`, or starts with `A.`..`D.` or `A)`..`D)`, is that letter,
  compared with `answer[0]`; anything else fails.
  caption_matching, `eval_rule_caption_matching`: the prediction is matched (later checks
  overriding earlier ones) against each whole candidate, each caption (after `: `, also
  the prediction's text after `) `), each label (`Option 1`) and the label without its
  Sentence/Option/Caption word (`1`), also with the prediction's dots removed; the match is
  right if it equals the answer, its label, its caption or its short label; no match fails.
  yes_no, `eval_rule_YorN`: the lower-cased prediction starting with `yes` is yes, with
  `no` is no (so `Not sure` is no), else it fails.
  A failure goes to the LLM judge when one is set (`evaluate_tempcompass_mcq`,
  `evaluate_tempcompass_YorN`; VLMEvalKit's asks it for Correct/Incorrect against the
  ground truth), else scores 0: here `extract` returns None (unreadable) and our judge,
  if configured, reads it.
- Report: `get_dimension_rating` counts hits per `dim. task_type`; `TempCompass.evaluate`
  sums them per dim, per task type and overall: each is accuracy over its questions, so
  our breakdowns `dim`, `task_type` and `dim.task_type` and the overall accuracy are
  VLMEvalKit's numbers for the rows loaded. VLMEvalKit's table pools the MCQ, captioning
  and yes/no files; with one dataset per TSV, each file's cell report also carries that
  pooled table over the model's TempCompass reports (`pool`, `tempcompass_rating`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from evalcore.benchmarks import tempcompass_rating
from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.dataset.sample import LETTERS, Sample
from evalcore.dataset.tsv import DatasetError, parse_candidates, row_sample, tsv_video_path
from evalcore.models import ChatMessage
from evalcore.prompts import chat_messages

MULTI_CHOICE = "multi-choice"
CAPTION_MATCHING = "caption_matching"
YES_NO = "yes_no"
# the text item each task type's build_prompt adds after the question
INSTRUCTIONS = {
    MULTI_CHOICE: "\nPlease directly give the best option:",
    CAPTION_MATCHING: "\nPlease directly give the best option:",
    YES_NO: "\nPlease answer yes or no:",
}
YES_NO_ANSWERS = ("yes", "no")
_MC_LETTERS = ("A", "B", "C", "D")  # eval_rule_multi_choice knows these four only
_LABEL_WORDS = ("Sentence ", "Option ", "Caption ")


class TempCompass(Benchmark):
    name = "tempcompass"
    template = "tempcompass-vlmevalkit-v1"
    rule = "tempcompass-rules-v1"
    breakdowns = ("dim", "task_type", "dim.task_type")
    layout = (
        "VLMEvalKit's TempCompass_MCQ.tsv or TempCompass_YorN.tsv (index, task_type "
        "multi-choice/caption_matching/yes_no, dim (or dimension), video id, prefix, suffix "
        "(the file extension), question, answer, candidates for the choice types), video at "
        "root/prefix/(video + suffix); VLMEvalKit writes them to $HF_HUB_CACHE (default "
        "~/.cache/huggingface/hub)/datasets--lmms-lab--TempCompass/snapshots/<revision>/"
    )

    columns = ("task_type", "video", "question", "answer")
    pool = "TempCompass"

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        task = row["task_type"].strip()
        if task not in INSTRUCTIONS:
            known = ", ".join(INSTRUCTIONS)
            hint = " (scored only by an LLM in VLMEvalKit)" if task == "captioning" else ""
            raise DatasetError(f"{where}: task_type {task!r}{hint}; this adapter reads {known}")
        dim = str(row.get("dim") or row.get("dimension") or "").strip()
        if not dim:
            raise DatasetError(f"{where}: empty dim")
        answer = row["answer"]
        if task == YES_NO:
            if answer not in YES_NO_ANSWERS:
                raise DatasetError(f"{where}: answer {answer!r} is neither 'yes' nor 'no'")
            options: tuple[str, ...] = ()
            key, extra = answer, ""
        else:
            candidates = parse_candidates(row.get("candidates", ""), where)
            options, key = _choices(task, candidates, answer, where)
            extra = "\n" + "\n".join(candidates)
        return row_sample(
            name,
            sample_id,
            row,
            root,
            # `suffix` is the file extension: the clip is prefix/(video + suffix)
            tsv_video_path(row, video=str(row["video"]) + str(row.get("suffix") or "")),
            options=options,
            answer=key,
            category=dim,
            prompt_extra=extra + INSTRUCTIONS[task],
        )

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return chat_messages(sample.question + sample.prompt_extra)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        task = _task(sample)
        if task == YES_NO:
            read = read_yes_no(prediction)
        elif task == MULTI_CHOICE:
            read = read_multi_choice(prediction, sample.row["answer"], sample.answer)
        else:
            candidates = parse_candidates(sample.row["candidates"], sample.sample_id)
            read = read_caption_matching(prediction, candidates, sample.row["answer"])
        return Extraction(read, self.rule)

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        dim, task = sample.category, _task(sample)  # category: the row's dim
        return {"dim": dim, "task_type": task, "dim.task_type": f"{dim}. {task}"}

    def judge_choices(self, sample: Sample) -> tuple[str, ...]:
        return YES_NO_ANSWERS if _task(sample) == YES_NO else sample.options

    def pooled_rating(
        self, files: Mapping[str, Iterable[tuple[Mapping[str, str], float | None]]]
    ) -> tuple[list[str], list[dict]]:
        """`TempCompass.evaluate`'s table over the files (`tempcompass_rating`)."""
        return tempcompass_rating.pooled_rating(files)

    def from_choice(self, sample: Sample, index: int) -> str:
        return YES_NO_ANSWERS[index] if _task(sample) == YES_NO else LETTERS[index]


def _task(sample: Sample) -> str:
    return sample.row["task_type"].strip()


def _choices(
    task: str, candidates: tuple[str, ...], answer: str, where: str
) -> tuple[tuple[str, ...], str]:
    """The options as the judge sees them and the key letter.

    Multi-choice candidates lose their own `A. ` labels when each has its place's letter
    (the judge letters them again); the key is `answer[0]`, as the rule compares.
    Caption-matching candidates stay whole; the key is the letter of the answer's place.
    """
    letters = LETTERS[: len(candidates)]
    if task == MULTI_CHOICE:
        if not answer or answer[0] not in letters:
            raise DatasetError(f"{where}: answer {answer!r} does not start with one of {letters}")
        labelled = all(c.startswith(f"{letters[i]}. ") for i, c in enumerate(candidates))
        options = tuple(c[3:] for c in candidates) if labelled else candidates
        return options, answer[0]
    for candidate in candidates:
        if ": " not in candidate:
            raise DatasetError(f"{where}: caption candidate {candidate!r} has no 'label: caption'")
    if answer not in candidates:
        raise DatasetError(f"{where}: answer {answer!r} is not one of the candidates")
    return candidates, letters[candidates.index(answer)]


def read_yes_no(prediction: str) -> str | None:
    """`eval_rule_YorN`: yes/no by how the lower-cased prediction starts."""
    said = prediction.lower()
    if said.startswith("yes"):
        return "yes"
    if said.startswith("no"):
        return "no"
    return None


def read_multi_choice(prediction: str, answer: str, key: str) -> str | None:
    """`eval_rule_multi_choice`: the letter read (compared with `answer[0]`, the `key`)."""
    if prediction == answer:
        return key
    if prediction in _MC_LETTERS:
        return prediction
    if prediction[:1] in _MC_LETTERS and prediction[1:2] in (".", ")"):
        return prediction[0]
    return None


def read_caption_matching(prediction: str, candidates: Sequence[str], answer: str) -> str | None:
    """`eval_rule_caption_matching`, as the letter of the option it matched: the answer's
    letter when VLMEvalKit's comparison says right (only that option can pass it),
    another's when wrong, None when nothing matched."""
    labels = [c.split(": ")[0] for c in candidates]
    captions = [c.split(": ")[1] for c in candidates]
    short = [_strip_label_word(label) for label in labels]
    n = len(candidates)
    matched: tuple[str, int] | None = None  # (the string matched, its option's place)
    for i, candidate in enumerate(candidates):
        if candidate == prediction:
            matched = candidate, i
    after_paren = prediction.split(") ")[1] if ") " in prediction else None
    for i, caption in enumerate(captions):
        if caption == prediction or caption == after_paren:
            matched = caption, i
    for i, label in enumerate(labels + short):
        if label == prediction or label == prediction.replace(".", ""):
            matched = label, i % n
    if matched is None:
        return None
    text, place = matched
    label_words = answer.split(": ")[0].split()
    right = (
        text == answer
        or text == answer.split(":")[0]
        or text == answer.split(": ")[1]
        or (len(label_words) > 1 and text == label_words[1])
    )
    return LETTERS[candidates.index(answer)] if right else LETTERS[place]


def _strip_label_word(label: str) -> str:
    for word in _LABEL_WORDS:
        label = label.replace(word, "")
    return label
