"""Bad input to `evalcore run`: exit code 2, one line per problem naming the file, the
line and the field, no traceback, and no work started (no frame decoded)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.doubles.prefect_home import prefect_home

REPO = Path(__file__).resolve().parents[3]


def run(config: Path, cwd: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(prefect_home(cwd / "home")),
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "run", str(config)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_config(tmp_path: Path, tsv: Path, **changes) -> Path:
    raw = {
        "datasets": [{"tsv": str(tsv)}],
        "models": [{"name": "r", "kind": "random"}],
        "work_dir": str(tmp_path / "work"),
        "output_dir": str(tmp_path / "out"),
    }
    for key, value in changes.items():
        if key == "model":
            raw["models"][0].update(value)
        elif key == "dataset":
            raw["datasets"][0].update(value)
        else:
            raw[key] = value
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


HEADER = "index\tvideo\tquestion\tanswer\tcandidates\n"
ROW = "{i}\tv{i}\tWhat colour?\tA\t['red', 'blue']\n"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty_tsv", r"Bad\.tsv: the file is empty"),
        ("binary_tsv", r"Bad\.tsv: not a UTF-8 text file \(byte 0x89 at offset 0, line 1\)"),
        ("extra_tab", r"Bad\.tsv line 3: 6 fields, the header has 5 \(a stray tab\?\)"),
        ("missing_root", r"run\.yaml line \d+: datasets\.0\.root: .*root folder not found"),
        ("nframe_true", r"run\.yaml line \d+: frames\.nframe: .*not the boolean true"),
        ("bogus_param", r"run\.yaml line \d+: models\.0\.params\.bogus: Extra inputs"),
        ("missing_checkpoint", r"run\.yaml line \d+: models\.0\.params\.model: no checkpoint"),
        ("bad_yaml", r"run\.yaml line 2: not valid YAML: expected the node content"),
        (
            "missing_key_env",
            r"run\.yaml line \d+: models\.0\.params\.api_key_env: the environment variable "
            r"EVALCORE_TEST_UNSET_KEY is not set",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, case, expected):
    tsv = tmp_path / "Bad.tsv"
    good = HEADER + ROW.format(i=0) + ROW.format(i=1)
    if case == "empty_tsv":
        tsv.write_bytes(b"")
    elif case == "binary_tsv":
        tsv.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    elif case == "extra_tab":
        tsv.write_text(HEADER + ROW.format(i=0) + ROW.format(i=1).replace("\n", "\textra\n"))
    else:
        tsv.write_text(good)
    changes = {
        "missing_root": {"dataset": {"root": str(tmp_path / "nowhere")}},
        "nframe_true": {"frames": {"nframe": True}},
        "bogus_param": {"model": {"params": {"bogus": 1}}},
        "missing_checkpoint": {
            "model": {"kind": "transformers", "params": {"model": str(tmp_path / "ckpt")}}
        },
        "missing_key_env": {
            "model": {
                "kind": "openai-compatible",
                "params": {
                    "base_url": "http://127.0.0.1:9/v1",
                    "model": "m",
                    "api_key_env": "EVALCORE_TEST_UNSET_KEY",
                },
            }
        },
    }.get(case, {})
    config = write_config(tmp_path, tsv, **changes)
    if case == "bad_yaml":
        config.write_text("datasets: [\n  - tsv: x\nmodels: {")
    result = run(config, tmp_path, EVALCORE_TEST_UNSET_KEY="")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: ")

    assert re.search(expected, lines[0]), lines[0]
    assert not (tmp_path / "work").exists()  # nothing was started, nothing decoded


def test_an_api_url_that_refuses_connections_is_one_line_and_exit_2(tmp_path):
    tsv = tmp_path / "Bad.tsv"
    tsv.write_text(HEADER + ROW.format(i=0))
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api"
    result = run(write_config(tmp_path, tsv), tmp_path, PREFECT_API_URL=url)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the Prefect API at {url} ") and "cannot be reached" in line


BILLION_LAUGHS = """\
# billion laughs: 9**9 = 387,420,489 strings
datasets: [{tsv: Bad.tsv}]
models:
  - name: api
    kind: openai-compatible
    params:
      base_url: http://127.0.0.1:9/v1
      model: m
      extra_body:
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_an_alias_bomb_is_one_line_and_exit_2_before_any_work(tmp_path):
    assert len(BILLION_LAUGHS.encode()) == 619
    (tmp_path / "Bad.tsv").write_text(HEADER + ROW.format(i=0))
    config = tmp_path / "run.yaml"
    config.write_text(BILLION_LAUGHS)
    result = run(config, tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"error: {re.escape(str(config))} line 14: models\.0\.params\.extra_body\.e\.0: "
        r"YAML aliases expand to more than 10,000 values .*",
        line,
    ), line
    assert not (tmp_path / "work").exists()


def test_a_config_over_prefects_parameter_limit_is_one_line_and_exit_2(tmp_path):
    tsv = tmp_path / "Bad.tsv"
    tsv.write_text(HEADER + ROW.format(i=0))
    api = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "extra_body": {"doc": "x" * 600_000}}
    config = write_config(tmp_path, tsv, model={"kind": "openai-compatible", "params": api})
    result = run(config, tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert re.match(r"error: .*run\.yaml line \d+: models\.0\.params\.extra_body\.doc: ", line)
    assert "over Prefect's limit of 524,288" in line
    assert not (tmp_path / "work").exists()


def test_a_bad_server_start_timeout_is_one_line_and_exit_2(tmp_path):
    tsv = tmp_path / "Bad.tsv"
    tsv.write_text(HEADER + ROW.format(i=0))
    result = run(write_config(tmp_path, tsv), tmp_path, EVALCORE_SERVER_START_TIMEOUT="2m")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == "error: EVALCORE_SERVER_START_TIMEOUT='2m': not a number of seconds above 0"
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_a_missing_secret_block_fails_its_cell_once_with_one_line_and_exit_1(tmp_path):
    """Found only once the run has a Prefect server: the cell fails once, naming the
    block (no sample is failed for it, no traceback), the other cells are scored, and
    the command ends with one line and exit 1."""
    tsv = tmp_path / "Bad.tsv"
    tsv.write_text(HEADER + ROW.format(i=0) + ROW.format(i=1))
    for i in range(2):  # the random model needs no video; the API cell fails before any
        (tmp_path / f"v{i}").write_bytes(b"")
    config = write_config(tmp_path, tsv)
    raw = yaml.safe_load(config.read_text())
    raw["models"].append(
        {
            "name": "api",
            "kind": "openai-compatible",
            "params": {
                "base_url": "http://127.0.0.1:9/v1",
                "model": "m",
                "api_key_secret": "evalcore-no-such-block",
            },
        }
    )
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = run(config, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 unit(s) failed: Failed: infer api x Bad t0: ")
    assert "ApiKeyMissing: no Prefect Secret block named evalcore-no-such-block" in last
    assert (tmp_path / "out" / "r" / "r_Bad.xlsx").exists()  # the other cell was scored
    assert not list((tmp_path / "work").rglob("api/**/*.jsonl"))  # no sample failed for it


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"results_storage": "s3-bucket/nowhere"},
            r"^error: results_storage: no block 's3-bucket/nowhere' on this Prefect server",
        ),
        (
            {
                "inference": {"launcher": "torchrun", "placement": "pool", "shards": 2},
                "local_dir": "LOCAL",
            },
            r"^error: inference\.placement: pool needs the eval/shard deployment, which this "
            r"Prefect server does not have: run `evalcore serve`",
        ),
    ],
)
def test_what_the_server_lacks_is_one_line_and_exit_2(tmp_path, changes, expected):
    """A results block or the shard deployment the Prefect server does not have: named
    before the flow starts, nothing asked of a model."""
    tsv = tmp_path / "Bad.tsv"
    tsv.write_text(HEADER + ROW.format(i=0))
    if "local_dir" in changes:
        changes = {**changes, "local_dir": str(tmp_path / "local")}
    result = run(write_config(tmp_path, tsv, **changes), tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(expected, errors[0]), errors[0]
    assert not (tmp_path / "work" / "predictions").exists()  # no model was asked
