"""Where a dataset's samples come from: a `DatasetSource` names the files and the
adapter, `load_samples` reads them (once per version of the file in a process).

A configuration only describes a dataset (`evalcore.config.DatasetSpec` is a
`DatasetSource`); reading and keeping what was read happen here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from evalcore.benchmarks.registry import adapter_of
from evalcore.dataset.sample import Sample

_CACHED_DATASETS = 64


class DatasetSource(Protocol):
    """What loading a dataset reads (see `evalcore.config.DatasetSpec` for each field)."""

    @property
    def tsv(self) -> Path: ...  # the dataset's table

    @property
    def root(self) -> Path | None: ...  # where videos resolve; None: the table's folder

    @property
    def benchmark(self) -> str: ...  # the adapter's registered name

    @property
    def dataset_name(self) -> str: ...  # each sample's `dataset`

    @property
    def limit(self) -> int | None: ...  # only the first N samples

    @property
    def subtitles(self) -> bool: ...  # read the subtitle files too


def load_samples(source: DatasetSource) -> list[Sample]:
    """The dataset's samples (after `limit`); raises `DatasetError` naming the line.

    Read once per version of the TSV in a process (a run asks for them in every stage),
    keyed by the source and the file's size, mtime and inode; with `subtitles` the
    adapter reads other files too, so then always read afresh. Each call gets its own
    list."""
    key = None if source.subtitles else _version(source)
    if key is not None and key in _SAMPLES:
        return list(_SAMPLES[key])
    samples = adapter_of(source).load(source)
    samples = samples[: source.limit] if source.limit else samples
    if key is not None:
        while len(_SAMPLES) >= _CACHED_DATASETS:
            _SAMPLES.pop(next(iter(_SAMPLES)))
        _SAMPLES[key] = samples
    return list(samples)


_SAMPLES: dict[tuple, list[Sample]] = {}  # load_samples, by source and file version


def _version(source: DatasetSource) -> tuple | None:
    try:
        st = Path(source.tsv).stat()
    except OSError:
        return None
    spec = (source.tsv, source.root, source.benchmark, source.dataset_name, source.limit)
    return (spec, st.st_size, st.st_mtime_ns, st.st_ino)
