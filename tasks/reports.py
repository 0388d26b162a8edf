"""Publish the leaderboard as files and as Prefect artifacts (table + markdown)."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from evalcore.reports import leaderboard_markdown
from evalcore.stages import publish_leaderboard
from evalcore.workspace import Workspace

ARTIFACT_KEY = "video-leaderboard"


@task(name="publish-leaderboard", cache_policy=NO_CACHE)
def publish(ws: Workspace) -> list[dict]:
    rows, paths = publish_leaderboard(ws)
    table = [
        {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in r.items()
            if k != "per_category"
        }
        for r in rows
    ]
    create_table_artifact(table=table, key=ARTIFACT_KEY, description="Latest accuracy per cell")
    create_markdown_artifact(
        markdown=leaderboard_markdown(rows), key=f"{ARTIFACT_KEY}-md", description=str(paths["md"])
    )
    return rows
