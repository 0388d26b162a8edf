"""lmms-eval's answer readers for the same benchmarks (EvolvingLMMs-Lab/lmms-eval, read at
75571cfe), reproduced in our code for the `lmms-eval` rule set
(`evalcore.scoring.rule_sets`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# lmms_eval/tasks/_task_utils/mcq_extract.py `_ANSWER_PHRASES` (lines 19-50)
_PHRASES = (
    "the answer is", "answer is", "the correct answer is", "correct answer is",
    "the best answer is", "best answer is", "the correct option is", "correct option is",
    "the best option is", "best option is", "the choice is", "choice is",
    "the correct choice is", "correct choice is", "i choose", "i select", "i pick",
    "my answer is", "my choice is", "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选",
    "答えは",
)  # fmt: skip
# `_FORMAT_PRIORITY` (lines 53-63): the higher, the surer
_START, _END, _PHRASE, _PARENS, _PERIOD, _COLON, _RIGHT_PAREN, _SPACE, _ANY = (
    10, 9, 7, 6, 5, 4, 3, 2, 0,
)  # fmt: skip


def extract_mcq_answer(response: str, letters: Sequence[str]) -> str | None:
    """mcq_extract.py `extract_mcq_answer` (lines 66-158), which lmms-eval's videomme and
    mlvu `extract_characters_regex` call with A-D: every capital of `letters` found as
    "(B)", "B.", "B:", "B)", "B ", after an answer phrase, standing first or last; the
    surest form wins, then the later position; any capital at all only when no form
    matched. Case-sensitive: "b" reads nothing."""
    if not response or not response.strip():
        return None
    text = response.strip()
    for char in ",.!?;:'\"":
        text = text.strip(char)
    text = f" {text} "
    found: list[tuple[int, int, str]] = []  # (priority, position, letter)
    for form, priority in (("({})", _PARENS), ("{}.", _PERIOD), ("{}:", _COLON),
                           ("{})", _RIGHT_PAREN), ("{} ", _SPACE)):  # fmt: skip
        found += [
            (priority, text.rfind(form.format(c)), c) for c in letters if form.format(c) in text
        ]
    lower = text.lower()
    for phrase in _PHRASES:
        at = lower.find(phrase)
        if at != -1:
            after = at + len(phrase)
            found += [
                (_PHRASE, text.find(c, after), c) for c in letters if text.find(c, after) != -1
            ]
    bare = text.strip()
    found += [
        (_START, 0, c)
        for c in letters
        if bare.startswith(c) and (len(bare) == 1 or not bare[1].isalpha())
    ]
    found += [
        (_END, len(text) - 1, c)
        for c in letters
        if bare.endswith(c) and (len(bare) == 1 or not bare[-2].isalpha())
    ]
    if not found:
        found = [(_ANY, text.rfind(c), c) for c in letters if c in text]
    # the sort is stable and descending on (priority, position): ties keep the first found
    return sorted(found, key=lambda f: (f[0], f[1]), reverse=True)[0][2] if found else None


# lmms_eval/tasks/longvideobench/utils.py `parse_multi_choice_response` (lines 187-213):
# the Video-MME list with its commas, without "Answer:" and "Option:"
LONGVIDEOBENCH_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!")  # fmt: skip
_OPTION_LINE = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_DIGIT_COMMA = re.compile(r"\d,\d")


def mvbench_letter(prediction: str) -> str | None:
    """lmms_eval/tasks/mvbench/utils.py `mcq_acc` -> `process` (lines 112-137), applied to
    the prediction and compared with the key letter: "B. text" reads B; else, after its
    punctuation pass, the first standalone letter A-E in any case ("a man ..." reads A);
    else the text itself, which never equals a letter: None here."""
    match = _OPTION_LINE.match(prediction.strip())
    if match:
        return match.group(1).upper()
    text = prediction.replace("\n", " ").replace("\t", " ").strip()
    text = _without_punctuation(text)
    text = text.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = re.search(r"\b([A-E])\b", text, re.IGNORECASE)
    return letter.group(1).upper() if letter else None


def _without_punctuation(text: str) -> str:
    """`processPunctuation` (lines 102-110): each mark deleted where it touches a space
    somewhere in the text (or the text has a digit,digit), else made a space; then up to
    32 dots not before a digit deleted (its `periodStrip.sub` passes re.UNICODE, 32, as
    the count)."""
    out = text
    for p in _PUNCTUATION:
        touching = p + " " in text or " " + p in text or _DIGIT_COMMA.search(text)
        out = out.replace(p, "" if touching else " ")
    return re.sub(r"\.(?!\d)", "", out, count=32)
