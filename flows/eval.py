"""The `eval` flow: frames -> inference -> scoring -> leaderboard, for a model x dataset grid.

Frames and inference overlap: an extraction task writes its frame index as clips
finish, and a dataset's inference units start as soon as the index's head is written
(every video fingerprinted, so every answer key and unit cache key is known). Each
unit then answers its samples as their frames arrive (`evalcore.frames.index`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from pathlib import Path

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture, wait
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from evalcore.cell import Cell, CellTrials, cells_of, frame_plans
from evalcore.config import EvalConfig
from evalcore.frames.index import index_run
from evalcore.inference.runner import unit_cache_key
from evalcore.inference.torchrun.plan import dataset_videos, device_groups, plan_shards
from evalcore.reports.warm import import_report_modules
from evalcore.workspace import Workspace
from flows.cli.head_start import started
from flows.hooks import end_orphaned_task_runs, publish_run_summary
from tasks.frames import extract_frames
from tasks.inference import fixed_key, infer, infer_api, infer_shard_task
from tasks.reports import publish
from tasks.scoring import judge_answers_task, judge_extract, score
from tasks.secrets import endpoint_tag


@flow(
    name="eval",
    task_runner=ThreadPoolTaskRunner(max_workers=8),
    log_prints=True,
    on_running=[end_orphaned_task_runs],  # what crashed runs and earlier attempts left open
    on_completion=[publish_run_summary],  # the run-summary artifact, failed runs included
    on_failure=[publish_run_summary],
    on_crashed=[publish_run_summary],
)
def eval_flow(config: EvalConfig) -> dict:
    """Evaluate every model on every dataset and publish the leaderboard.

    A failed unit (an extraction, a cell, a shard) stops nothing else: every cell whose
    units finished is scored and the leaderboard is published; then the run fails,
    naming the failed units (a flow-run retry recomputes only those). Returns small
    summaries: the leaderboard rows, what extraction did per dataset and frame plan, and
    the inference counts per unit (a cached unit returns the counts of the run that
    made it).
    """
    ws = Workspace(config.work_dir, config.output_dir)
    for dataset in config.datasets:  # a malformed dataset fails here, before any decoding
        dataset.samples()
    results = ws.prefect_results_dir.resolve()  # a Path: a str would name a Prefect block

    frames: dict[Path, PrefectFuture] = {}  # frame index -> its extraction
    runs: dict[Path, str] = {}  # frame index -> the mark of this run's extraction
    for d, f in frame_plans(config):
        path = f.index_path(d, ws)
        begun = started(path)  # by the command line, before the flow: adopted by the task
        runs[path] = begun.run if begun is not None else uuid.uuid4().hex
        frames[path] = extract_frames.with_options(
            task_run_name=f"extract {d.dataset_name} {f.label}"
        ).submit(d, f, ws, runs[path])
    cells = cells_of(config)
    units: dict[int, list[PrefectFuture]] = {}  # cell number -> its units
    computing = False  # some unit is not a cache hit: scoring will need the report stack
    shard_queue = ShardQueue(config)
    for n, cell in enumerate(cells):  # in dataset order: a dataset's cells go once its
        path = cell.frame_index_path(ws)  # index has begun, while its frames are decoded
        if not index_begun(path, runs[path], frames[path]):
            continue  # its extraction failed first: its cells are not scored
        units[n], computes = submit_cell(cell, config, ws, results, shard_queue)
        computing = computing or computes
    wait(list(frames.values()))
    unit_futures = [f for futures in units.values() for f in futures]
    if computing:  # scoring follows in this thread: its imports now, while the units
        import_report_modules()  # compute and the decoders are done
    wait(unit_futures)

    failed = [
        _failure(f"extract {p}", f.state) for p, f in frames.items() if not f.state.is_completed()
    ]
    done: list[Cell] = []  # cells whose units all finished
    for n, cell in enumerate(cells):
        futures = units.get(n)
        if futures is None:
            continue
        bad = [f for f in futures if not f.state.is_completed()]
        failed += [_failure(_run_name(f), f.state) for f in bad]
        # with frames missing (its extraction failed), a cell keeps its last full report
        if not bad and frames[cell.frame_index_path(ws)].state.is_completed():
            done.append(cell)
    for trials in CellTrials.group(done):
        if len(trials.trials) < config.trials:
            continue  # a trial failed: the cell keeps its last complete report
        pair = trials.label
        judged = None
        if config.judge is not None:  # verdicts of open-ended answers, or readings of
            judging = (  # the answers a multiple-choice rule cannot read
                judge_answers_task if trials.benchmark.judged else judge_extract
            )
            state = judging.with_options(task_run_name=f"judge {pair}")(
                trials, ws, config.judge, config.api, return_state=True
            )
            if state.is_completed():
                judged = state.result() if judging is judge_extract else None
            else:  # scored all the same: its answers stay unjudged / unreadable
                failed.append(_failure(f"judge {pair}", state))
        score.with_options(task_run_name=f"score {pair}")(trials, ws, judged, config.judge)
    board = publish(ws)
    if failed:
        # a Failed state, not a raise: the run's log gets no traceback of its own (each
        # unit's error was logged when it failed); calling the flow raises `UnitsFailed`
        error = UnitsFailed(failed)
        return Failed(message=str(error), data=error)
    return {
        "leaderboard": board,
        "frames": [asdict(f.result()) for f in frames.values()],
        "inference": [f.result() for futures in units.values() for f in futures],
    }


class UnitsFailed(RuntimeError):
    """Some units failed; every other cell was scored and published. Names each failed
    unit with its state and the first line of its error; chained from their errors (an
    exception group), so a caller can find a cause (a full disk) among them."""

    def __init__(self, failures: list[tuple[str, str, BaseException | None]]) -> None:
        self.failures = failures  # (unit, what went wrong, its error)
        lines = [f"{unit}: {what}" for unit, what, _ in failures]
        super().__init__(f"{len(failures)} unit(s) failed: " + "; ".join(lines))
        errors = [e for _, _, e in failures if isinstance(e, Exception)]
        if errors:
            self.__cause__ = ExceptionGroup("the failed units' errors", errors)


def _failure(unit: str, state) -> tuple[str, str, BaseException | None]:
    """A failed unit: its state and name, the first line of its error (or of its state's
    message, for a unit that returned a Failed state), and the error."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - a result that cannot be read is the error
        error = exc
    if not isinstance(error, BaseException):
        error = None
    if error is not None and (text := str(error).strip()):
        what = f"{type(error).__name__}: {text.splitlines()[0][:300]}"
    elif error is not None:
        what = type(error).__name__
    else:
        what = (state.message or "no error recorded").strip().splitlines()[0][:300]
    return f"{state.name}: {unit}", what, error


def index_begun(path: Path, run: str, extraction: PrefectFuture) -> bool:
    """Wait until `extraction` has written the head of its frame index (`run` marks it),
    so the units of its cells can start; False if it failed first."""
    while index_run(path) != run:
        if wait([extraction], timeout=0.05).done:
            extraction.wait()  # its final state (`state` might read one not yet recorded)
            # completed: its index was written, though replaced since by another run's
            return index_run(path) == run or extraction.state.is_completed()
    return True


def _run_name(future: PrefectFuture) -> str:
    """The failed unit's task run name (it names the unit: `infer m x d t0 shard1-of-4`)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            return client.read_task_run(future.task_run_id).name
    except Exception:  # noqa: BLE001 - a name is a courtesy; the id always works
        return str(future.task_run_id)


def submit_cell(
    cell: Cell,
    config: EvalConfig,
    ws: Workspace,
    results: Path,
    shards: ShardQueue,
) -> tuple[list[PrefectFuture], bool]:
    """The inference units of one cell: one task inline or per API cell, one per shard
    under torchrun; and whether any of them computes (is not a cache hit). Each is keyed
    by `Cell.unit_key` and refreshed when its logs miss a sample (deleted logs are never
    shadowed by a persisted result). Every unit starts at once and takes frames as they
    arrive."""
    if cell.device_class == "api":
        key, gaps = unit_cache_key(cell, ws, "infer-api")
        options = dict(tags=[endpoint_tag(cell.model)], task_run_name=f"infer {cell.label}")
        future = infer_api.with_options(
            result_storage=results, cache_key_fn=fixed_key(key), refresh_cache=gaps, **options
        ).submit(cell, ws, config.api)
        return [future], not cache_hit(results, key, gaps)
    if config.inference.launcher == "inline":
        key, gaps = unit_cache_key(cell, ws, "infer")
        future = infer.with_options(
            result_storage=results,
            cache_key_fn=fixed_key(key),
            refresh_cache=gaps,
            task_run_name=f"infer {cell.label}",
        ).submit(cell, ws, config.inference)
        return [future], not cache_hit(results, key, gaps)
    return shards.submit(cell, ws, results)


def cache_hit(results: Path, key: str, gaps: bool) -> bool:
    """A unit whose persisted result stands (no gaps in its logs): Prefect will not run it."""
    return (results / key).exists() and not gaps


class ShardQueue:
    """Shards take the device groups in turn; a shard waits for the previous shard on its
    group (finished or failed: one bad shard stops nothing else), so at most one shard
    runs per group and all groups work side by side."""

    def __init__(self, config: EvalConfig) -> None:
        self.settings = config.inference
        self.groups = device_groups(
            config.inference.gpus,
            config.inference.ranks_per_shard,
            config.inference.gpus_per_rank,
            config.inference.cpu_groups,
        )
        self.previous: dict[int, PrefectFuture] = {}
        self.count = 0
        # this flow call (a run, or a flow-run retry's attempt): a sample that crashed its
        # rank max_attempts times in an earlier run is asked again in this one
        self.run = uuid.uuid4().hex

    def submit(self, cell: Cell, ws: Workspace, results: Path) -> tuple[list[PrefectFuture], bool]:
        futures, computes = [], False
        for shard in plan_shards(dataset_videos(cell.dataset), self.groups, self.settings.shards):
            group = self.groups[self.count % len(self.groups)]
            self.count += 1
            wait_for = []
            if group.index in self.previous:
                wait_for.append(allow_failure(self.previous[group.index]))
            key, gaps = unit_cache_key(cell, ws, f"infer-shard-{shard.digest}", shard.ids)
            cached = cache_hit(results, key, gaps)  # a cache hit takes no gpu slot
            computes = computes or not cached
            future = infer_shard_task.with_options(
                task_run_name=f"infer {cell.label} {shard.label}",
                tags=[] if cached else ["gpu"],
                result_storage=results,
                retries=self.settings.retries,
                cache_key_fn=fixed_key(key),
                refresh_cache=gaps,
            ).submit(
                cell, replace(shard, group=group), self.settings, ws, self.run, wait_for=wait_for
            )
            self.previous[group.index] = future
            futures.append(future)
        return futures, computes
