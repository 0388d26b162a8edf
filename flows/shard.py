"""The `eval/shard` flow: one torchrun shard of a cell, on the host whose worker of the
`gpu` pool took it (`inference.placement: pool`, docs/cluster.md).

The eval flow's shard task (`tasks.placement`) creates the run and waits for it; this
flow rebuilds the cell and shard from the order, takes a free device group of its host
under a host-local lock, and runs the same shard code as a local shard (the preload
server, watchdog and parent-death signals stay on the host that owns the ranks). What it
returns goes to the shared work dir, where the waiting task reads it.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from evalcore.atomic import atomic_write_text
from evalcore.inference.torchrun.placement import (
    ShardOrder,
    device_lock_dir,
    host_device_groups,
    take_device_group,
)
from evalcore.inference.torchrun.shard import infer_shard, shard_paths
from evalcore.storage import check_storage


@flow(name="eval", log_prints=True)
def shard_flow(order: ShardOrder) -> dict:
    """Answer one shard of one cell on this host (resumes from the shared logs)."""
    logger = get_run_logger()
    check_storage(order.config)  # this host's view of the work dir and its local_dir
    cell, shard, ws = order.resolve()
    host, run_id = socket.gethostname(), str(flow_run.get_id())
    label = f"{order.label} (flow run {run_id})"
    with take_device_group(
        host_device_groups(order.config), device_lock_dir(ws), label, on_wait=logger.info
    ) as group:
        logger.info("%s on %s, device group %s", order.label, host, group.label)
        settings = order.config.inference
        summary = infer_shard(cell, replace(shard, group=group), settings, ws, order.run)
    result = {**summary.as_dict(), "host": host}
    path = shard_paths(cell, ws).placed_summary(shard.index, shard.count, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result))
    return result
