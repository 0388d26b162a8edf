"""Flow runs whose process died (kill -9, OOM, a lost machine) are marked Crashed, not
left Running for ever: Prefect's own mechanism, set up by `evalcore serve`.

Every flow run the worker starts sends a heartbeat event every `HEARTBEAT_S`
(`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`; Prefect wants at least 30); an automation expects,
after each heartbeat, another one (or a final state) within `silence_s`, and when none
comes it sets the run Crashed. Then a retry or a new run resumes from the logs.
"""

from __future__ import annotations

from datetime import timedelta

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
