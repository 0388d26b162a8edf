"""Benchmarks: typed samples, the VLMEvalKit TSV loader and the synthetic generator."""

from evalcore.dataset.sample import LETTERS, Sample
from evalcore.dataset.tsv import DatasetError, load_tsv

__all__ = ["LETTERS", "DatasetError", "Sample", "load_tsv"]
