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

EXTRACT_TEMPLATE_VERSION = "option-extract-v1"
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
    options = "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(item.options))
    return (
        "You are matching an answer to the options of a multiple-choice question.\n"
        f"Question: {item.question.strip()}\nOptions:\n{options}\n"
        f"Answer: {item.response.strip()}\n"
        "Reply with the single letter of the option the answer chooses, "
        "or Z if it chooses none of them."
    )


def _letter(text: str, n_options: int) -> str | None:
    match = re.search(r"\b([A-Z])\b", text.strip().upper())
    if match and match.group(1) in LETTERS[:n_options]:
        return match.group(1)
    return None


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
        context = stable_hash(
            [
                spec.cache_namespace or spec.base_url,
                spec.model,
                spec.generation_params(),
                template_version,
            ]
        )
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
