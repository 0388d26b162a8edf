"""`benchmark: mlvu`: MLVU's seven multiple-choice tasks, as VLMEvalKit runs them (MLVU_MCQ).

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f05), reproduced in our code:

- Layout: vlmeval/dataset/mlvu.py `MLVU_MCQ.prepare_dataset` (its `generate_tsv`) writes
  `MLVU_MCQ.tsv` with columns task_type, prefix, duration, video, question, answer,
  candidates, index: one row per question of plotQA, needle, ego, count, order,
  anomaly_reco, topic_reasoning (`MLVU_MCQ.__init__` `type_data_list`). `answer` is the
  correct option's text, `candidates` a Python list, and the clip is `root/prefix/video`
  (`build_prompt`, `save_video_frames`), `video` carrying its extension and `prefix` e.g.
  `./MLVU/video/1_plotQA`. The TSV is written into the Hugging Face snapshot of the
  dataset repo `MLVU/MVLU` (vlmeval/smp/misc.py `get_cache_path`, smp/file.py
  `HFCacheRoot`: `$HF_HUB_CACHE` or `~/.cache/huggingface/hub`, then
  `datasets--MLVU--MVLU/snapshots/<revision>/MLVU_MCQ.tsv`), not under `$LMUData`; the
  videos are beside it, so the root defaults right. The open-ended tasks (sub_scene,
  summary: `MLVU_OpenEnded`) are scored only by an LLM and are not this adapter's.
- Prompt: `MLVU_MCQ.build_prompt` and `qa_template`: a system turn `SYS`, the video, then
  `Question: {question}\\nOptions:\\n(A) {c0}\\n(B) {c1}...` with trailing whitespace
  stripped, then the text item `\\nOnly give the best option.` (VLMEvalKit's text items are
  joined here as they are).
- Rule: `MLVU_MCQ.evaluate` and vlmeval/dataset/utils/mlvu.py `check_ans_with_model`: the
  key is the letter of the candidate equal to `answer`; a prediction containing `)` is cut
  to the one character before its first `)`; it is right if that (or the whole prediction,
  without a `)`) equals the key letter, else if `extract_answer_from_item`
  (utils/multiple_choice.py) reads the key letter: `can_infer` (vlmeval/utils/
  matching_util.py: `can_infer_option`, then `can_infer_text`), and only when that reads
  nothing, the LLM judge (VLMEvalKit's default `chatgpt-0125`; `exact_matching`: wrong).
  So `extract` returns the key letter when either reading gives it, else `can_infer`'s
  letter (wrong), else None: unreadable, for our judge.
- Report: utils/mlvu.py `get_dimension_rating` counts hits per task_type; `MLVU.evaluate`
  (the `MLVU` dataset, which VLMEvalKit's `MLVU_*frame` configs run) adds `M-Avg` =
  hits summed over the seven tasks / questions summed over them: accuracy over questions
  (not the MLVU paper's mean of the task accuracies), which is our overall accuracy.

Deliberate differences: VLMEvalKit scores a prediction containing its API-failure string as
-1 (subtracted from the hits); our failures are records, counted as wrong (0). Its
`can_infer_option` returns `Z` for a refusal ("Sorry, I can't help with images of people
yet." ...) or a lone `Z`, scored wrong without asking the judge; here that is unreadable
(None). Its VERBOSE environment switch is taken as unset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.dataset.sample import LETTERS, Sample
from evalcore.dataset.tsv import DatasetError, parse_candidates, row_sample, tsv_video_path
from evalcore.models import ChatMessage
from evalcore.prompts import chat_messages
from evalcore.scoring.rule_sets import read_letter

SYSTEM_PROMPT = (
    "Carefully watch this video and pay attention to every detail. "
    "Based on your observations, select the best option that accurately addresses the question."
)
ANSWER_INSTRUCTION = "\nOnly give the best option."


class MLVU(Benchmark):
    name = "mlvu"
    template = "mlvu-vlmevalkit-v1"
    rule = "mlvu-check-ans-v1"
    breakdowns = ("task_type",)
    layout = (
        "VLMEvalKit's MLVU_MCQ.tsv (index, task_type, prefix, video, question, answer as "
        "option text, candidates, duration), video at root/prefix/video; VLMEvalKit writes it "
        "to $HF_HUB_CACHE (default ~/.cache/huggingface/hub)/datasets--MLVU--MVLU/snapshots/"
        "<revision>/MLVU_MCQ.tsv, beside the videos"
    )

    columns = ("task_type", "video", "question", "answer", "candidates")

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        options = parse_candidates(row["candidates"], where)
        # MLVU_MCQ.qa_template: the candidate equal to `answer` (the last one, if repeated)
        matches = [i for i, c in enumerate(options) if c == row["answer"]]
        if not matches:
            raise DatasetError(f"{where}: answer {row['answer']!r} is not one of the candidates")
        if not row["task_type"].strip():
            raise DatasetError(f"{where}: empty task_type")
        return row_sample(
            name,
            sample_id,
            row,
            root,
            tsv_video_path(row),
            options=options,
            answer=LETTERS[matches[-1]],
            category=row["task_type"],
        )

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return chat_messages(render_prompt(sample.question, sample.options), system=SYSTEM_PROMPT)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        letter = read_letter(self.name, self.rule_set, prediction, sample.options, sample.answer)
        return Extraction(letter, self.rule)

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        return {"task_type": sample.category}


def render_prompt(question: str, options: Sequence[str]) -> str:
    """`MLVU_MCQ.qa_template` then the answer instruction of `build_prompt`."""
    text = f"Question: {question}\nOptions:\n"
    text += "".join(f"({LETTERS[i]}) {option}\n" for i, option in enumerate(options))
    return text.rstrip() + ANSWER_INSTRUCTION
