"""A shard run as a flow run of `eval/shard` on the `gpu` work pool (`inference.placement:
pool`), from inside the shard task, which stays the unit of caching, naming and retry.

The task creates the flow run (one per attempt: `ShardOrder.idempotency_key`, so a
flow-run retry of a crashed parent finds the run its attempt left behind), labels it
with its eval flow run and task run (`evalcore.eval-run`, `evalcore.task-run`), and
waits for it:
- Completed: the summary its host wrote to the shared work dir is the task's result;
- Crashed (its host died: the zombie automation of `evalcore serve` sets that once its
  heartbeats stop), Failed or Cancelled: `PlacedShardFailed`, so Prefect retries the task and
  another host resumes the shard from the shared logs;
- still waiting for a worker after `deadline_s`, or running past deadline + startup:
  cancelled, then `PlacedShardFailed`.
"""

from __future__ import annotations

import json
import time

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.context import TaskRunContext
from prefect.states import Cancelling, Scheduled

from evalcore.config import ConfigError, EvalConfig
from evalcore.inference.torchrun.job import ShardPaths
from evalcore.inference.torchrun.placement import SHARD_DEPLOYMENT, PlacedShardFailed, ShardOrder

POLL_S = 2.0
FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


class PlacementUnavailable(ConfigError):
    """`placement: pool` on a server without the `eval/shard` deployment: the run
    stops before any work (exit 2) and says how to deploy it."""


def check_placement(config: EvalConfig) -> None:
    """Before any work: with `placement: pool`, the server must have `eval/shard`; a pool
    with no worker online is only logged (workers may start after the run)."""
    if config.inference.placement != "pool":
        return
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(SHARD_DEPLOYMENT)
        except ObjectNotFound:
            raise PlacementUnavailable(
                f"inference.placement: pool needs the {SHARD_DEPLOYMENT} deployment, which "
                "this Prefect server does not have: run `evalcore serve` (or `prefect deploy "
                "--all --prefect-file deployments/prefect.yaml`) against it (docs/cluster.md)"
            ) from None
        pool = deployment.work_pool_name
        online = [w for w in client.read_workers_for_work_pool(pool) if w.status == "ONLINE"]
    if not online:
        _logger().warning(
            "no worker of pool %r is online: shards wait for one (`evalcore worker --pool %s` "
            "on each GPU host) up to deadline_s",
            pool,
            pool,
        )


def _logger():
    """The run's logger inside a flow (the UI shows it), Prefect's own outside one."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("evalcore.placement")


def run_placed_shard(order: ShardOrder, paths: ShardPaths) -> dict:
    """Run `order` on the pool and return the summary its host wrote under `paths` (the
    cell's shard folders)."""
    logger = get_run_logger()
    context = TaskRunContext.get()
    task_run = context.task_run
    key = order.idempotency_key(str(task_run.flow_run_id), task_run.run_count)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(SHARD_DEPLOYMENT)
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"order": order.model_dump(mode="json")},
            state=Scheduled(),
            name=f"{order.label}".replace(" ", "-"),
            tags=["evalcore", "shard"],
            idempotency_key=key,
            # which run and task it belongs to; not `parent_task_run_id`: the server would
            # then force every state of the shard run onto this task run (subflow rule)
            labels={
                "evalcore.eval-run": str(task_run.flow_run_id),
                "evalcore.task-run": str(task_run.id),
            },
        )
        logger.info(
            "%s: flow run %s (%s) on pool %s",
            order.label,
            run.name,
            run.id,
            deployment.work_pool_name,
        )
        run = _wait(client, run.id, order, logger)
    state = run.state
    if state.type != StateType.COMPLETED:
        where = f" on worker {_host(run)}" if _host(run) else ""
        raise PlacedShardFailed(
            f"{order.label}: its flow run {run.name}{where} ended {state.name}: "
            f"{(state.message or '').strip()[:300]}"
        )
    path = paths.placed_summary(order.shard, order.shards, str(run.id))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlacedShardFailed(
            f"{order.label}: flow run {run.name} completed but its summary {path} cannot be "
            f"read ({exc}): is the work dir shared by the hosts?"
        ) from exc


def _wait(client, run_id, order: ShardOrder, logger):
    """Poll the flow run until it is final; cancel it past its limits."""
    settings = order.config.inference
    created = time.monotonic()
    started = None
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.type in FINAL:
            return run
        now = time.monotonic()
        if run.state is not None and run.state.type == StateType.RUNNING and started is None:
            started = now
            logger.info("%s: running on worker %s", order.label, _host(run) or "?")
        if started is None and now - created > settings.deadline_s:
            return _cancel(client, run, f"no worker took it within {settings.deadline_s:.0f} s")
        if started is not None and now - started > settings.deadline_s + settings.startup_s:
            return _cancel(
                client, run, f"still running after {settings.deadline_s + settings.startup_s:.0f} s"
            )
        time.sleep(POLL_S)


def _cancel(client, run, why: str):
    client.set_flow_run_state(run.id, Cancelling(message=why), force=True)
    raise PlacedShardFailed(f"flow run {run.name}: {why}; cancelled")


def _host(run) -> str:
    """The worker that took the flow run (`evalcore worker` names it after its host)."""
    return str((run.labels or {}).get("prefect.worker.name", ""))
