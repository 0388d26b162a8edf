"""The model contract: what a model is to the pipeline, and where one replica runs.

A model kind is a class with a pydantic `Params` (validated when the config is read),
built once per process from those params, then `load(runtime)` on its device,
`generate(requests, generation)` over batches, `close()` at the end. Device placement
is the runner's: a kind never picks its own device.

`generate` returns one item per request: a `ModelOutput` (the answer text with the
tokens it took; a kind of your own may return the plain text instead: cost unknown), or
a `ModelError` for a request that failed alone (a bad sample never forces the batch to
be re-run one by one). An exception raised by
`generate` fails the whole batch; the runner then isolates the culprit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from evalcore.predictions.failures import FailureKind


@runtime_checkable
class Frames(Protocol):
    """Sampled frames of one clip as kept by the frame cache."""

    @property
    def paths(self) -> Sequence[Any]: ...  # JPEG files, one per frame, in time order

    @property
    def timestamps(self) -> Sequence[float]: ...  # seconds from the video start

    def load(self) -> Any: ...  # numpy uint8 array (T, H, W, 3), RGB


class ChatMessage(BaseModel):
    """One chat turn. `video` marks where the clip's frames go in a user turn."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    text: str
    video: bool = False  # the frames come before `text` in this turn


@dataclass(frozen=True)
class VideoRequest:
    """Everything a model needs to answer one sample."""

    sample_id: str
    prompt: str  # the rendered question text (the last user turn's text)
    question: str
    options: tuple[str, ...]
    frames: Frames
    category: str = ""
    messages: tuple[ChatMessage, ...] = ()  # system + user(video + text), from the template
    source_fps: float | None = None  # the video's frame rate (temporal position ids)
    pack_ids: tuple[str, ...] = ()  # pack mode: the samples this one request answers
    source_frames: int | None = None  # the video's frame count (None: not known)
    frame_indices: tuple[int, ...] = ()  # the frames' numbers in the video (empty: not known)

    @property
    def timestamps(self) -> tuple[float, ...]:
        return tuple(self.frames.timestamps)


class Usage(NamedTuple):
    """The tokens one request took (0: not known): the prompt's as the model saw it,
    and the ones it generated."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ModelOutput:
    """What a model answered one request with: the text, the tokens it took, and
    whether it came from the API response cache (`cached`: its tokens were spent by the
    request that made it, so they are saved, not spent, here)."""

    text: str
    usage: Usage = Usage()
    cached: bool = False


class ModelError(Exception):
    """A model could not answer one request; becomes a failure record, never an answer.

    `error_type` names the failure class in the record: a `FailureKind` (e.g.
    `FailureKind.InvalidFrames`), or a kind of the model's own, by name (retried by the
    next run, as every name that is no `FailureKind` is). Default: the class's name.
    """

    def __init__(self, message: str, error_type: FailureKind | str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type or type(self).__name__


class GenerationConfig(BaseModel):
    """How a model decodes: part of the model's identity (a change gives new answer keys).

    Settable per model in the config (`models[].generation`). `seed` is the base of the
    trial seeds: trial t of a run with seed s uses `seed + s + t`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(default=64, ge=1, description="Most tokens generated per answer.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0: greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int = Field(default=0, description="Added to the run's seed and the trial number.")
    stop: tuple[str, ...] = Field(default=(), description="Cut the answer at the first of these.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Runtime:
    """Where one model replica runs. `device` is `cpu` or `cuda:N`; `devices` lists every
    device of a replica split over several GPUs (the first is `device`)."""

    device: str = "cpu"
    devices: tuple[str, ...] = ()
    dtype: str = "auto"  # auto: bfloat16 on GPU, float32 on CPU
    rank: int = 0
    world_size: int = 1
    # torch CPU threads of this process (1 per rank: more ran 7x slower on 2 shared cores)
    threads: int = 1

    @property
    def device_class(self) -> str:
        """`cpu` or `cuda`: part of the model identity (GPU and CPU answers never mix)."""
        return self.device.split(":", 1)[0]

    @property
    def all_devices(self) -> tuple[str, ...]:
        return self.devices or (self.device,)


class ModelParams(BaseModel):
    """Base of every kind's params: unknown fields are errors, named at config time."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


@runtime_checkable
class VideoModel(Protocol):
    """What the runner calls. Subclass `BaseVideoModel` for the defaults."""

    name: str

    def load(self, runtime: Runtime) -> None: ...

    def generate(
        self, requests: Sequence[VideoRequest], generation: GenerationConfig
    ) -> list[ModelOutput | str | ModelError]: ...

    def close(self) -> None: ...


class BaseVideoModel:
    """Defaults for a model kind: no loading, nothing to close, identity = params.

    A kind sets `Params` (a `ModelParams` subclass) and overrides `identity` when its
    params do not identify what it answers with (a checkpoint changed in place, an
    endpoint's served model).
    """

    Params: ClassVar[type[ModelParams]] = ModelParams
    # Modules `load` imports (torch, a framework): a torchrun launch imports them once
    # in its preload server, before any rank starts (evalcore.inference.torchrun.preload).
    preload_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: ModelParams) -> None:
        self.params = params
        self.name = type(self).__name__
        self.runtime = Runtime()

    @classmethod
    def identity(cls, params: ModelParams) -> dict[str, Any]:
        """What identifies this model's answers besides generation settings and device
        class; cheap (no weights loaded), called when keys are computed."""
        return params.model_dump(mode="json")

    def load(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def generate(
        self, requests: Sequence[VideoRequest], generation: GenerationConfig
    ) -> list[ModelOutput | str | ModelError]:
        raise NotImplementedError

    def close(self) -> None:
        return None
