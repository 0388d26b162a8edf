"""Fan chat jobs out over a Dask cluster; stream outcomes back as batches finish.

A Dask task is a batch of requests, not one request: a task costs milliseconds of
scheduling, more than a request's share of the time at hundreds of requests a second.
Each batch is an async task on the worker's event loop, so it needs no thread per
request. What is on the wire is bounded per worker: the client sends each batch its
worker's share of the endpoint's `max_in_flight` (the limit over the cluster's task
slots, times the worker's slots), and every batch on that worker shares one gate.

Answers stream back one by one, not a batch at a time: each is logged as a Dask event on
the fan-out's answer topic the moment it arrives (a worker's answers of every batch share
events only above 100 a second, `_Events`), and the client, subscribed to that topic,
hands them on at once (all that have come, in one go), so the caller makes them durable
before the next are counted. A kill of the client loses at most the answers still on
their way. A worker killed mid-batch loses nothing it was answered either: the batch,
when Dask runs it again elsewhere, finds its earlier run's answers on the answer topic
(its own start mark says it is a second run) and replays them instead of asking again.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import math
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from pydantic import SecretStr

from evalcore.api.adaptive import AdaptiveLimit
from evalcore.api.client import ChatJob, ChatOutcome, answer_job, shared_session
from evalcore.api.endpoint import EndpointSpec
from evalcore.api.gate import loop_gate
from evalcore.api.redaction import redact, remember
from evalcore.predictions.failures import FailureKind

log = logging.getLogger(__name__)

# `auto`: how long a worker that was throttled waits for the controller's cut, at most (it
# takes an event and a `client.run`: milliseconds on loopback, more on a busy cluster)
AUTO_PAUSE_S = 0.5
# How long an answer may wait to share its event with the next ones. An answer arriving
# after a quiet spell of this length goes at once; only at more than 1 / ANSWER_LINGER_S
# answers a second per worker do several share an event (the scheduler's cost).
ANSWER_LINGER_S = 0.01
FEED_LINGER_S = 0.05


class KeyUnavailable(RuntimeError):
    """A worker could not find the API key its config names: the whole cell fails once,
    with this message, instead of every sample failing alike."""


# -- worker side -------------------------------------------------------------------------
@dataclass(frozen=True)
class Share:
    """What a batch is told by the client: each worker's part of the endpoint's in-flight
    limit (`limits`, by worker address, in proportion to its task slots; `per_slot` for
    a worker that joined since) and the minimum hold of a lease (the rate limit)."""

    limits: tuple[tuple[str, int], ...]
    per_slot: float
    min_hold: float = 0.0
    feed: str | None = None  # `auto`: the event topic every attempt is reported on
    epoch: int = 0  # `auto`: how many times the level changed (older shares lose)
    cut_epoch: int = 0  # `auto`: the epoch of the last cut (older throttles are its echo)
    pause: float = 0.0  # `auto`: how long a throttled worker waits for the next cut, at most

    def limit_of(self, address: str, slots: int) -> int:
        return dict(self.limits).get(address) or max(1, math.floor(self.per_slot * slots))


def split_limit(limit: int, slots: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """`limit` over workers in proportion to their slots, largest remainders first, so
    the parts add up to `limit` (each at least 1)."""
    total = sum(slots.values()) or 1
    exact = {w: limit * n / total for w, n in slots.items()}
    parts = {w: math.floor(x) for w, x in exact.items()}
    for w in sorted(exact, key=lambda w: parts[w] - exact[w])[: limit - sum(parts.values())]:
        parts[w] += 1
    return tuple(sorted((w, max(1, n)) for w, n in parts.items()))


@dataclass(frozen=True)
class Stream:
    """Where a batch logs its answers as they arrive (`answers`: the fan-out's topic, each
    answer tagged with `batch`) and marks that it started (`started`: its own topic), so
    that a second run of the batch (its worker died) can tell it is one and replay them."""

    answers: str
    batch: str
    started: str


async def run_batch(
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    share: Share,
    stream: Stream | None = None,
    api_key: SecretStr | None = None,
    key_resolver: str | None = None,
) -> list[ChatOutcome]:
    """A Dask task: answer a batch under this worker's share of the endpoint's bound.
    Each answer is logged on `stream` as it arrives: the client hands it on from there,
    and a second run of the batch replays it.
    With `key_resolver` (`module:function` of spec -> SecretStr | None) the worker finds
    the key itself, from its own environment or a Prefect Secret block: the key never
    travels in the task graph."""
    if api_key is None and key_resolver:
        try:
            # in a thread: a Prefect Secret block loads synchronously only outside an
            # event loop (inside this one, `Secret.load` returns a coroutine)
            api_key = await asyncio.to_thread(_resolve_on_worker, key_resolver, spec)
        except Exception as exc:  # noqa: BLE001 - the cell fails once, with the reason
            raise KeyUnavailable(
                f"a Dask worker cannot find the API key of {spec.model} at {spec.base_url}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    from distributed import get_worker

    worker = get_worker()
    gate = _resize_gate(spec.gate_name, share, worker)
    replayed = await _replayed(worker, stream) if stream else {}
    http, rng = shared_session(spec), random.Random()
    feed = _Events(worker, share.feed, lambda items: items, FEED_LINGER_S) if share.feed else None
    kept = _answer_events(worker, stream.answers) if stream else None

    async def answer(job: ChatJob) -> ChatOutcome:
        if job.job_id in replayed:
            return replayed[job.job_id]
        outcome = await answer_job(job, spec, api_key, http, gate, rng, feed and feed.attempt)
        if kept and outcome.ok:  # before any other request starts: nothing awaits here
            kept.add({"batch": stream.batch, **asdict(outcome)})
        return outcome

    try:
        return list(await asyncio.gather(*(answer(j) for j in jobs)))
    finally:
        if feed:
            feed.flush()
        if kept:
            kept.release()


def _resize_gate(name: str, share: Share, worker):
    limit = share.limit_of(worker.address, worker.state.nthreads)
    # by worker too: in-process workers (tests) share one event loop
    name = f"{name}@{worker.address}"
    return loop_gate(name, limit, share.min_hold, share.epoch, share.cut_epoch, share.pause)


async def resize_gates(name: str, share: Share, dask_worker=None) -> None:
    """Run on every worker (`client.run`) when the `auto` level changes."""
    _resize_gate(name, share, dask_worker)


class _Events:
    """Items a batch logs as Dask events (answers, attempts for the `auto` controller).
    An item that comes after `linger` seconds of quiet goes at once; items that follow it
    closer than that share the next event, sent `linger` after the last one (or at 32
    items): an event per item would cost the scheduler more than the requests
    themselves at hundreds a second."""

    def __init__(self, worker, topic: str, wrap, linger: float, clock=time.monotonic) -> None:
        self.worker, self.topic, self.wrap, self.linger = worker, topic, wrap, linger
        self.clock = clock
        self.users = 0  # batches sharing these events (`_answer_events`)
        self.items: list = []
        self.sent, self.urgent = -math.inf, -math.inf
        self._timer: asyncio.TimerHandle | None = None

    def add(self, item, urgent: bool = False) -> None:
        self.items.append(item)
        now = self.clock()
        if urgent and now - self.urgent > 0.05:  # the first of a burst of urgent items
            self.urgent = now
            self.flush()
        elif len(self.items) >= 32 or now - self.sent >= self.linger:
            self.flush()
        elif self._timer is None:
            wait = self.linger - (now - self.sent)
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)

    def attempt(self, lease, latency: float | None, throttled: bool) -> None:
        # a throttle is urgent: the worker's gate waits for the controller's cut
        self.add((latency, throttled, lease.epoch), urgent=throttled)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.items:
            self.worker.log_event(self.topic, self.wrap(self.items))
            self.items, self.sent = [], self.clock()

    def release(self) -> None:
        """A batch that shared these events is done (`_answer_events`)."""
        self.flush()
        self.users -= 1
        if self.users <= 0:
            _ANSWER_EVENTS.pop((id(self.worker), self.topic), None)


# The answer events of each fan-out on this worker, shared by its batches here: one event
# carries the answers of every batch that came within the linger.
_ANSWER_EVENTS: dict[tuple[int, str], _Events] = {}


def _answer_events(worker, topic: str) -> _Events:
    events = _ANSWER_EVENTS.get((id(worker), topic))
    if events is None:
        wrap = lambda items: {"answers": items}  # noqa: E731
        events = _Events(worker, topic, wrap, ANSWER_LINGER_S)
        _ANSWER_EVENTS[(id(worker), topic)] = events
    events.users += 1
    return events


async def _replayed(worker, stream: Stream) -> dict[str, ChatOutcome]:
    """The answers an earlier run of this batch (on a worker that died) logged; {} on a
    first run (one scheduler call: its start mark, which this run then sets)."""
    earlier = await worker.scheduler.events(topic=stream.started)
    worker.log_event(stream.started, "started")
    if not earlier:
        return {}
    found = {}
    for _, msg in await worker.scheduler.events(topic=stream.answers):
        if isinstance(msg, dict):
            for fields in msg.get("answers", ()):
                if fields.get("batch") == stream.batch:
                    found[fields["job_id"]] = _outcome(fields)
    log.info("batch run again: %d answers replayed from its earlier run", len(found))
    return found


def _outcome(fields: dict) -> ChatOutcome:
    return ChatOutcome(**{k: v for k, v in fields.items() if k != "batch"})


_WORKER_KEYS: dict[tuple[str, str], SecretStr | None] = {}


def _resolve_on_worker(key_resolver: str, spec: EndpointSpec) -> SecretStr | None:
    """Resolve once per worker process and key source (a Secret block is an API call)."""
    source = (key_resolver, f"{spec.api_key_env}|{spec.api_key_secret}")
    if source not in _WORKER_KEYS:
        module, _, name = key_resolver.partition(":")
        key = getattr(importlib.import_module(module), name)(spec)
        remember(key)  # this worker's logs never show it either
        _WORKER_KEYS[source] = key
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
            if cluster.processes:  # workers die with this process, even by SIGKILL
                from evalcore.api.worker_plugin import DieWithParent

                client.register_plugin(DieWithParent(), name="evalcore-die-with-parent")
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


@dataclass(frozen=True)
class FanOut:
    """What a fan-out did: Dask tasks run, and the in-flight level it ran at."""

    tasks: int = 0
    in_flight: str = ""


# One `auto` controller per endpoint in this process: the cells of a run (and the judge)
# that use one endpoint share what was learnt about it, instead of each starting over.
_CONTROLS: dict[str, AdaptiveLimit] = {}
_CONTROLS_LOCK = threading.Lock()


def _control(spec: EndpointSpec) -> AdaptiveLimit:
    with _CONTROLS_LOCK:
        if spec.gate_name not in _CONTROLS:
            _CONTROLS[spec.gate_name] = AdaptiveLimit(ceiling=spec.auto_max_in_flight)
        return _CONTROLS[spec.gate_name]


class _Level:
    """The in-flight limit new batches are given. `auto`: the endpoint's `AdaptiveLimit`,
    fed with every attempt through a Dask event topic; when it moves, every worker's
    gate is resized at once (`client.run`), not only as new batches arrive."""

    def __init__(self, client, spec: EndpointSpec, share_now, on_level) -> None:
        self.spec, self.client = spec, client
        self.control = _control(spec) if spec.adaptive else None
        self._share_now, self._on_level = share_now, on_level
        self._changed, self._stop = threading.Event(), False
        self.topic = f"evalcore-feed-{uuid.uuid4().hex[:12]}"
        if self.control is not None:
            client.subscribe_topic(self.topic, self._heard)
            self._pusher = threading.Thread(target=self._push, name="auto-in-flight", daemon=True)
            self._pusher.start()

    def __call__(self) -> int:
        return self.control.level if self.control else int(self.spec.max_in_flight)

    @property
    def epoch(self) -> int:
        return self.control.changes if self.control else 0

    @property
    def cut_epoch(self) -> int:
        return self.control.cut_epoch if self.control else 0

    @property
    def rate(self) -> float | None:
        """The pace `auto` learnt from 429s/503s (requests a second), if any."""
        return self.control.rate if self.control else None

    def describe(self) -> str:
        return self.control.describe() if self.control else str(self.spec.max_in_flight)

    def _heard(self, event) -> None:
        _, attempts = event
        now = time.monotonic()
        with _CONTROLS_LOCK:
            for latency, throttled, epoch in attempts:
                if self.control.record(latency, throttled, epoch, now):
                    self._changed.set()

    def _push(self) -> None:
        while not self._stop:
            if not self._changed.wait(0.1):
                continue
            self._changed.clear()
            try:
                self.client.run(resize_gates, self.spec.gate_name, self._share_now(), wait=False)
            except Exception:  # noqa: BLE001 - a closing cluster; new batches carry it too
                log.debug("could not resize the workers' gates", exc_info=True)
            if self._on_level is not None:
                self._on_level(self())

    def close(self) -> None:
        if self.control is not None:
            self._stop = True
            self._pusher.join(1)
            try:
                self.client.unsubscribe_topic(self.topic)
            except Exception:  # noqa: BLE001
                log.debug("unsubscribe failed", exc_info=True)


class _Slots:
    """The cluster's task slots by worker, read again at most once a second: workers may
    die or join during a fan-out."""

    def __init__(self, client) -> None:
        self._client, self.by_worker, self._read = client, {}, -math.inf

    def __call__(self) -> int:
        if time.monotonic() - self._read > 1.0:
            self.by_worker = dict(self._client.nthreads())
            self._read = time.monotonic()
        return max(1, sum(self.by_worker.values()))


def fan_out(
    client,
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    api_key: SecretStr | None,
    requests_per_task: int,
    on_batch: Callable[[list[ChatOutcome]], None],
    key_resolver: str | None = None,
    on_level: Callable[[int], None] | None = None,
) -> FanOut:
    """Run `jobs` on the cluster in batches, calling `on_batch` in this thread with
    outcomes as they arrive: each answer as soon as its worker logs it, and a batch's
    failures (and any answer not yet heard of) when the batch finishes. Every job is
    handed on exactly once. A batch lost for good (Dask gave up on it) becomes typed
    failures. `on_level(n)` hears of each change of an `auto` in-flight level. Raises
    `KeyUnavailable` when a worker cannot find the key (the rest are cancelled).

    Batches are submitted as slots free up, two per task slot ahead, each with the
    share of `spec.max_in_flight` that the cluster's current shape gives it, and with at
    least twice its slot's share of requests (so a worker's running batches can fill
    its gate).

    When the key has a named source (`api_key_env`, `api_key_secret`) and `key_resolver`
    is given, only the resolver's name goes into the graph and each worker resolves the
    key itself; `api_key` then serves only to redact this side's error text. A key with
    no named source (scripts, tests) is shipped as a `SecretStr`."""
    if not jobs:
        return FanOut()
    run = uuid.uuid4().hex[:8]
    named = key_resolver is not None and (spec.api_key_env or spec.api_key_secret)
    shipped = {"key_resolver": key_resolver} if named else {"api_key": api_key}
    slots = _Slots(client)
    waiting = deque(jobs)
    by_key: dict[str, list[ChatJob]] = {}
    heard: queue.SimpleQueue = queue.SimpleQueue()  # ("answers", msg) | ("done", future)
    handed: set[str] = set()  # job ids handed on
    answers = f"{client.id}/api-answers-{run}"  # the fan-out's answer topic
    # subscribed before the first submit (both go down one ordered stream): none missed
    client.subscribe_topic(answers, lambda event: heard.put(("answers", event[1])))

    def share_now() -> Share:
        limit, epoch, n = level(), level.epoch, slots()  # slots() refreshes slots.by_worker
        feed = level.topic if spec.adaptive else None
        parts = split_limit(limit, slots.by_worker)
        hold = max(spec.min_hold(limit), limit / level.rate if level.rate else 0.0)
        pause = AUTO_PAUSE_S if spec.adaptive else 0.0
        return Share(parts, limit / n, hold, feed, epoch, level.cut_epoch, pause)

    level = _Level(client, spec, share_now, on_level)

    def submit():
        share = share_now()
        size = max(requests_per_task, math.ceil(2 * share.per_slot))
        batch = [waiting.popleft() for _ in range(min(size, len(waiting)))]
        key = f"api-batch-{run}-{len(by_key)}"
        by_key[key] = batch
        stream = Stream(answers, key, _mark_topic(client, key))
        future = client.submit(
            run_batch, batch, spec, share, stream, key=key, pure=False, **shipped
        )
        future.add_done_callback(lambda f: heard.put(("done", f)))
        return future

    def hand_on(outcomes: list[ChatOutcome]) -> None:
        fresh = []
        for o in outcomes:  # the first of each job (an answer heard, then its batch's)
            if o.job_id not in handed:
                handed.add(o.job_id)
                fresh.append(o)
        if fresh:
            on_batch(fresh)

    live = set()  # submitted, not yet finished

    def top_up() -> None:
        while waiting and len(live) < 2 * slots():
            live.add(submit())

    def finished(future) -> list[ChatOutcome]:
        try:
            outcomes = future.result()
        except KeyUnavailable:
            raise
        except Exception as exc:  # Dask gave up (KilledWorker) or the task crashed
            outcomes = [
                ChatOutcome(
                    j.job_id,
                    j.cache_key,
                    error_type=FailureKind.WorkerError,
                    error=redact(f"{type(exc).__name__}: {str(exc)[:300]}", api_key),
                )
                for j in by_key[future.key]
            ]
        future.release()
        return outcomes

    top_up()
    try:
        while live:
            # everything heard so far, handed on in one go (one cache commit at hundreds
            # of answers a second), answers before the batches they finish
            news = [heard.get()]
            while not heard.empty():
                news.append(heard.get_nowait())
            outcomes = [
                _outcome(fields)
                for kind, item in news
                if kind == "answers" and isinstance(item, dict)
                for fields in item.get("answers", ())
            ]
            missing_key = None
            for kind, item in news:
                if kind == "done" and item in live:
                    live.discard(item)
                    try:
                        outcomes += finished(item)
                    except KeyUnavailable as exc:
                        missing_key = exc
            if missing_key is None:
                top_up()
            hand_on(outcomes)  # (what other batches answered is kept in any case)
            if missing_key is not None:
                raise missing_key
    finally:
        level.close()
        if live:  # on_batch raised, or the key is missing: stop the rest
            client.cancel(list(live))
        _unsubscribe(client, answers)
        _forget_topics(client, [answers] + [_mark_topic(client, key) for key in by_key])
    return FanOut(len(by_key), level.describe())


def _mark_topic(client, key: str) -> str:
    return f"{client.id}/{key}"


def _unsubscribe(client, topic: str) -> None:
    try:
        client.unsubscribe_topic(topic)
        client._event_handlers.pop(topic, None)  # unsubscribe leaves the handler behind
    except Exception:  # noqa: BLE001 - a closing client
        log.debug("unsubscribe from %s failed", topic, exc_info=True)


async def _drop_topics(topics: list[str], dask_scheduler=None) -> None:
    broker = getattr(dask_scheduler, "_broker", None)
    for topic in topics:
        if broker is not None and hasattr(broker, "_topics"):
            broker._topics.pop(topic, None)


def _forget_topics(client, topics: list[str]) -> None:
    """Free the fan-out's answers and marks on the scheduler once it is over (a long-lived
    external scheduler would keep them otherwise; a LocalCluster ends with this process).
    Best effort: the scheduler's event broker is not a public API."""
    try:
        client.run_on_scheduler(_drop_topics, topics, wait=False)
    except Exception:  # noqa: BLE001
        log.debug("could not drop the batches' event topics", exc_info=True)
