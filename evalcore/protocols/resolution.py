"""What a protocol sets for one (family, benchmark): the `Resolution`, and `resolve`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["evalcore", "vlmevalkit", "lmms-eval", "native"]
PROTOCOLS: tuple[str, ...] = ("evalcore", "vlmevalkit", "lmms-eval", "native")
DEFAULT_PROTOCOL = "evalcore"

# The choices that move a score, in the order reports and docs list them.
CHOICES: tuple[str, ...] = (
    "frames",
    "resolution",
    "storage",
    "time input",
    "prompt",
    "answer rule",
)


class ProtocolError(ValueError):
    """A protocol that cannot be applied to a model x benchmark (the reference itself
    cannot run it); the message says why."""


@dataclass(frozen=True)
class FrameCount:
    """The frame setting a reference takes from outside the model: a dataset's nframe or
    fps (VLMEvalKit's `Video-MME_64frame`, `_1fps`), else the run's `frames`.
    `model_set`: the model's own `frames` set nframe or fps (a model argument, which
    lmms-eval and native usage read instead of the dataset's)."""

    nframe: int | None = None
    fps: float | None = None
    model_set: bool = False

    @property
    def fields(self) -> dict[str, Any]:
        return {"nframe": self.nframe, "fps": self.fps}

    def describe(self) -> str:
        return f"{self.nframe} frames" if self.nframe is not None else f"{self.fps} fps"


@dataclass(frozen=True)
class Resolution:
    """A protocol applied to one family x benchmark.

    `frames`: FramePlan fields it sets, nframe and fps always together (nothing: the
    run's and model's own);
    `video_input` and `processor`: `kind: transformers` params it sets
    (`TransformersParams.video_input`, `.processor`: the bounds a reference loads its
    processor with);
    `rule_set`: the answer rule set of the headline; `reference`: each choice of
    `CHOICES` as the reference makes it, in words (the sensitivity report and
    docs/reproduce.md); `not_reproduced`: what stays ours under this protocol, and why.
    """

    protocol: str
    family: str
    benchmark: str
    frames: dict[str, Any] = field(default_factory=dict)
    video_input: dict[str, Any] = field(default_factory=dict)
    processor: dict[str, Any] = field(default_factory=dict)  # TransformersParams.processor
    rule_set: str = "evalcore"
    reference: dict[str, str] = field(default_factory=dict)
    not_reproduced: tuple[str, ...] = ()
    count: FrameCount = field(default_factory=FrameCount)  # the frame setting it was given

    def card(self) -> dict[str, Any]:
        """The protocol in a cell's reproducibility card (with what `explain
        --sensitivity` needs to resolve the other protocols for the same cell)."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "family": self.family,
            "frame_setting": {**self.count.fields, "model_set": self.count.model_set},
        }
        if self.not_reproduced:
            out["not_reproduced"] = list(self.not_reproduced)
        return out


def evalcore_settings(family: str = "") -> dict[str, str]:
    """Our own choices for `family`, in the words of `Resolution.reference`."""
    time = {
        "qwen2_5_vl": "the real frame times: second_per_grid_ts = 2 x the mean interval",
        "qwen3_vl": "the real frame times: <t seconds> before each temporal patch",
    }.get(family, "none")
    return {
        "frames": "midpoints of nframe equal segments (or fps sampling), from the run's `frames`",
        "resolution": "longer side <= frames.max_side (448), then the model's processor",
        "storage": "JPEG quality 90",
        "time input": time,
        "prompt": "the benchmark's prompt",
        "answer rule": "evalcore",
    }
