"""Tiny datasets in the real benchmarks' layouts (real clips, the TSV columns VLMEvalKit
writes), built on the spot by the tests."""
