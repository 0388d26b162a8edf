"""Fresh PREFECT_HOMEs whose database is already migrated.

Every CLI run a test starts gets its own PREFECT_HOME (its own temporary server and
SQLite database, so runs never see each other). A new database spends ~11 s in Prefect's
migrations before the server answers, a third of a small run; so the database is
migrated once per test session (`prefect server database upgrade`) and each new home
gets a copy of that file. Nothing else is shared: the server, its settings and its
processes are the home's own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

_LOCK = threading.Lock()
_TEMPLATE: list[Path] = []


def prefect_home(path: Path) -> Path:
    """Create `path` as a PREFECT_HOME holding a migrated, empty database; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    database = path / "prefect.db"
    if not database.exists():
        shutil.copyfile(_template(), database)
    return path


def _template() -> Path:
    with _LOCK:
        if not _TEMPLATE:
            home = Path(tempfile.mkdtemp(prefix="evalcore-prefect-template-"))
            atexit.register(shutil.rmtree, home, True)
            env = {**os.environ, "PREFECT_HOME": str(home)}
            env.pop("PREFECT_API_URL", None)
            env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
            prefect = Path(sys.executable).parent / "prefect"
            subprocess.run(
                [str(prefect), "server", "database", "upgrade", "-y"],
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
            _TEMPLATE.append(home / "prefect.db")
        return _TEMPLATE[0]
