"""Test-only models, importable as `doubles.*` (tests/ is on sys.path under pytest;
subprocesses get it through PYTHONPATH). Configs name them as `doubles.models:factory`."""
