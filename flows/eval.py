"""The `eval` flow: frames -> inference -> judge and score -> leaderboard, for a model x
dataset grid.

Frames and inference overlap: an extraction task writes its frame index as clips
finish, and a dataset's inference units start as soon as the index's head is written
(every video fingerprinted, so every answer key and unit cache key is known). Each
unit then answers its samples as their frames arrive (`evalcore.frames.index`). How
each stage is submitted (names, cache keys, tags) lives with its tasks.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow
from prefect.futures import PrefectFuture, wait
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, CellTrials, cells_of
from evalcore.config import EvalConfig
from evalcore.reports.warm import import_report_modules
from evalcore.storage import check_storage
from evalcore.workspace import Workspace
from flows.cli.head_start import take
from flows.hooks import end_orphaned_task_runs, publish_run_summary
from tasks.frames import submit_extractions
from tasks.inference import check_results_storage, submit_units
from tasks.placement import check_placement
from tasks.reports import publish
from tasks.scoring import judge_and_score


@flow(
    name="eval",
    # threads mostly wait: on a device's turn (inline), the Dask fan-out (API cells), a
    # shard on another host (placement: pool, which places at most this many at once)
    task_runner=ThreadPoolTaskRunner(max_workers=64),
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
    check_storage(config)  # a work dir on an object store fails here, before any work
    check_results_storage(config)  # and a results block the server does not have
    check_placement(config)  # and shards for a pool the server cannot place
    ws = Workspace.of(config)
    for dataset in config.datasets:  # a malformed dataset fails here, before any decoding
        load_samples(dataset)
    cells = cells_of(config)  # the grid: model x dataset x trial
    frames = submit_extractions(cells, ws, head_start=take)
    units = submit_units(config, ws, cells, frames)
    wait([e.future for e in frames.values()])
    if units.computing:  # scoring follows in this thread: its imports now, while the
        import_report_modules()  # units compute and the decoders are done
    wait(units.futures())

    failed = [(f"extract {p}", e.future.state) for p, e in frames.items() if not e.completed()]
    done: list[Cell] = []  # cells whose units all finished, and their frames
    for n, futures in units.by_cell.items():
        bad = [f for f in futures if not f.state.is_completed()]
        failed += [(_run_name(f), f.state) for f in bad]
        # with frames missing (its extraction failed), a cell keeps its last full report
        if not bad and frames[cells[n].frame_index_path(ws)].completed():
            done.append(cells[n])
    for trials in CellTrials.group(done):
        if len(trials.trials) == config.trials:  # else a trial failed: the cell keeps
            failed += judge_and_score(trials, ws, config)  # its last complete report
    board = publish(ws)
    if failed:
        # a Failed state, not a raise: the run's log gets no traceback of its own (each
        # unit's error was logged when it failed); calling the flow raises `UnitsFailed`
        error = UnitsFailed([_failure(unit, state) for unit, state in failed])
        return Failed(message=str(error), data=error)
    return {
        "leaderboard": board,
        "frames": [asdict(e.future.result()) for e in frames.values()],
        "inference": [f.result() for f in units.futures()],
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


def _run_name(future: PrefectFuture) -> str:
    """The failed unit's task run name (it names the unit: `infer m x d t0 shard1-of-4`)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            return client.read_task_run(future.task_run_id).name
    except Exception:  # noqa: BLE001 - a name is a courtesy; the id always works
        return str(future.task_run_id)
