"""`random`: a seeded chance-level baseline, so a leaderboard always shows the floor."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from evalcore.dataset.sample import LETTERS
from evalcore.models.base import VideoRequest
from evalcore.models.registry import register_model


class RandomChoiceModel:
    """Picks an option letter from a hash of (seed, sample id): stable across runs and
    processes, independent of batch order or sharding."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = "random"

    def generate(self, requests: Sequence[VideoRequest]) -> list[str]:
        return [self._pick(r) for r in requests]

    def _pick(self, request: VideoRequest) -> str:
        digest = hashlib.sha256(f"{self.seed}:{request.sample_id}".encode()).digest()
        return LETTERS[int.from_bytes(digest[:8], "big") % len(request.options)]


@register_model("random")
def build_random(seed: int = 0) -> RandomChoiceModel:
    return RandomChoiceModel(seed=seed)
