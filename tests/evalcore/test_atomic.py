"""Atomic writes and the litter of killed writers: swept when the writer is gone, kept
while it lives (or lives on another host)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from evalcore.atomic import atomic_path, sweep

KILLED_WRITER = """
import sys, time
from pathlib import Path
from evalcore.atomic import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    tmp.write_text("half")
    print(tmp, flush=True)
    time.sleep(60)
"""


def killed_writer_litter(target: Path) -> Path:
    """The temporary file of a writer killed with SIGKILL while writing `target`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    litter = Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert litter.exists() and not target.exists()
    return litter


def test_a_killed_writers_temp_file_is_swept_and_a_live_ones_kept(tmp_path):
    litter = killed_writer_litter(tmp_path / "leaderboard.png")
    with atomic_path(tmp_path / "live.json") as live:  # this process: alive
        live.write_text("{}")
        other_host = tmp_path / ".x.tmp-1@00000000-abc"  # another host's, recent: kept
        other_host.write_text("")
        old = tmp_path / ".y.tmp-1@00000000-abc"  # another host's, two days old: litter
        old.write_text("")
        two_days = time.time() - 2 * 86400
        os.utime(old, (two_days, two_days))
        assert sweep(tmp_path, ".*.tmp-*") == 2
        assert not litter.exists() and not old.exists()
        assert live.exists() and other_host.exists()
    assert (tmp_path / "live.json").read_text() == "{}"


def test_publishing_sweeps_a_killed_publishers_litter(tmp_path):
    from evalcore.reports.history import publish_leaderboard
    from evalcore.workspace import Workspace

    ws = Workspace(tmp_path / "work", tmp_path / "outputs")
    ws.output_dir.mkdir(parents=True)
    litter = killed_writer_litter(ws.output_dir / "leaderboard.png")
    publish_leaderboard(ws)
    assert not litter.exists()
    assert not [p for p in ws.output_dir.rglob("*") if ".tmp-" in p.name]


def test_a_killed_runs_preload_folder_goes_when_the_next_server_starts(tmp_path, monkeypatch):
    import tempfile

    from evalcore.inference.torchrun import preload

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = (
        "import os, tempfile; from evalcore.atomic import temp_prefix; "
        f"print(tempfile.mkdtemp(prefix={preload.PRELOAD_DIR!r} + temp_prefix(), "
        f"dir={str(tmp_path)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dead = Path(out.stdout.strip())  # its process has exited: nobody will remove it
    assert dead.is_dir()
    server = preload.PreloadServer(dict(os.environ), [])
    try:
        assert not dead.exists()
        assert server.dir.exists() and server.dir.parent == tmp_path
    finally:
        server.close()
