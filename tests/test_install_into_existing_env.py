"""Installing the project with its `local` extra into an environment that already holds
another torch, torchvision and transformers within the ranges replaces none of them.

A new venv gets torch 2.13.0 (the CPU build on this machine's disk), torchvision 0.28.0
(its pair) and transformers 5.17.0, none of which constraints.txt pins; then pip
resolves `.[local]` into it (`--dry-run --report`: the resolver's real decision, with
no second 200-package install) and the report must install none of the three.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALREADY_THERE = {"torch": "2.13.0", "torchvision": "0.28.0", "transformers": "5.17.0"}

pytestmark = pytest.mark.slow


def _pip(
    python: Path, *args: str, timeout: float = 600, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def existing_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the three packages at versions of its own; skipped where torch 2.13.0
    is not on local disk (elsewhere it would be a multi-GB download)."""
    env = tmp_path_factory.mktemp("existing") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    local = _pip(python, "install", "--dry-run", "--no-index", "--no-deps", "torch==2.13.0")
    if local.returncode != 0:
        pytest.skip("no torch 2.13.0 wheel on local disk (pip's find-links)")
    wanted = [f"{name}=={version}" for name, version in ALREADY_THERE.items()]
    # the three alone (their own dependencies are the resolver's business below): a venv
    # that holds them is all the question needs, at half the set-up time
    done = _pip(
        python, "install", "-q", "--no-compile", "--no-deps", "--only-binary=:all:", *wanted
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def test_local_extra_keeps_the_torch_and_transformers_already_there(
    existing_env: Path, tmp_path: Path
) -> None:
    before = _versions(existing_env)
    assert {name: before[name].split("+")[0] for name in ALREADY_THERE} == ALREADY_THERE

    report = tmp_path / "report.json"
    resolved = _pip(
        existing_env, "install", "--dry-run", "--quiet", "--report", str(report), ".[local]"
    )
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    to_install = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert "prefect" in to_install and "accelerate" in to_install  # the rest is resolved
    replaced = {name: to_install[name] for name in ALREADY_THERE if name in to_install}
    assert not replaced, f"pip would replace {replaced} (had {before})"
    assert _versions(existing_env) == before


def _versions(python: Path) -> dict[str, str]:
    # not from the repository: `python -m pip` puts its directory on sys.path, and pip
    # lists the video_evalcore.egg-info there (which resolving `.[local]` writes) too
    listed = _pip(python, "list", "--format=json", cwd=python.parent)
    assert listed.returncode == 0, listed.stderr
    return {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
