"""Publish the leaderboard as files and as Prefect artifacts with stable keys.

Keys (each new publish is a new version of the same artifact, so `prefect artifact ls`
and the UI's Artifacts page show the latest, with its history one click away):
  video-leaderboard        table: latest score per cell with its 95% interval, change and
                           its significance, failed, tokens, cost, last evaluated
  video-leaderboard-md     markdown: the ranked tables of leaderboard.md
  video-leaderboard-chart  markdown: accuracy over the snapshots with error bars, and the
                           current score per category (the PNGs, inlined)
"""

from __future__ import annotations

import base64

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from evalcore.reports import format_accuracy, format_unjudged, leaderboard_markdown
from evalcore.reports.history import publish_leaderboard
from evalcore.workspace import Workspace

ARTIFACT_KEY = "video-leaderboard"


@task(name="publish-leaderboard", cache_policy=NO_CACHE, task_run_name="publish leaderboard")
def publish(ws: Workspace, snapshot: bool = False) -> list[dict]:
    """Rebuild the leaderboard from every cell; with `snapshot`, also freeze a dated copy."""
    board, paths = publish_leaderboard(ws, snapshot=snapshot)
    table = [
        {
            "score (95% CI)": format_accuracy(r),
            **{
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in r.items()
                if k not in ("per_category", "per_category_ci")
            },
            "unjudged_reasons": format_unjudged(r),
        }
        for r in board
    ]
    create_table_artifact(table=table, key=ARTIFACT_KEY, description="Latest accuracy per cell")
    create_markdown_artifact(
        markdown=leaderboard_markdown(board), key=f"{ARTIFACT_KEY}-md", description=str(paths["md"])
    )
    png = base64.b64encode(paths["png"].read_bytes()).decode()
    categories = base64.b64encode(paths["categories_png"].read_bytes()).decode()
    taken = f"Snapshot: `{paths['snapshot']}`\n\n" if "snapshot" in paths else ""
    create_markdown_artifact(
        markdown=f"# Accuracy over time\n\n{taken}![chart](data:image/png;base64,{png})\n\n"
        "Error bars: 95% intervals, cluster bootstrap over videos.\n\n"
        f"# Per category, now\n\n![categories](data:image/png;base64,{categories})\n",
        key=f"{ARTIFACT_KEY}-chart",
        description=str(paths["png"]),
    )
    return board
