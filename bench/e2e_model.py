"""The GPU-like stand-in model of bench/e2e.py: it reads its frames (as any model does),
then sleeps `seconds_per_sample` per request and uses no CPU, like a request waiting on
a GPU. Importable by `evalcore run` as kind `e2e_model:SleepModel` (bench/ on PYTHONPATH)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from evalcore.models import BaseVideoModel, GenerationConfig, ModelParams, VideoRequest


class SleepParams(ModelParams):
    seconds_per_sample: float = 0.2


class SleepModel(BaseVideoModel):
    Params = SleepParams

    def generate(self, requests: Sequence[VideoRequest], generation: GenerationConfig):
        for r in requests:
            np.asarray(r.frames.load())  # the frames reach the "GPU"
        time.sleep(self.params.seconds_per_sample * len(requests))
        return ["A"] * len(requests)


def peer_model(frame_paths: Sequence[str], seconds_per_sample: float = 0.2) -> str:
    """The same model in the peer's loop: VLMEvalKit hands a model frame file paths."""
    from PIL import Image

    for path in frame_paths:
        with Image.open(path) as im:
            np.asarray(im.convert("RGB"))
    time.sleep(seconds_per_sample)
    return "A"
