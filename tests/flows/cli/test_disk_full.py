"""A full disk mid-run: one line naming the path and what to free (exit 1), no
traceback, and the prediction logs written so far still whole JSON lines."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.cli.main import describe_full_disk, full_disk_error
from tests.doubles.prefect_home import prefect_home

REPO = Path(__file__).resolve().parents[3]


def enospc(filename: str | None = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)


def raised(make):
    try:
        make()
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def test_a_full_disk_is_found_behind_causes_contexts_and_groups():
    full = enospc("work/x.jsonl")

    def caused():
        raise RuntimeError("task failed") from full

    def during():
        try:
            raise full
        except OSError:
            raise ValueError("while handling it")  # noqa: B904 - its context, no cause

    assert full_disk_error(raised(caused)) is full
    assert full_disk_error(raised(during)) is full
    group = ExceptionGroup("tasks", [KeyError("k"), RuntimeError("r")])
    assert full_disk_error(group) is None
    nested = ExceptionGroup("tasks", [KeyError("k"), ExceptionGroup("inner", [full])])
    assert full_disk_error(nested) is full
    quota = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert full_disk_error(quota) is quota
    assert full_disk_error(OSError(errno.EACCES, "Permission denied")) is None


def test_sqlites_disk_full_counts_too(tmp_path):
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL
    assert full_disk_error(error) is error
    assert full_disk_error(sqlite3.OperationalError("no such table")) is None


def test_the_line_names_the_file_else_the_run_folders_and_what_to_free(tmp_path):
    args = argparse.Namespace(
        command="run", config=Path("run.yaml"), write_dirs=(tmp_path / "w", tmp_path / "o")
    )
    line = describe_full_disk(enospc("w/predictions/main.jsonl"), args)
    assert line == (
        "no space left on device writing w/predictions/main.jsonl: free space on that "
        "filesystem (`evalcore gc run.yaml` frees frames and records no config uses; "
        f"{tmp_path / 'w' / 'frames'} may be deleted whole: its frames are decoded again) "
        "and run again; finished answers are kept"
    )
    # no file named: the run's folders on the fullest filesystem (here one, both)
    line = describe_full_disk(enospc(), args)
    assert line.startswith(
        f"no space left on device writing under {tmp_path / 'w'} or {tmp_path / 'o'}: "
    )


def run_config(tmp_path: Path, tsv: Path, work: Path) -> Path:
    raw = {
        "datasets": [{"tsv": str(tsv)}],
        "models": [{"name": "rnd", "kind": "random"}],
        "work_dir": str(work / "work"),
        "output_dir": str(work / "out"),
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(prefect_home(tmp_path / "home")),
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_error_line(done: subprocess.CompletedProcess) -> str:
    """Exit 1, no traceback, and one `error:` line, the last."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]], done.stderr
    return errors[0]


def prediction_logs(work: Path) -> list[Path]:
    # (how far the run got before the 64 KiB filled depends on timing: unloaded, the
    # frames can fill it before the first prediction log exists; then none is checked)
    logs = list((work / "work" / "predictions").rglob("*.jsonl"))
    for log in logs:  # every whole line is a record
        for line in log.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                json.loads(line)
    return logs


def torn(logs: list[Path]) -> list[Path]:
    return [log for log in logs if not log.read_bytes().endswith(b"\n") and log.stat().st_size]


APPEND_FILLS_THE_DISK = """
import errno, os, runpy, sys
from evalcore.predictions.journal import Journal

append, written = Journal.append, []

def append_until_full(self, record):
    if len(written) == 5:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
    append(self, record)
    written.append(record)

Journal.append = append_until_full
sys.argv = ["evalcore", "run", sys.argv[1]]
runpy.run_module("flows.cli.main", run_name="__main__")
"""


@pytest.mark.slow  # a whole run on a real Prefect server
def test_a_prediction_log_that_cannot_grow_is_one_line(small_bench, tmp_path):
    config = run_config(tmp_path, small_bench, tmp_path)
    done = run_cli(tmp_path, "-c", APPEND_FILLS_THE_DISK, str(config))
    line = assert_one_error_line(done)
    (log,) = prediction_logs(tmp_path)
    assert line.startswith(f"error: no space left on device writing {log}: free space on ")
    assert line.endswith("and run again; finished answers are kept")
    assert len(log.read_text().splitlines()) == 5 and not torn([log])


@pytest.fixture(scope="module")
def full_run(small_bench, tmp_path_factory):
    """`evalcore run` with its work and output dirs on a 64 KiB tmpfs (root only): frames,
    logs and reports run out of room in it. Returns the run and the mount point."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    tmp_path = tmp_path_factory.mktemp("full")
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    try:
        config = run_config(tmp_path, small_bench, mount)
        yield run_cli(tmp_path, "-m", "flows.cli.main", "run", str(config)), mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode:
            subprocess.run(["umount", "-l", str(mount)])


@pytest.mark.slow  # a whole run on a real Prefect server
def test_a_full_filesystem_mid_run_is_one_line(full_run):
    done, mount = full_run
    line = assert_one_error_line(done)
    assert re.match(
        rf"error: no space left on device writing (under )?{re.escape(str(mount))}/", line
    )
    prediction_logs(mount)


@pytest.mark.slow
def test_a_full_filesystem_tears_no_prediction_log(full_run):
    done, mount = full_run
    assert not torn(prediction_logs(mount))
