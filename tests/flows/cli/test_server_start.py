"""The temporary Prefect server's start-up: a server that exits fails at once with its
log's last line, one that never answers fails past the limit (later while it still
works), and `evalcore run` says so in one line (exit 1), stopping the decoding it began."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.cli.prefect_api import ServerStartFailed, TemporaryServer, start_timeout_s
from tests.doubles.prefect_home import prefect_home

REPO = Path(__file__).resolve().parents[3]
NEVER_ANSWERS = "import time; time.sleep(600)"


def python(code: str):
    return lambda port: [sys.executable, "-c", code]


def forget(server: TemporaryServer) -> None:
    server.stop()
    if server.log_path is not None:
        server.log_path.unlink(missing_ok=True)


class FakeTime:
    """A clock that only `sleep` moves, one second a poll."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, _: float) -> None:
        self.now += 1.0


@pytest.mark.parametrize(
    ("works_until", "failed_at"),
    [
        (0.0, 100.0),  # stuck from the start: the limit
        (150.0, 160.0),  # still working past the limit: until it stalls for 10 s
        (1e9, 300.0),  # working for ever: three limits at most
    ],
)
def test_the_limit_stretches_while_the_server_works(works_until, failed_at):
    time = FakeTime()
    server = TemporaryServer(command=python(NEVER_ANSWERS))
    try:
        with pytest.raises(ServerStartFailed) as caught:
            server.wait_ready(
                100.0,
                clock=time.clock,
                sleep=time.sleep,
                cpu_seconds=lambda pid: min(time.now, works_until),  # CPU time grows as it works
            )
        assert server.proc is None  # stopped
        message = str(caught.value)
        assert message.startswith(
            f"the temporary Prefect server did not answer within {failed_at:.1f} s "
            f"(log: {server.log_path}); "
        )
        assert "EVALCORE_SERVER_START_TIMEOUT" in message and caught.value.exit_code == 1
        assert server.log_path.exists()  # saved for the user to read
    finally:
        forget(server)


def test_a_server_that_exits_fails_at_once_with_its_last_log_line():
    crash = (
        "import sys; print('starting'); sys.exit('sqlite3.OperationalError: database is locked')"
    )
    server = TemporaryServer(command=python(crash))
    try:
        with pytest.raises(ServerStartFailed) as caught:
            server.wait_ready(1e9)  # no limit: only the exit ends the wait
        assert str(caught.value) == (
            f"the temporary Prefect server exited with code 1 before answering (log: "
            f"{server.log_path}): sqlite3.OperationalError: database is locked"
        )
        assert "starting" in server.log_path.read_text()
    finally:
        forget(server)


def test_a_server_stopped_before_answering_leaves_no_log():
    server = TemporaryServer(command=python(NEVER_ANSWERS))
    server.stop()
    assert server.log_path is None  # its output was never given a name


ANSWERS_AND_LOGS = """
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        print("ERROR: a server-side error", file=sys.stderr, flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_a_server_that_answered_and_logged_has_its_log_saved_and_said(capsys):
    server = TemporaryServer(
        command=lambda port: [sys.executable, "-c", ANSWERS_AND_LOGS, str(port)]
    )
    try:
        assert server.wait_ready(60.0) == server.url
        server.stop()
        assert "ERROR: a server-side error" in server.log_path.read_text()
        assert capsys.readouterr().err == (
            f"Prefect: the temporary server logged errors: {server.log_path}\n"
        )
    finally:
        forget(server)


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), ("", None), ("300", 300.0), ("0.5", 0.5)]
)
def test_the_start_timeout_setting(monkeypatch, value, seconds):
    monkeypatch.delenv("EVALCORE_SERVER_START_TIMEOUT", raising=False)
    if value is not None:
        monkeypatch.setenv("EVALCORE_SERVER_START_TIMEOUT", value)
    assert start_timeout_s() == seconds


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_start_timeout_setting_is_a_user_error(monkeypatch, value):
    monkeypatch.setenv("EVALCORE_SERVER_START_TIMEOUT", value)
    with pytest.raises(ServerStartFailed, match="not a number of seconds") as caught:
        start_timeout_s()
    assert caught.value.exit_code == 2


RUN_WITH_A_SERVER_THAT_NEVER_ANSWERS = f"""
import runpy, sys
import flows.cli.prefect_api
flows.cli.prefect_api.server_command = lambda port: [sys.executable, "-c", {NEVER_ANSWERS!r}]
sys.argv = ["evalcore", "run", sys.argv[1]]
runpy.run_module("flows.cli.main", run_name="__main__")
"""


def test_a_run_whose_server_never_answers_is_one_line_and_stops_its_decoding(small_bench, tmp_path):
    config = tmp_path / "run.yaml"
    raw = {
        "datasets": [{"tsv": str(small_bench)}],
        "models": [{"name": "rnd", "kind": "random"}],
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "out"),
    }
    config.write_text(yaml.safe_dump(raw))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(prefect_home(tmp_path / "home")),
    }
    env.pop("PREFECT_API_URL", None)
    env["EVALCORE_SERVER_START_TIMEOUT"] = "0.5"
    done = subprocess.run(
        [sys.executable, "-c", RUN_WITH_A_SERVER_THAT_NEVER_ANSWERS, str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: the temporary Prefect server did not answer within "), line
    log = Path(line.split("(log: ", 1)[1].split(")", 1)[0])
    assert log.exists()
    log.unlink()
    # the decoding begun before the server was waited on ended cleanly: its frame index
    # has its end line (complete if it was quicker than the server's failure, else aborted)
    (index,) = (tmp_path / "work" / "frame-index").glob("*.jsonl")
    end = json.loads(index.read_text().splitlines()[-1])
    assert end["end"] in ("complete", "aborted"), end


def test_stopping_a_head_start_ends_it_at_its_next_clip(small_bench, tmp_path):
    from evalcore.config import parse_config
    from flows.cli.head_start import begin
    from flows.cli.main import _stop_head_starts

    config = parse_config(
        {
            "datasets": [{"tsv": str(small_bench)}],
            "models": [{"name": "rnd", "kind": "random"}],
            "work_dir": str(tmp_path / "work"),
        }
    )
    (head,) = begin(config)
    _stop_head_starts([head])
    with pytest.raises(Exception, match="the Prefect server did not start"):
        head.result.result(timeout=0)
    (index,) = (tmp_path / "work" / "frame-index").glob("*.jsonl")
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert lines[-1] == {
        "end": "aborted",
        "reason": "_FlowNotStarted: the Prefect server did not start",
    }
    assert len(lines) < 2 + 12  # the head, fewer clips than the 12 videos, the end
