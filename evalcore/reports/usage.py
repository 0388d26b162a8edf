"""What a cell's answers cost: tokens, wall time per sample and, with a price, money.

Tokens are those each prediction record carries: the endpoint's `usage` for an API
answer, the tokenizer's count for a local `transformers` model (0 where a model reports
none: the built-in `reference` and `random` models, or logs older than the fields). An
answer from the response cache spent nothing now; its tokens (those of the request that
made it, when the cache kept them) are counted as saved.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from evalcore.config import Price
from evalcore.predictions import PredictionRecord


@dataclass(frozen=True)
class CellUsage:
    """Totals over the records that count for a cell (all trials)."""

    answers: int = 0  # successful records
    prompt_tokens: int = 0  # spent by requests (answers not from the cache)
    completion_tokens: int = 0
    cached_answers: int = 0  # answers from the API response cache
    cached_prompt_tokens: int = 0  # what those took when first asked: saved here
    cached_completion_tokens: int = 0
    seconds_per_sample: float | None = None  # mean wall time of an answer made by the model
    cost: float | None = None  # with a price: what the spent tokens cost
    saved_cost: float | None = None  # with a price: what the cache hits would have cost
    currency: str | None = None


def cell_usage(records: Iterable[PredictionRecord], price: Price | None = None) -> CellUsage:
    answered = [r for r in records if r.ok]
    made = [r for r in answered if not r.from_cache]
    cached = [r for r in answered if r.from_cache]
    spent = (sum(r.prompt_tokens for r in made), sum(r.completion_tokens for r in made))
    saved = (sum(r.prompt_tokens for r in cached), sum(r.completion_tokens for r in cached))
    return CellUsage(
        answers=len(answered),
        prompt_tokens=spent[0],
        completion_tokens=spent[1],
        cached_answers=len(cached),
        cached_prompt_tokens=saved[0],
        cached_completion_tokens=saved[1],
        seconds_per_sample=statistics.fmean(r.seconds for r in made) if made else None,
        cost=price.cost(*spent) if price else None,
        saved_cost=price.cost(*saved) if price else None,
        currency=price.currency if price else None,
    )
