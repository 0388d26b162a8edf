"""Answer chat jobs through the response cache, then the cluster: the one path shared by
video evaluation and the judge.

Cache hits are answered here and never leave the machine. Misses go to the cluster in
batches, and their answers come back one by one as they arrive: each is committed to the
cache before it is handed on (and the caller records it before the next is counted), so
an answer the endpoint gave is never requested again, even if this process is killed at
any moment; only the requests still on their way are.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pydantic import SecretStr

from evalcore.api.cache import ResponseCache
from evalcore.api.client import ChatJob, ChatOutcome, answer_locally
from evalcore.api.endpoint import EndpointSpec
from evalcore.api.fanout import ClusterSpec, FanOut, dask_client, fan_out
from evalcore.predictions.failures import FailureKind

if TYPE_CHECKING:
    from evalcore.config import ApiSettings


@dataclass
class AnswerStats:
    """Counts of one pass over a set of jobs (small: Prefect tasks return these)."""

    jobs: int = 0
    cache_hits: int = 0
    answered: int = 0  # answered by the endpoint in this pass
    failed: int = 0
    requests: int = 0  # HTTP attempts sent, retries included
    dask_tasks: int = 0
    in_flight: str = ""  # the level requests ran at: `32`, or `auto: 88 now, peak 96`
    seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # error type -> count

    @property
    def retries(self) -> int:
        return max(0, self.requests - self.answered - self.failed)

    def add(self, later: AnswerStats) -> AnswerStats:
        """These counts and those of a later pass (its in-flight level is the current)."""
        failures = Counter(self.failures) + Counter(later.failures)
        return AnswerStats(
            jobs=self.jobs + later.jobs,
            cache_hits=self.cache_hits + later.cache_hits,
            answered=self.answered + later.answered,
            failed=self.failed + later.failed,
            requests=self.requests + later.requests,
            dask_tasks=self.dask_tasks + later.dask_tasks,
            in_flight=later.in_flight or self.in_flight,
            seconds=round(self.seconds + later.seconds, 3),
            failures=dict(failures.most_common()),
        )


class Progress:
    """A tqdm bar over the jobs: done, rate, cache hits, failures."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self._bar = None
        if enabled and total:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="req", mininterval=0.5)
        self.hits = self.failed = 0
        self.in_flight: int | None = None

    def update(self, outcome: ChatOutcome) -> None:
        self.hits += outcome.cached
        self.failed += not outcome.ok
        if self._bar is not None:
            self._bar.update(1)
            self._show()

    def drop(self, jobs: int) -> None:
        """`jobs` planned jobs will not be sent (their samples failed without a request)."""
        if self._bar is not None and jobs > 0:
            self._bar.total -= jobs
            self._bar.refresh()

    def level(self, in_flight: int) -> None:
        """An `auto` in-flight level changed."""
        self.in_flight = in_flight
        if self._bar is not None:
            self._show()

    def _show(self) -> None:
        extra = {} if self.in_flight is None else {"in_flight": self.in_flight}
        self._bar.set_postfix(hits=self.hits, failed=self.failed, **extra, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# run(misses, on_batch, on_level) -> FanOut; on_batch(outcomes) as they arrive
Runner = Callable[..., FanOut]


def dask_runner(
    client,
    spec: EndpointSpec,
    api_key: SecretStr | None,
    requests_per_task: int,
    key_resolver: str | None = None,
) -> Runner:
    """Run misses as batches on a Dask cluster. `client`: a `distributed.Client`, or a
    function that returns one, called only when there are misses (a run answered from
    the cache starts no cluster). `key_resolver`: see `fan_out`."""

    def run(jobs: Sequence[ChatJob], on_batch, on_level=None) -> FanOut:
        if not jobs:
            return FanOut(in_flight=str(spec.max_in_flight))
        cluster = client() if callable(client) else client
        return fan_out(
            cluster, jobs, spec, api_key, requests_per_task, on_batch, key_resolver, on_level
        )

    return run


def cluster_runner(
    settings: ApiSettings,
    spec: EndpointSpec,
    api_key: SecretStr | None = None,
    key_resolver: str | None = None,
    client=None,
) -> Runner:
    """`dask_runner` on the cluster `settings` describe: `client` if given, else one
    started on first use (a run answered from the cache starts none)."""
    cluster = ClusterSpec(
        settings.scheduler_address, settings.workers, settings.task_slots, settings.processes
    )

    def connect():
        return client if client is not None else dask_client(cluster)

    return dask_runner(connect, spec, api_key, settings.requests_per_task, key_resolver)


def local_runner(spec: EndpointSpec, api_key: SecretStr | None) -> Runner:
    """Run misses in this process (no cluster): small jobs, tests, scripts."""

    def run(jobs: Sequence[ChatJob], on_batch, on_level=None) -> FanOut:
        if jobs:
            answer_locally(jobs, spec, api_key, on_outcome=lambda o: on_batch([o]))
        return FanOut(in_flight=str(spec.max_in_flight))

    return run


def answer_jobs(
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    cache: ResponseCache,
    runner: Runner,
    on_outcome: Callable[[ChatOutcome], None],
    progress: Progress | None = None,
    usable: Callable[[ChatJob, str], bool] | None = None,
) -> AnswerStats:
    """Every job ends as exactly one outcome passed to `on_outcome`: a cached answer, a
    fresh answer (stored in the cache), or a typed failure (never stored).

    `usable(job, text)`: whether a reply can be used (a judge's reply must hold a score);
    an unusable reply is an `UnusableReply` failure, never cached, and a cached reply
    that is not usable (cached before the rule changed) is asked again."""
    started = time.perf_counter()
    stats = AnswerStats(jobs=len(jobs))
    failures: Counter[str] = Counter()

    def emit(outcome: ChatOutcome) -> None:
        on_outcome(outcome)
        if progress is not None:
            progress.update(outcome)

    hits = cache.get_many(j.cache_key for j in jobs)
    misses = []
    for job in jobs:
        text = hits.get(job.cache_key)
        if text is None or (usable is not None and not usable(job, text)):
            misses.append(job)
            continue
        stats.cache_hits += 1
        emit(ChatOutcome(job.job_id, job.cache_key, text=text, cached=True))

    by_id = {job.job_id: job for job in misses}

    def checked(o: ChatOutcome) -> ChatOutcome:
        if usable is None or not o.ok or usable(by_id[o.job_id], o.text or ""):
            return o
        shown = (o.text or "")[:200]
        return replace(
            o, text=None, error_type=FailureKind.UnusableReply, error=f"unusable reply: {shown!r}"
        )

    def on_batch(outcomes: list[ChatOutcome]) -> None:
        outcomes = [checked(o) for o in outcomes]
        cache.put_many(
            (o.cache_key, spec.model, o.text) for o in outcomes if o.ok and o.text is not None
        )
        for o in outcomes:
            stats.requests += o.attempts
            if o.ok:
                stats.answered += 1
            else:
                stats.failed += 1
                failures[o.error_type or FailureKind.Unknown] += 1
            emit(o)

    done = runner(misses, on_batch, progress.level if progress is not None else None)
    stats.dask_tasks, stats.in_flight = done.tasks, done.in_flight
    stats.failures = dict(failures.most_common())
    stats.seconds = round(time.perf_counter() - started, 3)
    return stats
