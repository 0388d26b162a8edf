"""Task runs left open by a crashed flow run (its process gone) end Crashed when the next
flow run starts: those of every Crashed flow run, and in a flow-run retry those of its
own earlier attempt; task runs of live flow runs are left alone."""

from __future__ import annotations

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.states import Completed, Crashed, Pending, Running

from flows.cli.zombies import end_orphaned_task_runs


@task
def unit() -> None: ...


@flow
def pipeline() -> None: ...


def running_flow_run(client):
    return client.create_flow_run(pipeline, state=Running())


def task_run(client, flow_run_id, key: str, state=None):
    run = client.create_task_run(unit, flow_run_id, dynamic_key=key, state=Pending())
    client.set_task_run_state(run.id, state or Running(), force=True)
    return run.id


def state_of(client, task_run_id) -> tuple[str, str]:
    run = client.read_task_run(task_run_id)
    return run.state.type.value, run.state.message or ""


def test_open_task_runs_of_crashed_runs_and_of_earlier_attempts_end_crashed(prefect_harness):
    with get_client(sync_client=True) as client:
        crashed = running_flow_run(client)
        left_running = task_run(client, crashed.id, "a")
        left_pending = task_run(client, crashed.id, "b", Pending())
        finished = task_run(client, crashed.id, "c", Completed())
        client.set_flow_run_state(crashed.id, Crashed(message="no heartbeat"), force=True)
        alive = running_flow_run(client)
        busy = task_run(client, alive.id, "d")
        retried = running_flow_run(client)  # a flow-run retry starting: attempt 1 left this
        stale = task_run(client, retried.id, "e")

        assert end_orphaned_task_runs() >= 2  # (other tests' crashed runs may add some)
        assert state_of(client, left_running) == (
            "CRASHED",
            "its flow run crashed (its process is gone)",
        )
        assert state_of(client, left_pending)[0] == "CRASHED"
        assert state_of(client, finished)[0] == "COMPLETED"
        assert state_of(client, busy)[0] == "RUNNING"
        assert state_of(client, stale)[0] == "RUNNING"  # its flow run is not Crashed

        assert end_orphaned_task_runs(retried.id) >= 1
        state, message = state_of(client, stale)
        assert state == "CRASHED" and "left open by attempt" in message
        assert state_of(client, busy)[0] == "RUNNING"
