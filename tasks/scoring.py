"""Judging and scoring of one model x dataset (all trials) from the durable logs.

The judge's modules (the HTTP client, the Dask fan-out) are imported by the tasks that
call a judge, not here: a run without a judge never loads them."""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evalcore.api.endpoint import EndpointSpec
from evalcore.cell import CellTrials
from evalcore.config import ApiSettings
from evalcore.reports import report_cell
from evalcore.workspace import Workspace
from tasks.secrets import KEY_RESOLVER, resolve_api_key


# Not Prefect-cached: the response cache already makes a repeat free, and a judge
# failure must be asked again next time (it is never cached).
@task(name="judge-extract", cache_policy=NO_CACHE, retries=1)
def judge_extract(trials: CellTrials, ws: Workspace, spec: EndpointSpec, api: ApiSettings):
    """The judge's readings of the answers the benchmark's rule cannot read."""
    from evalcore.judge import judge_unreadable

    summary = judge_unreadable(
        trials, ws, spec, api, resolve_api_key(spec), key_resolver=KEY_RESOLVER
    )
    counts = {k: v for k, v in asdict(summary).items() if k != "answers"}
    get_run_logger().info("%s: judge %s", trials.label, counts)
    return summary.answers


# Not Prefect-cached: verdicts are a durable log, so a repeat (or a flow-run retry) asks
# the judge only about answers without a current verdict: those that failed, or new ones.
@task(name="judge-answers", cache_policy=NO_CACHE, retries=1)
def judge_answers_task(
    trials: CellTrials, ws: Workspace, spec: EndpointSpec, api: ApiSettings
) -> dict:
    """The open-ended benchmark's judge over every answer without a current verdict."""
    from evalcore.judge.scores import judge_answers

    summary = judge_answers(trials, ws, spec, api, resolve_api_key(spec), key_resolver=KEY_RESOLVER)
    get_run_logger().info("%s: judge %s", trials.label, asdict(summary))
    if summary.failed:
        get_run_logger().warning(
            "%s: %d answer(s) unjudged (%s); asked again next run",
            trials.label,
            summary.failed,
            summary.failures,
        )
    return asdict(summary)


# Not cached: a pure, millisecond function of the logs that must always reflect them.
@task(name="score", cache_policy=NO_CACHE)
def score(
    trials: CellTrials, ws: Workspace, judged=None, judge: EndpointSpec | None = None
) -> dict:
    scores = None
    if trials.benchmark.judged:  # no judge: every answer stays unjudged
        from evalcore.judge.scores import current_scores

        scores = (
            current_scores(trials, ws, judge) if judge else {c.trial: {} for c in trials.trials}
        )
    return report_cell(trials, ws, judged, trials.card(judge.model if judge else None), scores)
