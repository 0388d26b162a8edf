"""VLMEvalKit's generic answer reading (vlmeval/utils/matching_util.py: `can_infer`,
`can_infer_option`, `can_infer_text`), which its video benchmarks fall back on when their
own regex reads nothing; reproduced here once, for every adapter that uses it.

`can_infer_option`: a refusal phrase gives `Z` (no option, on purpose); else a single
option letter standing among the last four words; else `Z` standing alone; else
"(correct) answer is X". `can_infer_text`: the one option whose text (any case) the
prediction contains, if the prediction is at most twice as long as all options together.
A prediction holding VLMEvalKit's API-failure text reads as nothing. (Its extra refusal
check behind the VERBOSE environment switch is treated as off.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

NO_CHOICE = "Z"
_API_FAILURE = "Failed to obtain answer via API"
_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_SEPARATORS = re.compile(r"[.()\[\],:;!*#{}]")
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def can_infer(prediction: str, choices: Mapping[str, str]) -> str | None:
    """The letter a prediction names (`Z`: none, on purpose), or None when it cannot
    tell. `choices`: letter -> option text."""
    return can_infer_option(prediction, "".join(choices)) or can_infer_text(prediction, choices)


def can_infer_option(prediction: str, letters: str) -> str | None:
    if _API_FAILURE in prediction:
        return None
    if any(refusal in prediction for refusal in _REFUSALS):
        return NO_CHOICE
    words = _SEPARATORS.sub(" ", prediction).split()
    named = [c for c in letters if c in words]
    if len(named) == 1:
        if words.index(named[0]) > len(words) - 5:  # among the last four words
            return named[0]
    elif not named and NO_CHOICE in words:
        return NO_CHOICE
    match = _ANSWER_IS.search(prediction)
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    return None


def can_infer_text(prediction: str, choices: Mapping[str, str]) -> str | None:
    said = prediction.lower()
    if len(said) > 2 * sum(len(text) for text in choices.values()):
        return None
    found = [letter for letter, text in choices.items() if text.lower() in said]
    return found[0] if len(found) == 1 else None
