"""Pull steps of deployments/prefect.yaml (run by the worker before each flow run)."""

from __future__ import annotations

import os
from pathlib import Path


class ProjectDirMissing(RuntimeError):
    """Neither the project directory nor the deploying directory was recorded."""


def enter_project_dir(directory: str = "", deployed_from: str = "") -> dict[str, str]:
    """Work in the project directory: `EVALCORE_PROJECT_DIR` as it was when deploying,
    else the directory `prefect deploy` ran in (its `$PWD`), so the relative paths of the
    parameters (data/, work/, outputs/) resolve there, never in a temporary directory."""
    chosen = directory.strip() or deployed_from.strip()
    if not chosen:
        raise ProjectDirMissing(
            "these deployments were made without EVALCORE_PROJECT_DIR or $PWD; deploy again "
            "from the project's root (`evalcore serve`, or `EVALCORE_PROJECT_DIR=$PWD prefect "
            "deploy --all --prefect-file deployments/prefect.yaml`)"
        )
    path = Path(chosen)
    if not path.is_dir():
        raise ProjectDirMissing(f"project directory {path} (from the deployment) does not exist")
    os.chdir(path)
    return {"directory": str(path)}
