"""The response cache: keys, persistence, several writing processes, stats and clear."""

from __future__ import annotations

import multiprocessing
import os

from evalcore.api.cache import ResponseCache, response_key

GEN = {"max_tokens": 16, "temperature": 0.0}


def test_key_covers_what_determines_an_answer_and_nothing_else():
    base = response_key("m", GEN, "prompt", ["h1", "h2"], "mcq-v1")
    assert base == response_key("m", dict(GEN), "prompt", ["h1", "h2"], "mcq-v1")
    changed = [
        response_key("m2", GEN, "prompt", ["h1", "h2"], "mcq-v1"),
        response_key("m", {**GEN, "temperature": 0.5}, "prompt", ["h1", "h2"], "mcq-v1"),
        response_key("m", GEN, "prompt!", ["h1", "h2"], "mcq-v1"),
        response_key("m", GEN, "prompt", ["h2", "h1"], "mcq-v1"),
        response_key("m", GEN, "prompt", ["h1", "h2"], "mcq-v2"),
    ]
    assert len({base, *changed}) == 6
    # the signature has no place for a URL or a key: neither can enter the hash


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
