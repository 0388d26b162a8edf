"""How frames are sampled from a video and stored: one typed object per run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError


class FrameSettings(BaseModel):
    """Frame sampling, output size, JPEG quality and decoding limits.

    Exactly one of `nframe` and `fps` is set. Passing only `fps` switches sampling to a
    rate (nframe becomes None), so `FrameSettings(fps=1.0)` works as written; passing
    both is an error on the `fps` field. `sampler` decides which frames those are:
    ours (`midpoint`) or VLMEvalKit's (`vlmevalkit`), to reproduce its numbers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    nframe: int | None = Field(
        default=8,
        ge=1,
        description="Frames per clip, uniformly spaced (see sampler). Set this or fps, not both.",
    )
    fps: float | None = Field(
        default=None,
        gt=0,
        validate_default=True,
        description="Sample at this many frames per second of video instead of a fixed "
        "count (capped by max_frames). Set this or nframe, not both.",
    )
    sampler: Literal["midpoint", "vlmevalkit"] = Field(
        default="midpoint",
        description="Which frames nframe/fps pick. midpoint: the middle frame of each of "
        "nframe equal segments; with fps, the frame shown at (k + 0.5) / fps s. vlmevalkit: "
        "VLMEvalKit's save_video_frames, frame int(i * n / (nframe + 1)) for i = 1..nframe; "
        "with fps, frame int(k * video_fps / fps) for k < int(duration * fps). Clip bounds "
        "apply to both (the clip's frames stand for the video).",
    )
    max_frames: int = Field(
        default=64,
        ge=1,
        description="With fps sampling: the most frames per clip; a longer clip gets this "
        "many frames spread uniformly over it instead.",
    )
    max_side: int | None = Field(
        default=448,
        ge=16,
        description="Shrink frames so the longer side is at most this many pixels, keeping "
        "the aspect ratio (never enlarges). None keeps the full size.",
    )
    jpeg_quality: int = Field(
        default=90, ge=1, le=100, description="JPEG quality of the cached frames (1-100)."
    )
    backend: Literal["auto", "pyav", "decord"] = Field(
        default="auto",
        description="Video decoder. auto: the faster one measured on this machine (PyAV, "
        "seeking keyframe by keyframe), then decord if PyAV cannot read the file.",
    )
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one video may take to decode; past that its worker process is "
        "killed and the video is recorded as a DecodeTimeout failure.",
    )
    workers: int = Field(default=2, ge=1, description="Decoding processes running at once.")

    @field_validator(
        "nframe", "fps", "max_frames", "max_side", "jpeg_quality", "workers", mode="before"
    )
    @classmethod
    def _not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `nframe: true` as 1; a boolean here is always a typo.
        # (A float with a fractional part is already refused by the int fields.)
        if isinstance(value, bool):
            kind = "a number" if info.field_name == "fps" else "a whole number"
            raise PydanticCustomError(
                "bool_not_allowed",
                "{field} must be {kind}, not the boolean {value}",
                {"field": info.field_name, "kind": kind, "value": str(value).lower()},
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _fps_alone_means_rate_sampling(cls, data: Any) -> Any:
        # nframe has a default, so without this `FrameSettings(fps=1)` would always fail.
        if isinstance(data, dict) and data.get("fps") is not None and "nframe" not in data:
            return {**data, "nframe": None}
        return data

    @field_validator("fps")
    @classmethod
    def _exactly_one_of_nframe_and_fps(cls, fps: float | None, info: ValidationInfo):
        nframe = info.data.get("nframe")
        if "nframe" not in info.data:
            return fps  # nframe itself failed validation; that error is reported already
        if (nframe is None) == (fps is None):
            raise ValueError(f"set exactly one of nframe and fps (got nframe={nframe}, fps={fps})")
        return fps
