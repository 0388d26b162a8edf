"""An LLM as option extractor or judge, over the same cache and fan-out as evaluation.

A later judged benchmark builds `JudgeItem`s, calls `judge` with a runner (the Dask one
inside a Prefect task, the local one in scripts) and reads verdicts; no new plumbing.
The judge's template version is part of every cache key, so changing the instructions
below (and bumping the version) never reuses an old verdict.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evalcore.api.answers import AnswerStats, Runner, answer_jobs
from evalcore.api.cache import ResponseCache, response_key
from evalcore.api.client import ChatJob, ChatOutcome
from evalcore.api.endpoint import EndpointSpec
from evalcore.hashing import stable_hash

EXTRACT_TEMPLATE_VERSION = "option-extract-vlmevalkit-v1"
LETTERS = string.ascii_uppercase  # as evalcore.dataset.sample (not imported: it pulls pandas)


@dataclass(frozen=True)
class JudgeItem:
    """A model's free-text response to a multiple-choice question, to be mapped to a letter."""

    item_id: str
    question: str
    options: tuple[str, ...]
    response: str


@dataclass(frozen=True)
class Verdict:
    item_id: str
    letter: str | None  # None: the judge found no option, or the request failed
    raw: str | None  # the judge's text
    error_type: str | None = None
    error: str | None = None


def extraction_prompt(item: JudgeItem) -> str:
    """VLMEvalKit's choice-extraction instruction (vlmeval/dataset/utils/multiple_choice.py
    `build_prompt`): match the answer to the most similar option, Z when none is, two
    worked examples, then this item; options on one line as `A. x B. y`."""
    letters = LETTERS[: len(item.options)]
    options = " ".join(f"{letters[i]}. {opt}" for i, opt in enumerate(item.options))
    valid = ", ".join(letters)
    example = (
        "Question: What is the main object in image?\n"
        "Options: A. teddy bear B. rabbit C. cat D. dog\n"
    )
    return (
        "You are an AI assistant who will help me to match an answer with several options "
        "of a single-choice question. You are provided with a question, several options, "
        "and an answer, and you need to find which option is most similar to the answer. "
        "If the meaning of all options are significantly different from the answer, "
        f"output Z. Your should output a single uppercase character in {valid} "
        "(if they are valid options), and Z. \n"
        f"Example 1: \n{example}Answer: a cute teddy bear\nYour output: A\n"
        f"Example 2: \n{example}Answer: Spider\nYour output: Z\n"
        f"Example 3: \nQuestion: {item.question.strip()}?\nOptions: {options}\n"
        f"Answer: {item.response.strip()}\nYour output: "
    )


def _letter(text: str, n_options: int) -> str | None:
    """The judge's letter: its reply read as VLMEvalKit's `can_infer_option` reads it (a
    lone valid letter); Z, several letters or anything else is no answer."""
    found = {c for c in re.findall(r"\b([A-Z])\b", text.strip()) if c in LETTERS[:n_options]}
    return found.pop() if len(found) == 1 else None


def judge(
    items: Sequence[JudgeItem],
    spec: EndpointSpec,
    cache: ResponseCache,
    runner: Runner,
    prompt: Callable[[JudgeItem], str] = extraction_prompt,
    template_version: str = EXTRACT_TEMPLATE_VERSION,
) -> tuple[dict[str, Verdict], AnswerStats]:
    """A verdict per item; judge failures are verdicts without a letter and a typed error."""
    by_id = {it.item_id: it for it in items}
    jobs = []
    for it in items:
        text = prompt(it)
        context = stable_hash([spec.identity, template_version])
        key = response_key(context, text, [])
        jobs.append(ChatJob(it.item_id, text, key))
    verdicts: dict[str, Verdict] = {}

    def collect(o: ChatOutcome) -> None:
        item = by_id[o.job_id]
        if o.ok:
            verdicts[o.job_id] = Verdict(o.job_id, _letter(o.text or "", len(item.options)), o.text)
        else:
            verdicts[o.job_id] = Verdict(o.job_id, None, None, o.error_type, o.error)

    stats = answer_jobs(jobs, spec, cache, runner, collect)
    return verdicts, stats
