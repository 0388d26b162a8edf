"""How frames are sampled from a video and stored, and how fast: one typed object per run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from evalcore.frames.plan import FramePlan, not_a_boolean


class FrameSettings(FramePlan):
    """A frame plan (sampling, output size, JPEG quality: `FramePlan`) and the decoding
    limits that make its frames: decoder, timeout and workers change how fast frames
    are made, not which, so they are in no key (`FramePlan.identity` leaves them out).
    """

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

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        return not_a_boolean(value, info)
