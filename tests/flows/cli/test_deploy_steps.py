"""The deployments' pull step: the project directory, else where `prefect deploy` ran,
else a clear error (never a silent temporary directory)."""

from __future__ import annotations

import os

import pytest

from flows.cli.deploy_steps import ProjectDirMissing, enter_project_dir


def test_project_dir_then_deploying_dir_then_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    (tmp_path / "shell").mkdir()
    assert enter_project_dir(str(tmp_path / "project"), str(tmp_path / "shell")) == {
        "directory": str(tmp_path / "project")
    }
    assert os.getcwd() == str(tmp_path / "project")
    enter_project_dir("", str(tmp_path / "shell"))  # `prefect deploy` without the variable
    assert os.getcwd() == str(tmp_path / "shell")
    with pytest.raises(ProjectDirMissing, match="EVALCORE_PROJECT_DIR"):
        enter_project_dir("", "")
    with pytest.raises(ProjectDirMissing, match="does not exist"):
        enter_project_dir(str(tmp_path / "gone"))
