"""What a model is to the pipeline: a batch of requests in, one answer text per request out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Frames(Protocol):
    """Sampled frames of one clip as kept by the frame cache."""

    @property
    def paths(self) -> Sequence[Any]: ...  # JPEG files, one per frame, in time order

    @property
    def timestamps(self) -> Sequence[float]: ...  # seconds from the video start

    def load(self) -> Any: ...  # numpy uint8 array (T, H, W, 3), RGB


@dataclass(frozen=True)
class VideoRequest:
    """Everything a model needs to answer one sample."""

    sample_id: str
    prompt: str  # the rendered multiple-choice prompt (question + lettered options)
    question: str
    options: tuple[str, ...]
    frames: Frames
    category: str = ""


class ModelError(Exception):
    """A model could not answer one request; becomes a failure record, never an answer."""


@runtime_checkable
class VideoModel(Protocol):
    """A model answers a batch; an exception fails the batch (the runner then isolates it)."""

    name: str

    def generate(self, requests: Sequence[VideoRequest]) -> list[str]: ...
