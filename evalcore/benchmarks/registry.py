"""Benchmark adapters by name (`datasets[].benchmark`), imported on first use, so a run
pays only for its own."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from evalcore.benchmarks.base import Benchmark
from evalcore.scoring.rule_sets import DEFAULT_RULE_SET, RuleSet

if TYPE_CHECKING:
    from evalcore.benchmarks.source import DatasetSource

BENCHMARKS: dict[str, str] = {
    "generic": "evalcore.benchmarks.generic:GenericMCQ",
    "videomme": "evalcore.benchmarks.videomme:VideoMME",
    "longvideobench": "evalcore.benchmarks.longvideobench:LongVideoBench",
    "mvbench": "evalcore.benchmarks.mvbench:MVBench",
    "mlvu": "evalcore.benchmarks.mlvu:MLVU",
    "tempcompass": "evalcore.benchmarks.tempcompass:TempCompass",
    "mmbench_video": "evalcore.benchmarks.mmbench_video:MMBenchVideo",
    "mlvu_open": "evalcore.benchmarks.mlvu_open:MLVUOpenEnded",
    "tempcompass_captioning": "evalcore.benchmarks.tempcompass_captioning:TempCompassCaptioning",
}


def benchmark_names() -> list[str]:
    return sorted(BENCHMARKS)


def get_benchmark(name: str, rule_set: str = DEFAULT_RULE_SET) -> Benchmark:
    """The adapter registered as `name`, reading answers under `rule_set`
    (`evalcore.scoring.rule_sets`); KeyError names the known ones."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(benchmark_names())}")
    module, _, cls = BENCHMARKS[name].partition(":")
    adapter = getattr(importlib.import_module(module), cls)()
    adapter.rule_set = RuleSet(rule_set)
    return adapter


def adapter_of(source: DatasetSource, rule_set: str = DEFAULT_RULE_SET) -> Benchmark:
    """The adapter that reads `source` (its `benchmark`), under `rule_set`."""
    return get_benchmark(source.benchmark, rule_set)
