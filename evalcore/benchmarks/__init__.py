"""Benchmark adapters by name (`datasets[].benchmark`): layout -> Samples, prompt,
answer rule, breakdowns; and the samples of a dataset, read once per file version."""

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.benchmarks.registry import BENCHMARKS, adapter_of, benchmark_names, get_benchmark
from evalcore.benchmarks.source import DatasetSource, load_samples

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "DatasetSource",
    "Extraction",
    "adapter_of",
    "benchmark_names",
    "get_benchmark",
    "load_samples",
]
