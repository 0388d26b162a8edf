"""Explicit cache keys. Prefect's default includes the flow-run id (nothing resumes across
runs) and `INPUTS` alone ignores which task it is; these name the stage and a version."""

from __future__ import annotations

from typing import Any

from evalcore.config import settings_hash
from evalcore.stages import PIPELINE_VERSION


def stage_key(stage: str, *parts: Any) -> str:
    return f"{stage}-v{PIPELINE_VERSION}-{settings_hash(*parts)}"
