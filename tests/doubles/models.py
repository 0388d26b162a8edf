"""Wrappers around real models that record every call, and can be slowed down."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from evalcore.models import BaseVideoModel, GenerationConfig, ModelParams, VideoRequest, build_model

COUNTING = "doubles.models:CountingModel"


class CountingParams(ModelParams):
    inner: str = "reference"
    calls_file: str = ""
    delay_s: float = 0.0
    inner_params: dict[str, Any] = Field(default_factory=dict)


class CountingModel(BaseVideoModel):
    """Delegates to a real model; appends `pid sample_id` per answered request to a file."""

    Params = CountingParams

    def __init__(self, params: CountingParams) -> None:
        super().__init__(params)
        self.inner = build_model(params.inner, params.inner_params)
        self.name = f"counting-{params.inner}"

    def load(self, runtime) -> None:
        super().load(runtime)
        self.inner.load(runtime)

    def generate(self, requests: Sequence[VideoRequest], generation: GenerationConfig):
        time.sleep(self.params.delay_s)
        answers = self.inner.generate(requests, generation)
        with open(self.params.calls_file, "a", buffering=1) as f:
            for r in requests:
                f.write(f"{os.getpid()} {r.sample_id}\n")
        return answers


def read_calls(calls_file) -> list[str]:
    """Sample ids in call order (one entry per request the inner model answered)."""
    if not os.path.exists(calls_file):
        return []
    with open(calls_file) as f:
        return [line.split()[1] for line in f if line.strip()]


PACKING = "doubles.models:PackingModel"


class PackingParams(ModelParams):
    calls_file: str = ""
    drop_last_of: tuple[str, ...] = ()  # packs (by first id) whose last answer is left out


class PackingModel(BaseVideoModel):
    """Answers a packed request with a JSON list ("B" each), a single one with "B"; logs
    the ids of every request (one line per request)."""

    Params = PackingParams

    def generate(self, requests: Sequence[VideoRequest], generation: GenerationConfig):
        answers = []
        with open(self.params.calls_file, "a", buffering=1) as f:
            for r in requests:
                ids = r.pack_ids or (r.sample_id,)
                f.write(" ".join(ids) + "\n")
                if not r.pack_ids:
                    answers.append("B")
                    continue
                n = len(ids) - (ids[0] in self.params.drop_last_of)
                answers.append(json.dumps(["B"] * n))
        return answers
