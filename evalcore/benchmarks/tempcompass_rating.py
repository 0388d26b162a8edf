"""TempCompass's pooled report, as VLMEvalKit makes it (open-compass/VLMEvalKit, read at
e8e78f05), reproduced in our code:

- vlmeval/dataset/tempcompass.py `TempCompass` is a `ConcatVideoDataset` of
  `TempCompass_MCQ`, `TempCompass_Captioning` and `TempCompass_YorN`, in that order
  (`__init__`'s `DATASET_SETS`). vlmeval/dataset/video_concat_dataset.py
  `ConcatVideoDataset.evaluate` scores each file alone; each returns
  utils/tempcompass.py `get_dimension_rating`: `dim. task_type` -> [sum of `int(score)`,
  questions], in the order the keys first appear in the file. It merges them with
  `dict.update` in file order into one table, a row per `dim. task_type`.
- `TempCompass.evaluate` then sets each row's `acc` = round(success / overall * 100, 2)
  and appends a row per dim, per task type and `overall`, in the order each name is
  first met walking the rows (a row's dim, then its task type, then `overall`), each
  summing the success and overall counts of its rows: accuracy over the pooled
  questions (not a mean of the rows' accuracies), percent with two decimals.

So with all three files a dim's row pools its multi-choice, caption-matching, captioning
and yes/no questions. Deliberate differences: a failure counts 0 (VLMEvalKit's -1 takes
a right answer away), an unjudged captioning answer is in no row (see
`evalcore.scoring.unjudged`), and a question's value is its mean over trials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# `TempCompass.__init__` DATASET_SETS order, by the task types each file holds
_FILE_RANK = {"multi-choice": 0, "caption_matching": 0, "captioning": 1, "yes_no": 2}
DIM_TASK = "dim.task_type"  # the breakdown whose values are `get_dimension_rating`'s keys

Answers = Iterable[tuple[Mapping[str, str], float | None]]  # (breakdown values, value)


def dimension_rating(answers: Answers) -> dict[str, list[float]]:
    """`get_dimension_rating`: `dim. task_type` -> [success, overall], keys in the order
    first met; an answer without a value (unjudged) is in neither count."""
    rating: dict[str, list[float]] = {}
    for breakdown, value in answers:
        if value is None:
            continue
        counts = rating.setdefault(breakdown[DIM_TASK], [0.0, 0])
        counts[0] += value
        counts[1] += 1
    return rating


def _row(name: str, success: float, overall: float) -> dict:
    return {
        "dim.task_type": name,
        "success": success,
        "overall": int(overall),
        "acc": round(success / overall * 100, 2),
    }


def pooled_rating(files: Mapping[str, Answers]) -> tuple[list[str], list[dict]]:
    """`TempCompass.evaluate` over the files (dataset name -> its answers in file order):
    the files pooled, in VLMEvalKit's order (those without a valued answer left out), and
    the table's rows (`dim.task_type`, `success`, `overall`, `acc`). ValueError when two
    files hold the same `dim. task_type` (two copies of one file: VLMEvalKit has one)."""
    ratings = {name: dimension_rating(answers) for name, answers in files.items()}
    ratings = {name: rating for name, rating in ratings.items() if rating}

    def rank(name: str) -> tuple[int, str]:
        tasks = (key.split(". ", 1)[-1] for key in ratings[name])
        return min(_FILE_RANK.get(task, len(_FILE_RANK)) for task in tasks), name

    order = sorted(ratings, key=rank)
    merged: dict[str, list[float]] = {}
    owner: dict[str, str] = {}
    for name in order:
        for key in ratings[name]:
            if key in owner:
                raise ValueError(f"{owner[key]} and {name} both hold {key!r}: not pooled")
            owner[key] = name
        merged.update(ratings[name])
    rows = [_row(key, success, overall) for key, (success, overall) in merged.items()]
    totals: dict[str, list[float]] = {}
    for key, (success, overall) in merged.items():
        dim, task = key.split(". ", 1)
        for name in (dim, task, "overall"):
            counts = totals.setdefault(name, [0.0, 0])
            counts[0] += success
            counts[1] += overall
    rows += [_row(name, success, overall) for name, (success, overall) in totals.items()]
    return order, rows
