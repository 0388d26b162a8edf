"""Named answer rules: how each harness reads a model's answer into an option letter.

The same answers score differently under VLMEvalKit's and lmms-eval's readers (Video-MME:
VLMEvalKit reads no option text and no lower-case "answer is b"; lmms-eval's extractor
ranks letter forms). `read_letter` is the one place that reads an answer under a named
rule set, per benchmark; an adapter's `extract` is the `evalcore` set. Re-reading under
another set needs only the stored answer: no model is called, no key changes.

- `vlmevalkit`: VLMEvalKit's evaluate path without a judge (`exact_matching`), with
  `can_infer`'s `Z` (a refusal) as None.
  videomme / longvideobench: vlmeval/dataset/videomme.py `VideoMME.evaluate` (lines
  270-282) and longvideobench.py `LongVideoBench.evaluate` (lines 316-329):
  `extract_characters_regex` (utils/videomme.py 130-152: capitals A-D; utils/
  longvideobench.py 60-82: A-E), else `extract_option` (utils/videomme.py 121-127),
  whose choices come from "A." lines of the `question` column, which these TSVs lack:
  `can_infer` gets no choices and reads nothing, so option text is never read.
  mvbench: `MVBench.evaluate` (mvbench.py 399-421) -> utils/mvbench.py
  `check_ans_with_model` (54-71): the first word names the key (an empty or "(" first
  word names every letter, so the key), else `extract_answer_from_item`
  (utils/multiple_choice.py 359-383) -> `can_infer` with the options.
  mlvu: utils/mlvu.py `check_ans_with_model` (58-73): the character before the first
  ")" (or the whole answer) is the key, else `can_infer` with the options.
  generic: `can_infer` with the options (`evalcore.scoring.letters`).
- `lmms-eval`: lmms-eval's per-task readers. videomme and mlvu: `extract_characters_regex`
  (lmms_eval/tasks/videomme/utils.py 256-259, mlvu/utils.py 65-68) ->
  `_task_utils/mcq_extract.py` `extract_mcq_answer` with A-D; longvideobench:
  longvideobench/utils.py `parse_multi_choice_response` (187-213), whose random choice
  for an unread answer is None here (a reading must not depend on a seed); mvbench:
  mvbench/utils.py `mcq_acc` (97-146); generic: `extract_mcq_answer` with the options'
  letters (lmms-eval has no generic video task; its shared extractor is the nearest).
- `evalcore` (the default): ours. As `vlmevalkit`, but Video-MME and LongVideoBench give
  `can_infer` the real options (option text, "answer is b"), and MVBench counts a first
  word naming several letters for none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

from evalcore.dataset.sample import LETTERS
from evalcore.scoring.can_infer import can_infer
from evalcore.scoring.letters import extract_option_letter
from evalcore.scoring.lmms_eval_rules import (
    LONGVIDEOBENCH_PREFIXES,
    extract_mcq_answer,
    mvbench_letter,
)
from evalcore.scoring.vlmevalkit_rules import before_paren, first_capital, first_word_names


class RuleSet(StrEnum):
    """A harness whose answer reading a report can be scored under."""

    EVALCORE = "evalcore"
    VLMEVALKIT = "vlmevalkit"
    LMMS_EVAL = "lmms-eval"


DEFAULT_RULE_SET = RuleSet.EVALCORE

# (options, key letter or None) -> letter or None, after the text is read
Reader = Callable[[str, tuple[str, ...], str | None], str | None]


def read_letter(
    benchmark: str,
    rule_set: RuleSet | str,
    text: str | None,
    options: Sequence[str],
    key: str | None = None,
) -> str | None:
    """The option letter `text` names under `rule_set` for `benchmark` (an adapter's name),
    or None when it names none. `key`: the correct letter, which VLMEvalKit's MVBench and
    MLVU checks test the answer against (they credit the key, never read another letter
    first). KeyError for a benchmark without a letter rule (a judged one)."""
    reader = _READERS[(RuleSet(rule_set), benchmark)]
    return reader(text or "", tuple(options), key)


def has_letter_rule(benchmark: str) -> bool:
    """Whether `benchmark` reads answers into option letters (and so has rule sets)."""
    return (DEFAULT_RULE_SET, benchmark) in _READERS


def _choices(options: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(LETTERS, options, strict=False))


def _inferred(text: str, choices: dict[str, str]) -> str | None:
    """`can_infer`'s letter; its `Z` (a refusal) and nothing are None."""
    read = can_infer(text, choices)
    return read if read is not None and read in choices else None


def _regex_then_options(letters: str) -> Reader:
    """evalcore's Video-MME / LongVideoBench: VLMEvalKit's regex, then `can_infer` given
    the options as `extract_option` strips them (`strip('. \\n')`)."""

    def read(text: str, options: tuple[str, ...], key: str | None) -> str | None:
        letter = first_capital(text, letters)
        if letter is not None:
            return letter
        return _inferred(text, {k: v.strip(". \n") for k, v in _choices(options).items()})

    return read


def _regex_only(letters: str) -> Reader:
    def read(text: str, options: tuple[str, ...], key: str | None) -> str | None:
        return first_capital(text, letters)

    return read


def _mvbench(any_named: bool) -> Reader:
    """`check_ans_with_model`: the key when the first word names it (`any_named`: among
    others, as VLMEvalKit; else alone, as evalcore), else `can_infer`."""

    def read(text: str, options: tuple[str, ...], key: str | None) -> str | None:
        named = first_word_names(text, "".join(_choices(options)))
        if key is not None and (key in named if any_named else named == [key]):
            return key
        return _inferred(text, _choices(options))

    return read


def _mlvu(text: str, options: tuple[str, ...], key: str | None) -> str | None:
    if key is not None and before_paren(text) == key:
        return key
    return _inferred(text, _choices(options))


def _generic(text: str, options: tuple[str, ...], key: str | None) -> str | None:
    return extract_option_letter(text, options)


def _mcq_extract(letters: str | None) -> Reader:
    def read(text: str, options: tuple[str, ...], key: str | None) -> str | None:
        return extract_mcq_answer(text, letters or "".join(_choices(options)))

    return read


def _lmms_longvideobench(text: str, options: tuple[str, ...], key: str | None) -> str | None:
    return first_capital(text, "ABCDE", LONGVIDEOBENCH_PREFIXES)


def _lmms_mvbench(text: str, options: tuple[str, ...], key: str | None) -> str | None:
    return mvbench_letter(text)


_READERS: dict[tuple[RuleSet, str], Reader] = {
    (RuleSet.EVALCORE, "videomme"): _regex_then_options("ABCD"),
    (RuleSet.EVALCORE, "longvideobench"): _regex_then_options("ABCDE"),
    (RuleSet.EVALCORE, "mvbench"): _mvbench(any_named=False),
    (RuleSet.EVALCORE, "mlvu"): _mlvu,
    (RuleSet.EVALCORE, "generic"): _generic,
    (RuleSet.VLMEVALKIT, "videomme"): _regex_only("ABCD"),
    (RuleSet.VLMEVALKIT, "longvideobench"): _regex_only("ABCDE"),
    (RuleSet.VLMEVALKIT, "mvbench"): _mvbench(any_named=True),
    (RuleSet.VLMEVALKIT, "mlvu"): _mlvu,
    (RuleSet.VLMEVALKIT, "generic"): _generic,
    (RuleSet.LMMS_EVAL, "videomme"): _mcq_extract("ABCD"),
    (RuleSet.LMMS_EVAL, "longvideobench"): _lmms_longvideobench,
    (RuleSet.LMMS_EVAL, "mvbench"): _lmms_mvbench,
    (RuleSet.LMMS_EVAL, "mlvu"): _mcq_extract("ABCD"),
    (RuleSet.LMMS_EVAL, "generic"): _mcq_extract(None),
}
