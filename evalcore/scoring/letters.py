"""Turn a model's free-form answer into an option letter, or None when it names none.

This is VLMEvalKit's generic multiple-choice reading: `ImageMCQDataset.evaluate_heuristic`
(vlmeval/dataset/image_mcq.py) -> utils/multiple_choice.py `mcq_vanilla_eval` ->
`eval_vanilla` -> `extract_answer_from_item`, which applies `can_infer`
(vlmeval/utils/matching_util.py; `evalcore.scoring.can_infer`) to the prediction with the
options as `build_choices` makes them (letter -> text) and asks its LLM judge only when
that reads nothing. Its video datasets have no generic evaluator (`VideoBaseDataset.evaluate`
is abstract); their multiple-choice rules fall back on the same `extract_answer_from_item`
(utils/mvbench.py and utils/mlvu.py `check_ans_with_model`, utils/longvideobench.py).

`can_infer`'s `Z` (a refusal, or a lone Z) names no option: None here, so our judge, if
configured, reads it (VLMEvalKit scores `Z` wrong without asking).
"""

from __future__ import annotations

from evalcore.dataset.sample import LETTERS
from evalcore.scoring.can_infer import can_infer


def extract_option_letter(text: str | None, options: tuple[str, ...] | list[str]) -> str | None:
    """The option letter `can_infer` reads from `text`: "B", "(B)", "Option B", "**B**",
    "[B]", "I choose B.", "The answer is B", or the one option whose text it holds."""
    if not text:
        return None
    choices = dict(zip(LETTERS, options, strict=False))  # as many letters as options
    read = can_infer(text, choices)
    return read if read is not None and read in choices else None
