"""Scoring of one model x dataset (all trials) from the durable logs."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from evalcore.stages import score_cell


# Not cached: a pure, millisecond function of the logs that must always reflect them.
@task(name="score", cache_policy=NO_CACHE)
def score(model, dataset, config, ws) -> dict:
    return score_cell(model, dataset, config, ws)
