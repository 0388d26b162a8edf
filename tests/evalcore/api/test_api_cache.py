"""The response cache: keys, persistence, several writing processes, stats and clear."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from evalcore.api.cache import ResponseCache, response_key


def context(**changes) -> str:
    """A cell's response context (see `Cell.response_context`) for an API model."""
    from evalcore.cell import Cell
    from evalcore.config import DatasetSpec, ModelSpec
    from evalcore.frames import FrameSettings

    params = {"base_url": "http://127.0.0.1:8000/v1", "model": "m", "max_tokens": 16, **changes}
    tsv = Path(__file__)  # any existing file: the context never reads it
    model = ModelSpec(name="m", kind="openai-compatible", params=params)
    cell = Cell(model, DatasetSpec(tsv=tsv), 0, 0, FrameSettings(), device_class="api")
    return cell.response_context


def test_key_covers_what_determines_an_answer_and_nothing_else():
    base = response_key(context(), "prompt", ["h1", "h2"])
    assert base == response_key(context(), "prompt", ["h1", "h2"])
    changed = [
        response_key(context(model="m2"), "prompt", ["h1", "h2"]),
        response_key(context(temperature=0.5), "prompt", ["h1", "h2"]),
        response_key(context(), "prompt!", ["h1", "h2"]),
        response_key(context(), "prompt", ["h2", "h1"]),
        # same served model name at another endpoint: other weights, never shared ...
        response_key(context(base_url="http://127.0.0.1:9000/v1"), "prompt", ["h1", "h2"]),
    ]
    assert len({base, *changed}) == 6
    # ... unless both name one cache namespace (replicas of one model)
    a = context(cache_namespace="qwen-7b", base_url="http://127.0.0.1:9000/v1")
    assert a == context(cache_namespace="qwen-7b")
    # limits, retries and the key's source change no answer
    assert context(max_in_flight=3, timeout=9, api_key_env="KEY") == context()


def test_answers_persist_across_connections(tmp_path):
    path = tmp_path / "c.sqlite3"
    with ResponseCache(path) as cache:
        assert cache.put_many([("k1", "m", "A"), ("k2", "m", "B")]) == 2
    with ResponseCache(path) as cache:
        assert cache.get_many(["k1", "k2", "k3"]) == {"k1": "A", "k2": "B"}


def _writer(path: str, start: int, n: int) -> None:
    with ResponseCache(path) as cache:
        for i in range(start, start + n, 10):
            cache.put_many([(f"k{j}", "m", f"v{j}") for j in range(i, i + 10)])


def test_several_processes_write_at_once(tmp_path):
    path = str(tmp_path / "c.sqlite3")
    ResponseCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k * 300, 300)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ResponseCache(path) as cache:
        got = cache.get_many(f"k{j}" for j in range(900))
    assert len(got) == 900 and got["k899"] == "v899"


def test_stats_and_clear(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        cache.put_many([("a", "m1", "A"), ("b", "m1", "B"), ("c", "m2", "C")])
        stats = cache.stats()
        assert stats.entries == 3 and stats.per_model == {"m1": 2, "m2": 1}
        assert stats.bytes_on_disk > 0
        assert cache.clear(model="m2") == 1
        assert cache.stats().per_model == {"m1": 2}
        assert cache.clear() == 2
        assert cache.stats().entries == 0


def test_file_hashes_are_content_hashes_remembered_per_file(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        ha, hb = cache.file_hashes([a, b])
        assert ha == hb  # content, not path
        a.write_bytes(b"changed!")
        os.utime(a, ns=(1, 1))
        assert cache.file_hashes([a])[0] != ha  # size/mtime changed: hashed again
