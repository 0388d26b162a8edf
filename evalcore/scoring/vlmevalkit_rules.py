"""VLMEvalKit's own answer checks for its video benchmarks (open-compass/VLMEvalKit, read
at e8e78f05), reproduced in our code; `evalcore.scoring.rule_sets` composes them into the
`vlmevalkit` and `evalcore` rule sets. Its generic `can_infer` is in
`evalcore.scoring.can_infer`."""

from __future__ import annotations

import re

# vlmeval/dataset/utils/videomme.py `extract_characters_regex` (lines 130-152; the same
# list in utils/longvideobench.py, lines 60-82) as Python reads it: two missing commas
# join four prefixes, so "Best answer: C" keeps "Best" and reads its B.
ANSWER_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
    "Answer:",
    "Option:",
)


def first_capital(
    prediction: str, letters: str, prefixes: tuple[str, ...] = ANSWER_PREFIXES
) -> str | None:
    """`extract_characters_regex`: the first of the capitals `letters` left after deleting
    each of `prefixes` (so "Answer: C" is C, not the A of "Answer"). Its "more than ten
    words without A-D" test changes nothing: no capital reads nothing anyway."""
    text = prediction.strip()
    for prefix in prefixes:
        text = text.replace(prefix, "")
    m = re.search(f"[{letters}]", text)
    return m.group(0) if m else None


def first_word_names(prediction: str, letters: str) -> list[str]:
    """vlmeval/dataset/utils/mvbench.py `check_ans_with_model` (lines 57-67), per letter:
    the letters x whose "(x)" the first space-separated word (lower-cased, dots removed)
    is part of, or which it contains. An empty first word is part of every "(x)"."""
    word = prediction.lower().strip().split(" ")[0]
    bare = word.replace(".", "")
    return [x for x in letters if bare in f"({x.lower()})" or f"({x.lower()})" in word]


def before_paren(prediction: str) -> str:
    """vlmeval/dataset/utils/mlvu.py `check_ans_with_model` (lines 65-68): a prediction
    holding `)` cut to the one character before its first `)` ("" when `)` comes first);
    else the whole prediction. The key letter is read when this equals it."""
    if ")" not in prediction:
        return prediction
    cut = prediction.index(")")
    return prediction[cut - 1 : cut]
