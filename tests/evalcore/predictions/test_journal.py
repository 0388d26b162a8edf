"""Journals: one writer each, torn tails cut only by the holder, gc's rewrite, and the
one module that takes flock locks. (Held by other processes: test_lock.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evalcore.atomic import atomic_write_text
from evalcore.inference.torchrun.attempts import StartLog, crash_counts
from evalcore.predictions import journal
from evalcore.predictions.journal import Journal, iter_lines, open_exclusive, rewrite

EVALCORE = Path(__file__).resolve().parents[3] / "evalcore"


def test_flock_is_taken_in_one_module():
    """Every lock of the work dir goes through evalcore.predictions.lock."""
    callers = set()
    for path in EVALCORE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            imported = isinstance(node, ast.Import | ast.ImportFrom) and any(
                "fcntl" in (getattr(node, "module", None) or "") or "fcntl" in alias.name
                for alias in node.names
            )
            called = isinstance(node, ast.Attribute) and node.attr in ("flock", "lockf")
            if imported or called:
                callers.add(path.relative_to(EVALCORE.parent).as_posix())
    assert callers == {"evalcore/predictions/lock.py"}


def test_a_torn_tail_is_cut_back_to_the_last_whole_line(tmp_path):
    path = tmp_path / "w.jsonl"
    whole = '{"sample_id":"1"}\n'
    path.write_text(whole + "x" * 200_000)  # a torn line longer than one read from the end
    assert list(iter_lines(path)) == [whole]  # readers skip it
    _, file = open_exclusive(tmp_path, "w")
    file.close()
    assert path.read_text() == whole

    path.write_text('{"sample_id":"2", "sta')  # not one whole line
    _, file = open_exclusive(tmp_path, "w")
    file.close()
    assert path.read_text() == ""


def test_a_second_open_file_gets_the_next_journal_and_cuts_nothing(tmp_path):
    with Journal(tmp_path, "w") as first:
        first._file.write('{"sample_id":"a"}\n{"sample_id":"b')  # mid-line, still alive
        with Journal(tmp_path, "w") as second:
            assert (first.path.name, second.path.name) == ("w.jsonl", "w-2.jsonl")
        assert first.path.read_text().endswith('"b')


def test_a_journal_replaced_between_open_and_lock_is_opened_again(tmp_path, monkeypatch):
    """gc's rewrite renames a new file over the journal a writer has just opened: once
    it holds the lock, the writer sees that and opens the new file."""
    path = tmp_path / "w.jsonl"
    path.write_text('{"old":1}\n')
    try_lock, calls = journal.try_lock, []

    def replaced_first(fd: int) -> bool:
        if not calls:
            atomic_write_text(path, '{"kept":1}\n')
        calls.append(fd)
        return try_lock(fd)

    monkeypatch.setattr(journal, "try_lock", replaced_first)
    opened, file = open_exclusive(tmp_path, "w")
    file.write('{"new":1}\n')
    file.close()
    assert opened == path and len(calls) == 2
    assert path.read_text() == '{"kept":1}\n{"new":1}\n'


def test_rewrite_waits_for_no_writer_and_replaces_or_removes(tmp_path):
    path = tmp_path / "w.jsonl"
    seen = []

    def edit(text):
        def read(p: Path) -> str | None:
            seen.append(list(iter_lines(p)))
            return text

        return read

    with Journal(tmp_path, "w") as log:
        log._file.write("1\n2\n")
        assert rewrite(path, edit("2\n")) is False  # held: not even read
    assert seen == []
    assert rewrite(path, edit(None)) is True and path.read_text() == "1\n2\n"
    assert rewrite(path, edit("2\n")) is True and path.read_text() == "2\n"
    assert rewrite(path, edit("")) is True and not path.exists()
    assert seen == [["1\n", "2\n"], ["1\n", "2\n"], ["2\n"]]


def test_a_rank_marks_file_is_a_journal(tmp_path):
    marks = tmp_path / "started" / "shard0-rank0.txt"
    marks.parent.mkdir()
    marks.write_text("+a\n+b")  # its rank was killed mid-write
    assert crash_counts(marks.parent, tmp_path / "logs") == {"a": 1}  # a torn mark: none
    first = StartLog(marks)
    assert marks.read_text() == "+a\n"  # cut by the new holder
    second = StartLog(marks)  # the first is alive: a file of its own, nothing cut
    assert second.path.name == "shard0-rank0-2.txt"
    first.started(["c"])
    second.started(["d"])
    first.close()
    second.close()
    assert crash_counts(marks.parent, tmp_path / "logs") == {"a": 1, "c": 1, "d": 1}


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_a_closed_journal_is_free_for_its_writer_again(tmp_path, suffix):
    path, file = open_exclusive(tmp_path, "w", suffix)
    file.close()
    again, file = open_exclusive(tmp_path, "w", suffix)
    file.close()
    assert path == again == tmp_path / f"w{suffix}"
