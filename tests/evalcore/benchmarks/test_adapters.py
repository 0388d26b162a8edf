"""What every adapter shares: a row becomes a `Sample` in one place
(`evalcore.dataset.tsv.row_sample`), so the video path, the kept row and the fields every
stage reads are derived alike for every layout."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import evalcore
from evalcore.benchmarks import BENCHMARKS, get_benchmark
from evalcore.config import DatasetSpec
from evalcore.dataset import Sample, tsv
from tests.doubles.benchmarks.mlvu_tempcompass import build_mlvu, build_tempcompass
from tests.doubles.benchmarks.mvbench import build_mvbench
from tests.doubles.benchmarks.open_ended import (
    build_mlvu_open,
    build_mmbench_video,
    build_tempcompass_captioning,
)

EVALCORE = Path(evalcore.__file__).parent


def _dataset(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> list[DatasetSpec]:
    """The benchmark's test dataset (with and without subtitles where it has them)."""
    if name == "generic":
        tsvs = [request.getfixturevalue("small_bench")]
    elif name == "videomme":
        tsvs = [request.getfixturevalue("videomme_root") / "Video-MME.tsv"]
    elif name == "longvideobench":
        tsvs = [request.getfixturevalue("longvideobench_root") / "LongVideoBench.tsv"]
    else:
        build = {
            "mvbench": lambda root: build_mvbench(root, with_webm=False),
            "mlvu": build_mlvu,
            "tempcompass": build_tempcompass,
            "mmbench_video": build_mmbench_video,
            "mlvu_open": build_mlvu_open,
            "tempcompass_captioning": build_tempcompass_captioning,
        }[name]
        tsvs = [build(tmp_path)]
    subtitles = (False, True) if name in ("videomme", "longvideobench") else (False,)
    return [DatasetSpec(tsv=t, benchmark=name, subtitles=s) for t in tsvs for s in subtitles]


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_adapter_builds_its_samples_through_row_sample(name, request, tmp_path, monkeypatch):
    built: list[Sample] = []

    def recorded(**fields) -> Sample:
        built.append(Sample(**fields))
        return built[-1]

    monkeypatch.setattr(tsv, "Sample", recorded)  # the name `row_sample` builds with
    for spec in _dataset(name, request, tmp_path):
        built.clear()
        samples = get_benchmark(name).load(spec)
        assert samples and len(built) == len(samples)
        assert all(s is b for s, b in zip(samples, built, strict=True))
        root = spec.root or spec.tsv.parent
        assert all(s.video_path.is_relative_to(root) and s.path_error is None for s in samples)


def test_a_sample_is_constructed_in_one_place():
    """`Sample(...)` appears once in evalcore: in `row_sample`."""
    calls = []
    for path in sorted(EVALCORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "Sample":
                    calls.append((path, node.lineno))
    lines, first = inspect.getsourcelines(tsv.row_sample)
    assert [(p, first <= n < first + len(lines)) for p, n in calls] == [(Path(tsv.__file__), True)]
