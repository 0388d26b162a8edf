"""What `evalcore run` pays before and around the flow: it imports only what the run needs
(no torch, pandas, openpyxl or matplotlib until a model is built or a report written),
a run that changes nothing rewrites no report, and the CLI picks its Prefect API: the
settings', else a running `evalcore serve`, else a temporary server of its own."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from flows.cli.prefect_api import choose_api, served_api
from flows.cli.serve import write_state
from tests.doubles.prefect_home import prefect_home

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "pandas", "openpyxl", "matplotlib", "transformers", "aiohttp", "av", "numpy")
HEAVY += ("PIL", "pebble")  # a run whose frames are all cached decodes nothing

RUN_PATH = """
import json, sys
from pathlib import Path
import flows.cli.main as cli
cli.build_parser()
(config,) = cli._load_checked([Path(sys.argv[1])])
from flows.eval import eval_flow
from evalcore.cell import cells_of
cells_of(config)  # every model's identity, as the flow computes it
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def write_config(tmp_path: Path, tsv: Path, models: list[dict]) -> Path:
    raw = {
        "datasets": [{"tsv": str(tsv)}],
        "models": models,
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(prefect_home(tmp_path / "home")),
    }
    env.pop("PREFECT_API_URL", None)
    return env


def test_the_run_path_up_to_the_flow_imports_no_model_or_report_library(small_bench, tmp_path):
    models = [{"name": "ref", "kind": "reference"}, {"name": "rnd", "kind": "random"}]
    config = write_config(tmp_path, small_bench, models)
    done = subprocess.run(
        [sys.executable, "-c", RUN_PATH.format(heavy=HEAVY), str(config)],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


RUN_AND_LIST_MODULES = """
import atexit, json, runpy, sys
config, listing = sys.argv[1:]
atexit.register(lambda: open(listing, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["evalcore", "run", config]
runpy.run_module("flows.cli.main", run_name="__main__")
"""


def test_a_run_with_every_unit_cached_imports_none_and_rewrites_no_report(small_bench, tmp_path):
    config = write_config(tmp_path, small_bench, [{"name": "rnd", "kind": "random"}])
    out = tmp_path / "out"

    def run(modules: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", RUN_AND_LIST_MODULES, str(config), str(modules)],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )

    first = run(tmp_path / "first.json")
    assert first.returncode == 0, first.stderr
    assert "Prefect: temporary server at http://127.0.0.1:" in first.stderr
    files = {p: p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    assert "pandas" in json.loads((tmp_path / "first.json").read_text())  # reports written

    second = run(tmp_path / "second.json")
    assert second.returncode == 0, second.stderr
    loaded = set(json.loads((tmp_path / "second.json").read_text()))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert {p: p.stat().st_ino for p in out.rglob("*") if p.is_file()} == files
    assert "Cached" in second.stdout + second.stderr


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server interface
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


def test_a_served_server_that_answers_is_used_else_a_temporary_one_starts(
    tmp_path, health_server, monkeypatch
):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    home = tmp_path / ".prefect"
    home.mkdir()
    assert served_api(home) is None  # no serve.json

    write_state(home, {"api_url": health_server, "server": {"pid": os.getpid()}})
    assert served_api(home) == health_server
    api = choose_api(tmp_path)
    assert api.served == health_server and api.temporary is None

    write_state(home, {"api_url": "http://127.0.0.1:9/api", "server": {"pid": 1}})  # dead
    assert served_api(home) is None
    api = choose_api(tmp_path)
    try:
        assert api.served is None and api.temporary is not None  # booting already
        assert api.temporary.proc.poll() is None
    finally:
        api.close()

    monkeypatch.setenv("PREFECT_API_URL", health_server)  # the settings' choice wins
    api = choose_api(tmp_path)
    assert api.served is None and api.temporary is None


class FirstCallHangs(Health):
    """A busy server: the first health check gets no answer (until the test ends)."""

    def do_GET(self):  # noqa: N802 - the http.server interface
        self.server.calls += 1
        if self.server.calls == 1:
            self.server.released.wait(60)
            return
        super().do_GET()


def test_a_served_server_that_is_slow_to_answer_is_used_while_its_process_runs(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FirstCallHangs)
    server.calls, server.released = 0, threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    home = tmp_path / ".prefect"
    home.mkdir()
    try:
        write_state(home, {"api_url": url, "server": {"pid": os.getpid()}})  # alive
        assert served_api(home) == url and server.calls == 2  # asked again, not given up

        server.calls = 0
        write_state(home, {"api_url": url, "server": {"pid": 1 << 22}})  # no such process
        assert served_api(home) is None and server.calls == 1
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
