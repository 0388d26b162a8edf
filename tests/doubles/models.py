"""Wrappers around real models that record every call, and can be slowed down."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from evalcore.models.base import VideoRequest
from evalcore.models.registry import build_model


class CountingModel:
    """Delegates to a real model; appends `pid sample_id` per answered request to a file."""

    def __init__(self, inner: str, calls_file: str, delay_s: float, params: dict) -> None:
        self.inner = build_model(inner, params)
        self.name = f"counting-{inner}"
        self.calls_file = calls_file
        self.delay_s = delay_s

    def generate(self, requests: Sequence[VideoRequest]) -> list[str]:
        time.sleep(self.delay_s)
        answers = self.inner.generate(requests)
        with open(self.calls_file, "a", buffering=1) as f:
            for r in requests:
                f.write(f"{os.getpid()} {r.sample_id}\n")
        return answers


def counting(inner: str = "reference", calls_file: str = "", delay_s: float = 0.0, **params):
    return CountingModel(inner, calls_file, delay_s, params)


def read_calls(calls_file) -> list[str]:
    """Sample ids in call order (one entry per request the inner model answered)."""
    if not os.path.exists(calls_file):
        return []
    with open(calls_file) as f:
        return [line.split()[1] for line in f if line.strip()]
