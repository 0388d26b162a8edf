"""Judging and scoring of one model x dataset (all trials) from the durable logs.

The judge's modules (the HTTP client, the Dask fan-out) are imported by the tasks that
call a judge, not here: a run without a judge never loads them."""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evalcore.api.endpoint import EndpointSpec
from evalcore.cell import CellTrials
from evalcore.config import ApiSettings, EvalConfig
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
    scores = None  # without a judge, a judged benchmark's answers stay unjudged
    if trials.benchmark.judged and judge is not None:
        from evalcore.judge.scores import current_scores

        scores = current_scores(trials, ws, judge)
    return report_cell(trials, ws, judged, trials.card(judge.model if judge else None), scores)


def judge_and_score(trials: CellTrials, ws: Workspace, config: EvalConfig) -> list:
    """Judge one model x dataset if a judge is configured (open-ended answers get
    verdicts; otherwise the judge reads the answers a multiple-choice rule cannot), then
    score it. Returns the judge's (unit name, state) if it failed (empty otherwise): the
    cell is scored all the same, its answers unjudged or unreadable."""
    judged, failed = None, []
    if config.judge is not None:
        judging = judge_answers_task if trials.benchmark.judged else judge_extract
        state = judging.with_options(task_run_name=f"judge {trials.label}")(
            trials, ws, config.judge, config.api, return_state=True
        )
        if not state.is_completed():
            failed.append((f"judge {trials.label}", state))
        elif judging is judge_extract:
            judged = state.result()
    score.with_options(task_run_name=f"score {trials.label}")(trials, ws, judged, config.judge)
    return failed
