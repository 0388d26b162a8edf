"""Fan chat jobs out over a Dask cluster; stream outcomes back as batches finish.

A Dask task is a batch of requests (`requests_per_task`), not one request: a task costs
milliseconds of scheduling, more than a request's share of the time at hundreds of
requests a second. Each batch is an async task on the worker's event loop, so it needs
no thread per request; the cluster-wide `ClusterGate` bounds what is on the wire.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from evalcore.api.client import ChatJob, ChatOutcome, answer_batch, redact
from evalcore.api.endpoint import EndpointSpec
from evalcore.api.gate import ClusterGate

log = logging.getLogger(__name__)


# -- worker side -------------------------------------------------------------------------
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ClusterGate]] = (
    weakref.WeakKeyDictionary()
)


def _cluster_gate(spec: EndpointSpec) -> ClusterGate:
    gates = _GATES.setdefault(asyncio.get_running_loop(), {})
    if spec.gate_name not in gates:
        gates[spec.gate_name] = ClusterGate(
            spec.gate_name, spec.max_in_flight, min_hold=spec.min_lease_seconds
        )
    return gates[spec.gate_name]


async def run_batch(
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    api_key: SecretStr | None = None,
    key_resolver: str | None = None,
) -> list[ChatOutcome]:
    """A Dask task: answer a batch under the endpoint's cluster-wide bound. With
    `key_resolver` (`module:function` of spec -> SecretStr | None) the worker finds the
    key itself, from its own environment or a Prefect Secret block: the key never
    travels in the task graph."""
    if api_key is None and key_resolver:
        try:
            api_key = _resolve_on_worker(key_resolver, spec)
        except Exception as exc:  # noqa: BLE001 - every job fails, typed, with the reason
            reason = f"this worker cannot find the API key: {type(exc).__name__}: {exc}"
            return [
                ChatOutcome(j.job_id, j.cache_key, error_type="ApiKeyMissing", error=reason)
                for j in jobs
            ]
    return await answer_batch(jobs, spec, api_key, gate=_cluster_gate(spec))


_WORKER_KEYS: dict[tuple[str, str], SecretStr | None] = {}


def _resolve_on_worker(key_resolver: str, spec: EndpointSpec) -> SecretStr | None:
    """Resolve once per worker process and key source (a Secret block is an API call)."""
    source = (key_resolver, f"{spec.api_key_env}|{spec.api_key_secret}")
    if source not in _WORKER_KEYS:
        module, _, name = key_resolver.partition(":")
        _WORKER_KEYS[source] = getattr(importlib.import_module(module), name)(spec)
    return _WORKER_KEYS[source]


def _warm_worker() -> None:
    import aiohttp  # noqa: F401

    import evalcore.api.client  # noqa: F401


# -- client side -------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterSpec:
    """Where batches run: an existing scheduler, or a LocalCluster of this shape."""

    scheduler_address: str | None = None
    workers: int = 2
    task_slots: int = 4  # batches a worker runs at once (its Dask "threads")
    processes: bool = True


_CLIENTS: dict[ClusterSpec, object] = {}
_CLIENTS_LOCK = threading.Lock()


def dask_client(cluster: ClusterSpec):
    """A `distributed.Client` for `cluster`, started once per process and reused by every
    evaluation cell (a LocalCluster takes seconds to start); closed at exit."""
    from distributed import Client, LocalCluster

    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cluster)
        if client is not None and client.status == "running":
            return client
        if cluster.scheduler_address:
            client = Client(cluster.scheduler_address, set_as_default=False)
        else:
            # our own cluster's start/stop chatter (~30 INFO lines a run) is not news
            logging.getLogger("distributed").setLevel(logging.WARNING)
            local = LocalCluster(
                n_workers=cluster.workers,
                threads_per_worker=cluster.task_slots,
                processes=cluster.processes,
                # loopback only (no LAN exposure); in-process workers use inproc://
                **({"host": "127.0.0.1"} if cluster.processes else {}),
                dashboard_address=None,
                # its health/metrics HTTP server on a free loopback port, not 8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.WARNING,
            )
            client = Client(local, set_as_default=False)
            client.run(_warm_worker)  # imports now, not inside the first batches' timing
        if not _CLIENTS:
            atexit.register(close_dask_clients)
        _CLIENTS[cluster] = client
        return client


def close_dask_clients() -> None:
    """Close every client (and LocalCluster) this process started."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        cluster = client.cluster
        try:
            client.close()
            if cluster is not None:
                cluster.close()
        except Exception:  # at exit, a half-closed cluster is not worth a traceback
            log.debug("closing a Dask client failed", exc_info=True)


def fan_out(
    client,
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    api_key: SecretStr | None,
    requests_per_task: int,
    on_batch: Callable[[list[ChatOutcome]], None],
    key_resolver: str | None = None,
) -> int:
    """Run `jobs` as batches on the cluster, calling `on_batch` in this thread with each
    batch's outcomes as it finishes. A batch lost with its worker becomes typed failures.
    Returns the number of Dask tasks.

    When the key has a named source (`api_key_env`, `api_key_secret`) and `key_resolver`
    is given, only the resolver's name goes into the graph and each worker resolves the
    key itself; `api_key` then serves only to redact this side's error text. A key with
    no named source (scripts, tests) is shipped as a `SecretStr`."""
    from distributed import as_completed

    if not jobs:
        return 0
    batches = [
        list(jobs[i : i + requests_per_task]) for i in range(0, len(jobs), requests_per_task)
    ]
    run = uuid.uuid4().hex[:8]
    keys = [f"api-batch-{run}-{i}" for i in range(len(batches))]
    named = key_resolver is not None and (spec.api_key_env or spec.api_key_secret)
    shipped = {"key_resolver": key_resolver} if named else {"api_key": api_key}
    futures = client.map(run_batch, batches, spec=spec, key=keys, pure=False, **shipped)
    by_key = dict(zip(keys, batches, strict=True))
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                outcomes = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task crashed
                outcomes = [
                    ChatOutcome(
                        j.job_id,
                        j.cache_key,
                        error_type="WorkerError",
                        error=redact(f"{type(exc).__name__}: {str(exc)[:300]}", api_key),
                    )
                    for j in by_key[future.key]
                ]
            future.release()
            on_batch(outcomes)
    finally:
        client.cancel([f for f in futures if not f.done()])
    return len(batches)
