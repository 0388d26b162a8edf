"""Flow runs whose process died (kill -9, OOM, a lost machine) are marked Crashed, not
left Running for ever: Prefect's own mechanism, set up by `evalcore serve`.

Every flow run the worker starts sends a heartbeat event every `HEARTBEAT_S`
(`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`; Prefect wants at least 30); an automation expects,
after each heartbeat, another one (or a final state) within `silence_s`, and when none
comes it sets the run Crashed. Then a retry or a new run resumes from the logs.

Prefect ends the task runs of a cancelled flow run, not those of a crashed one: they
would stay Running (a bar without end in the run's timeline) for ever. Every `eval` and
`leaderboard` flow run, when it starts, ends them (`end_orphaned_task_runs`, a hook):
those of every crashed flow run, and, in a flow-run retry, those its own earlier
attempt left behind.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

AUTOMATION = "evalcore: crash zombie flow runs"
HEARTBEAT_S = 30


def create_zombie_automation(silence_s: float = 3 * HEARTBEAT_S) -> str:
    """Create (or replace) the automation on the configured API; returns its id."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    try:
        Automation.read(name=AUTOMATION).delete()  # `serve` again: one automation, new settings
    except ValueError:
        pass
    automation = Automation(
        name=AUTOMATION,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {silence_s:.0f} s: its process is gone "
                "(kill -9, out of memory, lost machine); retry it or run again to resume",
            )
        ],
    ).create()
    return str(automation.id)


OPEN_TASK_STATES = ("PENDING", "RUNNING", "SCHEDULED", "PAUSED")


def end_orphaned_task_runs(flow_run_id: UUID | None = None, limit: int = 200) -> int:
    """Set Crashed (forced) the task runs no process will finish: those still open under a
    Crashed flow run and, given `flow_run_id` (a flow run now starting, its task runs
    not yet created), those its earlier attempts left open. Returns how many."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    still_open = TaskRunFilter(
        state=TaskRunFilterState(
            type=TaskRunFilterStateType(any_=[StateType(s) for s in OPEN_TASK_STATES])
        )
    )
    crashed = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED]))
    ended = 0
    with get_client(sync_client=True) as client:
        orphans = [
            (run, "its flow run crashed (its process is gone)")
            for run in client.read_task_runs(
                flow_run_filter=FlowRunFilter(state=crashed),
                task_run_filter=still_open,
                limit=limit,
            )
        ]
        if flow_run_id is not None:
            orphans += [
                (
                    run,
                    f"left open by attempt {run.flow_run_run_count} of its flow run, "
                    "whose process is gone",
                )
                for run in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    task_run_filter=still_open,
                    limit=limit,
                )
            ]
        for run, why in orphans:
            client.set_task_run_state(run.id, Crashed(message=why), force=True)
            ended += 1
    return ended
