"""The inline launcher: one cell answered in this process, on the CPU or on the first of
`inference.gpus`, as its frames arrive (extraction may still be going on), the frames
of the next clips read ahead on a thread while the model works (`prefetch`).

One writer per cell at a time: the cell's unit lock is held while its samples are
answered, so a second process (another `evalcore run`, or the nightly sharing `work/`)
waits, then finds the answers already written and calls no model for them.

One replica per device at a time, the CPU included: cells that run side by side in the
flow's threads take turns on a device. A cell takes its device when its model is built
(when its first frames have arrived, not before) and gives it back when it ends. Cells
start while frames are still being decoded, so without turns every cell of the run
would load its model at once; on the CPU that is N copies of the weights in memory and
N models fighting the decoders for the cores, and a GPU stand-in measured on the CPU
would not behave as it does on a GPU.
"""

from __future__ import annotations

import logging
import threading

from evalcore.benchmarks import adapter_of, load_samples
from evalcore.cell import Cell
from evalcore.frames import FrameCache
from evalcore.frames.index import read_frame_index
from evalcore.inference.prefetch import read_ahead
from evalcore.inference.replica import Replica
from evalcore.inference.runner import InferenceSummary, UnitState, run_unit
from evalcore.models import Runtime
from evalcore.predictions import Journal
from evalcore.predictions.lock import UnitLock
from evalcore.progress import progress_bar
from evalcore.workspace import Workspace

log = logging.getLogger(__name__)
_DEVICE_LOCKS: dict[str, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def device_lock(device: str) -> threading.Lock:
    """The lock of `device` (`cpu`, `cuda:0`, ...) in this process."""
    with _REGISTRY_LOCK:
        return _DEVICE_LOCKS.setdefault(device, threading.Lock())


def infer_inline(
    cell: Cell,
    ws: Workspace,
    runtime: Runtime | None = None,
    writer: str = "main",
    prefetch: int = 4,
) -> InferenceSummary:
    """Answer the pending samples of one cell in this process (default: on the CPU),
    reading the frames of the next `prefetch` clips ahead of the model."""
    runtime = runtime or Runtime(device="cpu")
    samples = load_samples(cell.dataset)
    index = read_frame_index(
        cell.frame_index_path(ws), FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    )
    log_dir = cell.log_dir(ws)
    with UnitLock(log_dir, "cell", label=cell.label, on_wait=_waiting(cell)):
        state = UnitState.read(cell, samples, index.videos, ws)
        pending = state.pending(s.sample_id for s in samples)
        prefetcher, index = read_ahead(index, {s.sample_id: s for s in samples}, prefetch)
        lock = device_lock(runtime.device)
        replica = Replica(cell.model.kind, cell.model.params, runtime, device_lock=lock)

        def recorded(record) -> None:
            prefetcher.release(record.sample_id)
            bar.update()

        with (
            replica,
            prefetcher,
            Journal(log_dir, writer) as plog,
            progress_bar(len(pending), cell.label, "sample") as bar,
        ):
            return run_unit(
                samples,
                state,
                index,
                replica,
                cell.generation,
                plog,
                adapter_of(cell.dataset),
                batch_size=cell.model.batch_size,
                on_record=recorded,
                pack=cell.dataset.pack,
            )


def _waiting(cell: Cell):
    def say(holder: str) -> None:
        log.warning("%s: waiting for the process that writes this cell (%s)", cell.label, holder)

    return say
