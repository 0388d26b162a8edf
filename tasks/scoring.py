"""Scoring of one model x dataset (all trials) from the durable logs."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from evalcore.cell import Cell
from evalcore.reports import report_cell
from evalcore.workspace import Workspace


# Not cached: a pure, millisecond function of the logs that must always reflect them.
@task(name="score", cache_policy=NO_CACHE)
def score(trials: Sequence[Cell], ws: Workspace) -> dict:
    return report_cell(trials, ws)
