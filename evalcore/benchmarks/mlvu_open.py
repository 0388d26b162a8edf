"""`benchmark: mlvu_open`: MLVU's open-ended tasks (sub_scene, summary), scored by an LLM
judge as VLMEvalKit's `MLVU_OpenEnded` scores and reports them.

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f05), reproduced in our code:

- Layout: vlmeval/dataset/mlvu.py `MLVU_OpenEnded.prepare_dataset` (its `generate_tsv`)
  writes `MLVU_OpenEnded.tsv` with columns task_type, prefix, duration, video, question,
  answer, scoring_points, index: one row per question of `sub_scene` (8_sub_scene.json,
  prefix `./MLVU/video/8_sub_scene`) and `summary` (9_summary.json, `./MLVU/video/
  9_summary`); `scoring_points` is empty for summary rows. The clip is `root/prefix/video`
  (`build_prompt`), the TSV in the Hugging Face snapshot of `MLVU/MVLU` beside `MLVU/`,
  as for the multiple-choice file (see `evalcore.benchmarks.mlvu`).
- Prompt: `MLVU_OpenEnded.build_prompt`: a system turn `SYS` (`BASE_SYS` + `Based on your
  observations, answer the given questions.`), the video, then the question as it is.
- Judge: `MLVU_OpenEnded.evaluate` builds one judge per task type with
  vlmeval/dataset/utils/mlvu.py `system_prompt_sub_scene` / `system_prompt_summary` as
  its system turn, always `gpt-4-0125` (gpt-4-0125-preview, OpenAIWrapper's temperature
  0); `MLVU_OpenEnded_generate` writes the user turn: the instruction line, then for
  summary `Standard Answer: {answer}` and for sub_scene `Question: {question}` and
  `Scoring Points: {scoring_points}`, then `Respondent's Answer: {prediction}`, each line
  ending in a newline. (The `check_ans_with_model_*` variants with indented prompts are
  not called.)
- Score: `MLVU_OpenEnded_extract` with `extract_scores_sub_scene` (keys score_accuracy,
  score_relevance) / `extract_scores_summary` (score_completeness, score_reliability) on
  the stripped reply: for each key, its first occurrence, then the text from two
  characters past the next `:` up to the next `,` (with no `,`: up to, not including, the
  last character) read as a float; the question's score is the sum of the two (2-10;
  sub_scene's accuracy may be fractional, an average over scoring points).
- Report: utils/mlvu.py `get_dimension_rating`: per task type, the sum of `int(score)`
  (each question's sum truncated) over its questions; the `MLVU` dataset adds `G-Avg` =
  those sums over sub_scene and summary / their questions (rounded to 2 places): a mean
  over questions of truncated scores, not a mean of the task means. Per task type here:
  the mean of the truncated scores (VLMEvalKit's concatenated table shows it x100 as
  `acc`, the multiple-choice tasks' scale).

Deliberate differences: a reply without both keys, whose number does not parse, or whose
score is outside 1-5 is no score (None). VLMEvalKit sums the keys it finds (a reply with
neither scores 0), stops the whole evaluation with a ValueError on a number it cannot
parse, and takes any number as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.benchmarks.mlvu import MLVU
from evalcore.dataset.sample import Sample
from evalcore.dataset.tsv import DatasetError, row_sample, tsv_video_path
from evalcore.models import ChatMessage
from evalcore.prompts import chat_messages

SUB_SCENE = "sub_scene"
SUMMARY = "summary"
SYSTEM_PROMPT = (
    "Carefully watch this video and pay attention to every detail. "
    "Based on your observations, answer the given questions."
)
JUDGE_INSTRUCTION = (
    "Please score the respondent's answer according to the steps in the Instructions. "
    "You must end with a JSON dict to store the scores.\n"
)

# utils/mlvu.py `system_prompt_sub_scene`, as VLMEvalKit sends it (newlines included)
SUB_SCENE_SYSTEM_PROMPT = """
##TASK DESCRIPTION:
You are required to evaluate a respondent's answer based on a provided question, some scoring \
points, and the respondent's answer. You should provide two scores. The first is the accuracy \
score, which should range from 1 to 5. The second is the relevance score, which should also \
range from 1 to 5. Below are the criteria for each scoring category.
##ACCURACY Scoring Criteria:
Evaluate the respondent's answer against specific scoring points as follows:
Score 1: The response completely misses the scoring point.
Score 3: The response mentions content related to the scoring point but is not entirely correct.
Score 5: The response accurately addresses the scoring point.
Calculate the average score across all scoring points to determine the final accuracy score.
##RELEVANCE Scoring Criteria:
Assess how the respondent's answer relates to the original question:
Score 1: The response is completely off-topic from the question.
Score 2: The response is partially related to the question but contains a significant amount of \
irrelevant content.
Score 3: The response primarily addresses the question, but the respondent seems uncertain \
about their own answer.
Score 4: The response mostly addresses the question and the respondent appears confident in \
their answer.
Score 5: The response is fully focused on addressing the question with no irrelevant content \
and demonstrates complete certainty.
----
##INSTRUCTION:
1. Evaluate Accuracy: First, assess and score each scoring point based on the respondent's \
answer. Calculate the average of these scores to establish the final accuracy score. Provide a \
detailed rationale before assigning your score.
2. Evaluate RELEVANCE: Assess the relevance of the respondent’s answer to the question. Note \
that when evaluating relevance, the correctness of the answer is not considered; focus solely \
on how relevant the answer is to the question. Provide a comprehensive rationale before \
assigning your score.
3. Output Scores in JSON Format: Present the scores in JSON format as follows:
{'score_accuracy': score_acc, 'score_relevance': score_rele, 'total_score': score_acc + \
score_rele}
"""

# utils/mlvu.py `system_prompt_summary`
SUMMARY_SYSTEM_PROMPT = """
##TASK DESCRIPTION:
You are required to evaluate the performance of the respondent in the video summarization task \
based on the standard answer and the respondent's answer. You should provide two scores. The \
first is the COMPLETENESS score, which should range from 1 to 5. The second is the RELIABILITY \
score, which should also range from 1 to 5. Below are the criteria for each scoring category:
##COMPLETENESS Scoring Criteria:
The completeness score focuses on whether the summary covers all key points and main \
information from the video.
Score 1: The summary hardly covers any of the main content or key points of the video.
Score 2: The summary covers some of the main content and key points but misses many.
Score 3: The summary covers most of the main content and key points.
Score 4: The summary is very comprehensive, covering most to nearly all of the main content and \
key points.
Score 5: The summary completely covers all the main content and key points of the video.
##RELIABILITY Scoring Criteria:
The reliability score evaluates the correctness and clarity of the video summary. It checks for \
factual errors, misleading statements, and contradictions with the video content. If the \
respondent's answer includes details that are not present in the standard answer, as long as \
these details do not conflict with the correct answer and are reasonable, points should not be \
deducted.
Score 1: Contains multiple factual errors and contradictions; presentation is confusing.
Score 2: Includes several errors and some contradictions; needs clearer presentation.
Score 3: Generally accurate with minor errors; minimal contradictions; reasonably clear \
presentation.
Score 4: Very accurate with negligible inaccuracies; no contradictions; clear and fluent \
presentation.
Score 5: Completely accurate with no errors or contradictions; presentation is clear and easy \
to understand.
----
##INSTRUCTION:
1. Evaluate COMPLETENESS: First, analyze the respondent's answer according to the scoring \
criteria, then provide an integer score between 1 and 5 based on sufficient evidence.
2. Evaluate RELIABILITY: First, analyze the respondent's answer according to the scoring \
criteria, then provide an integer score between 1 and 5 based on sufficient evidence.
3. Output Scores in JSON Format: Present the scores in JSON format as follows:
{'score_completeness': score_comp, 'score_reliability': score_reli, 'total_score': score_comp + \
score_reli}
"""


# task type -> (the judge's system prompt, the two keys whose scores are summed)
JUDGES: dict[str, tuple[str, tuple[str, str]]] = {
    SUB_SCENE: (SUB_SCENE_SYSTEM_PROMPT, ("score_accuracy", "score_relevance")),
    SUMMARY: (SUMMARY_SYSTEM_PROMPT, ("score_completeness", "score_reliability")),
}
PART_SCORES = (1.0, 5.0)  # each key's range in the judge's instructions
# MLVU_MCQ's task types: the multiple-choice adapter's (`benchmark: mlvu`)
MLVU_MCQ_TASKS = ("plotQA", "needle", "ego", "count", "order", "anomaly_reco", "topic_reasoning")


class MLVUOpenEnded(Benchmark):
    name = "mlvu_open"
    template = "mlvu-open-vlmevalkit-v1"
    rule = "mlvu-open-judge-scores-v1"
    breakdowns = MLVU.breakdowns  # task_type, as the multiple-choice adapter reports
    breakdown_values = MLVU.breakdown_values
    layout = (
        "VLMEvalKit's MLVU_OpenEnded.tsv (index, task_type sub_scene/summary, prefix, video, "
        "question, answer as free text, scoring_points for sub_scene, duration), video at "
        "root/prefix/video; VLMEvalKit writes it to $HF_HUB_CACHE (default ~/.cache/"
        "huggingface/hub)/datasets--MLVU--MVLU/snapshots/<revision>/, beside the videos"
    )
    judged = True
    metric = "mean score (2-10)"
    # Bump when a judge prompt or the reading of the judge's reply changes.
    judge_version = "mlvu-open-judge-v1"

    columns = ("task_type", "video", "question", "answer")

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        task = str(row["task_type"]).strip()
        if task not in JUDGES:
            hint = " (a multiple-choice task: benchmark mlvu)" if task in MLVU_MCQ_TASKS else ""
            raise DatasetError(
                f"{where}: task_type {task!r}{hint}; this adapter reads {', '.join(JUDGES)}"
            )
        if not str(row["answer"]).strip():
            raise DatasetError(f"{where}: empty answer")
        if task == SUB_SCENE and not str(row.get("scoring_points") or "").strip():
            raise DatasetError(f"{where}: a sub_scene question without scoring_points")
        return row_sample(
            name,
            sample_id,
            row,
            root,
            tsv_video_path(row),
            options=(),
            answer=str(row["answer"]),
            category=task,
        )

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return chat_messages(sample.question, system=SYSTEM_PROMPT)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(None, self.rule)  # free text: only the judge scores it

    def judge_messages(self, sample: Sample, prediction: str) -> tuple[ChatMessage, ...]:
        system, _ = JUDGES[sample.category]
        if sample.category == SUMMARY:
            given = f"Standard Answer: {sample.answer}\n"
        else:
            given = f"Question: {sample.question}\nScoring Points: {sample.row['scoring_points']}\n"
        user = f"{JUDGE_INSTRUCTION}{given}Respondent's Answer: {prediction}\n"
        return (ChatMessage(role="system", text=system), ChatMessage(role="user", text=user))

    def parse_judgement(self, sample: Sample, reply: str) -> float | None:
        _, keys = JUDGES[sample.category]
        return read_total(reply, keys)

    def overall(self, scores: Sequence[float | None]) -> float:
        """VLMEvalKit's `G-Avg`: the mean over questions of each score truncated to an
        int, a failure (None: no answer, or no score from the judge) counting 0 (a reply
        without scores is 0 there)."""
        return _mean([_counted(s) for s in scores])

    def breakdown_scores(
        self, scored: Sequence[tuple[Sample, float | None]]
    ) -> dict[str, dict[str, dict[str, float]]]:
        """`get_dimension_rating`: {"task_type": {task: {"accuracy": the mean truncated
        score (failures 0), "n": questions, "failed": failures}}}."""
        groups: dict[str, list[float | None]] = {}
        for sample, score in scored:
            groups.setdefault(sample.category, []).append(score)
        return {
            "task_type": {
                task: {
                    "accuracy": _mean([_counted(s) for s in scores]),
                    "n": len(scores),
                    "failed": sum(s is None for s in scores),
                }
                for task, scores in sorted(groups.items())
            }
        }


def read_total(reply: str, keys: tuple[str, str]) -> float | None:
    """The sum of the two keys' scores, read as `extract_scores_*` reads them; None when a
    key is missing, its number does not parse, or it is outside 1-5."""
    text = reply.strip()  # OpenAIWrapper strips the reply
    total = 0.0
    for key in keys:
        start = text.find(key)
        colon = text.find(":", start) if start >= 0 else -1
        if colon < 0:
            return None
        begin = colon + 2  # past ": "
        end = text.find(",", begin)  # -1: up to the last character, as there
        try:
            score = float(text[begin:end])
        except ValueError:
            return None
        if not PART_SCORES[0] <= score <= PART_SCORES[1]:  # also rejects nan
            return None
        total += score
    return total


def _counted(score: float | None) -> int:
    """`int(item['score'])`: truncated; a failure is 0."""
    return int(score) if score is not None else 0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
