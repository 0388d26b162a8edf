"""A one-model, one-dataset grid over a TSV, with its samples' answer keys: what a test
needs to write prediction records that count."""

from __future__ import annotations

from pathlib import Path

from evalcore.benchmarks import load_samples
from evalcore.cell import Cell, cells_of
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.workspace import Workspace


def one_cell(
    tsv: Path, root: Path, benchmark: str = "generic"
) -> tuple[EvalConfig, Cell, Workspace, dict[str, str]]:
    """The config (model `m`, kind random; work and outputs under `root`), its one cell,
    the workspace, and each sample's current answer key."""
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=tsv, benchmark=benchmark)],
        models=[ModelSpec(name="m", kind="random")],
        output_dir=root / "out",
        work_dir=root / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    (cell,) = cells_of(config)
    samples = load_samples(cell.dataset)
    keys = cell.answer_keys(samples, video_fingerprints(samples, FrameCache(ws.frame_cache_dir)))
    return config, cell, ws, keys
