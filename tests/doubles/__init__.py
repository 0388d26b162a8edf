"""Stand-ins for real parts, in one place: models (models.py, scripted_model.py,
shard_faults.py), an OpenAI-compatible server (openai_server.py), clocks, held frames,
videos that say their frame numbers, tiny benchmarks in their own layouts (benchmarks/),
chat jobs, and the records that count for a cell (records.py).

Importable as `tests.doubles.*` (the repo root is on sys.path) or `doubles.*` (tests/ is
on sys.path under pytest); subprocesses get either through PYTHONPATH, and configs name
models by it (`doubles.models:CountingModel`, `tests.doubles.scripted_model:ScriptedModel`)."""
