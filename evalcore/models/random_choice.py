"""`random`: a seeded chance-level baseline, so a leaderboard always shows the floor."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from evalcore.dataset.sample import LETTERS
from evalcore.models.base import BaseVideoModel, GenerationConfig, ModelError, VideoRequest


class RandomChoiceModel(BaseVideoModel):
    """Picks an option letter from a hash of (the trial's seed, sample id): stable across
    runs and processes, independent of batch order or sharding. No params; the seed is
    `generation.seed` (the run's seed plus the trial)."""

    def __init__(self, params) -> None:
        super().__init__(params)
        self.name = "random"

    def generate(
        self, requests: Sequence[VideoRequest], generation: GenerationConfig
    ) -> list[str | ModelError]:
        return [self._pick(r, generation.seed) for r in requests]

    @staticmethod
    def _pick(request: VideoRequest, seed: int) -> str:
        """An option letter; `yes` or `no` for a question without options."""
        digest = hashlib.sha256(f"{seed}:{request.sample_id}".encode()).digest()
        choices = LETTERS[: len(request.options)] or ("yes", "no")
        return choices[int.from_bytes(digest[:8], "big") % len(choices)]
