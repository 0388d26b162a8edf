"""Answer extraction as VLMEvalKit does it: the benchmark's rule first; only the answers
it cannot read go to the configured `judge:` (any OpenAI-compatible endpoint) with
VLMEvalKit's choice-extraction prompt. Requests go through the response cache and the
Dask fan-out, so a re-run (or a second cell with the same answer) costs no request.

Returns, per trial, sample id -> the answer the judge read (None: it read none, or the
request failed). A judge failure is never an answer: it stays unreadable and is
retried on the next scoring, never cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from evalcore.api.answers import AnswerStats, cluster_runner
from evalcore.api.cache import ResponseCache
from evalcore.api.endpoint import EndpointSpec
from evalcore.cell import CellTrials
from evalcore.config import ApiSettings
from evalcore.dataset.sample import LETTERS
from evalcore.judge.prompt import JudgeItem, judge
from evalcore.workspace import Workspace


@dataclass
class JudgeSummary:
    """What the judge stage did for one model x dataset (small: a task returns it)."""

    asked: int = 0  # answers the rule could not read
    read: int = 0  # of those, read by the judge
    requests: int = 0  # HTTP attempts (0 when all came from the response cache)
    cache_hits: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    answers: dict[int, dict[str, str | None]] = field(default_factory=dict)  # trial -> id -> a


def judge_unreadable(
    trials: CellTrials,
    ws: Workspace,
    spec: EndpointSpec,
    api: ApiSettings,
    api_key: SecretStr | None,
    client=None,
    key_resolver: str | None = None,
) -> JudgeSummary:
    """Ask the judge about every answer the benchmark's rule reads nothing in."""
    benchmark = trials.benchmark
    by_id = {s.sample_id: s for s in trials.samples}
    items: dict[int, list[JudgeItem]] = {}
    for trial, current in trials.current_records(ws).items():
        items[trial] = [
            JudgeItem(sid, by_id[sid].question, benchmark.judge_choices(by_id[sid]), rec.prediction)
            for sid, rec in current.records.items()
            if rec.ok
            and benchmark.judge_choices(by_id[sid])
            and benchmark.extract(by_id[sid], rec.prediction or "").answer is None
        ]
    summary = JudgeSummary()
    with ResponseCache(api.cache_path or ws.response_cache_path) as cache:
        for trial, trial_items in items.items():
            runner = cluster_runner(api, spec, api_key, key_resolver, client)

            verdicts, stats = judge(trial_items, spec, cache, runner)
            answers: dict[str, str | None] = {}
            for sid, verdict in verdicts.items():
                letter = verdict.letter
                sample = by_id[sid]
                answers[sid] = (
                    None if letter is None else benchmark.from_choice(sample, LETTERS.index(letter))
                )
            summary.answers[trial] = answers
            _add(summary, stats, len(trial_items), sum(a is not None for a in answers.values()))
    return summary


def _add(summary: JudgeSummary, stats: AnswerStats, asked: int, read: int) -> None:
    summary.asked += asked
    summary.read += read
    summary.requests += stats.requests
    summary.cache_hits += stats.cache_hits
    for k, v in stats.failures.items():
        summary.failures[k] = summary.failures.get(k, 0) + v
