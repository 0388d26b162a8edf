"""A dataset's samples come from `evalcore.benchmarks.load_samples`: read through the
source's adapter, cut to `limit`, kept per version of the TSV in a process. The
configuration only describes the dataset (`DatasetSpec` is a `DatasetSource`)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalcore.benchmarks import DatasetSource, adapter_of, get_benchmark, load_samples
from evalcore.benchmarks.generic import GenericMCQ
from evalcore.benchmarks.videomme import VideoMME
from evalcore.config import DatasetSpec
from evalcore.dataset import DatasetError

HEADER = "index\tvideo\tquestion\tanswer\tcandidates\tcategory\n"


def write(path: Path, n_rows: int, answer: str = "A") -> Path:
    rows = "".join(f"{i}\tv{i}\tQ{i}\t{answer}\t['x', 'y']\tc\n" for i in range(n_rows))
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The datasets the generic and Video-MME adapters read, one entry per read."""
    read: list[str] = []
    for cls in (GenericMCQ, VideoMME):
        original = cls.load

        def load(self, source, original=original):
            read.append(source.dataset_name)
            return original(self, source)

        monkeypatch.setattr(cls, "load", load)
    return read


def test_samples_are_the_adapters_after_limit(tmp_path, videomme_root):
    tsv = write(tmp_path / "Bench.tsv", 5)
    spec = DatasetSpec(tsv=tsv, limit=3)
    samples = load_samples(spec)
    assert [s.sample_id for s in samples] == ["0", "1", "2"]
    assert samples == GenericMCQ().load(spec)[:3] == load_samples(spec)
    videomme = DatasetSpec(tsv=videomme_root / "Video-MME.tsv", benchmark="videomme")
    assert isinstance(adapter_of(videomme), VideoMME) and isinstance(adapter_of(videomme), VideoMME)
    assert load_samples(videomme) == VideoMME().load(videomme)


def test_a_tsv_is_read_once_per_version(tmp_path, loads):
    tsv = write(tmp_path / "Once.tsv", 4)
    spec = DatasetSpec(tsv=tsv)
    first = load_samples(spec)
    first.pop()  # each caller gets its own list
    again = load_samples(spec)
    assert len(again) == 4 and loads == ["Once"]
    assert load_samples(DatasetSpec(tsv=tsv, limit=2)) == again[:2]  # another source: read
    assert loads == ["Once", "Once"]
    write(tsv, 6)  # a new version of the file
    assert [s.sample_id for s in load_samples(spec)] == ["0", "1", "2", "3", "4", "5"]
    assert loads == ["Once", "Once", "Once"]


def test_an_error_is_raised_each_time_and_never_kept(tmp_path, loads):
    tsv = write(tmp_path / "Bad.tsv", 2, answer="Z")
    spec = DatasetSpec(tsv=tsv)
    for _ in range(2):
        with pytest.raises(DatasetError, match="line 2.*answer 'Z'"):
            load_samples(spec)
    assert loads == ["Bad", "Bad"]
    write(tsv, 2)
    assert len(load_samples(spec)) == 2


def test_with_subtitles_the_files_are_read_every_time(videomme_root, loads):
    spec = DatasetSpec(tsv=videomme_root / "Video-MME.tsv", benchmark="videomme", subtitles=True)
    assert load_samples(spec) == load_samples(spec)
    assert loads == ["Video-MME", "Video-MME"]


@dataclass(frozen=True)
class Folder:
    """A `DatasetSource` that is not a configuration."""

    tsv: Path
    root: Path | None = None
    benchmark: str = "generic"
    limit: int | None = None
    subtitles: bool = False

    @property
    def dataset_name(self) -> str:
        return "FromFolder"


def test_any_dataset_source_loads(tmp_path):
    tsv = write(tmp_path / "Bench.tsv", 3)
    source: DatasetSource = Folder(tsv=tsv, root=tmp_path)
    samples = load_samples(source)
    assert [(s.dataset, s.video_path) for s in samples] == [
        ("FromFolder", tmp_path / f"v{i}.mp4") for i in range(3)
    ]
    assert isinstance(adapter_of(source), GenericMCQ)
    assert samples[0].options == get_benchmark("generic").load(source)[0].options


def test_the_config_module_imports_no_adapter(subprocess_imports_tests):
    code = "import sys, evalcore.config; print(sorted(m for m in sys.modules if 'bench' in m))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"
