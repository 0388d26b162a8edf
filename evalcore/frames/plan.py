"""The frame plan: which frames of a clip a model sees, at what size, stored how.

A plan is one set of pixels: models whose plans are equal share one extraction, one
frame index per dataset and the same frame cache entries. Everything derived from a plan
is derived here: its identity (part of every cell key), the name of a dataset's frame
index under it, the spec and key of each cached clip, and how a reader describes it.
How fast frames are made (decoder, timeout, workers) is `FrameSettings`', in no key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from evalcore.hashing import stable_hash

if TYPE_CHECKING:
    from evalcore.config import DatasetSpec
    from evalcore.frames.cache import VideoJob
    from evalcore.workspace import Workspace

FORMAT_VERSION = 1  # bump when the sampling code or the layout changes what a key means


class FramePlan(BaseModel):
    """Frame sampling (rule and amount), output size and storage (JPEG and its quality,
    or lossless PNG).

    Exactly one of `nframe` and `fps` is set. Passing only `fps` switches sampling to a
    rate (nframe becomes None), so `FramePlan(fps=1.0)` works as written; passing both
    is an error on the `fps` field. `sampler` decides which frames those are: ours
    (`midpoint`), VLMEvalKit's (`vlmevalkit`), or another pipeline's video reader, to
    reproduce its numbers (`qwen_vl` takes nframe or fps; `lmms_eval_qwen`, `llava_ov`
    and `mvbench` nframe only, as their peers).

    Every field is a plan field: a model may override each (`models[].frames`), and
    each is in the plan's `identity` (`storage` only when not the default, so the keys
    of plans from before it stay as they were).
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
    sampler: Literal[
        "midpoint", "vlmevalkit", "qwen_vl", "lmms_eval_qwen", "llava_ov", "mvbench"
    ] = Field(
        default="midpoint",
        description="Which frames nframe/fps pick. midpoint: the middle frame of each of "
        "nframe equal segments; with fps, the frame shown at (k + 0.5) / fps s. "
        "vlmevalkit: VLMEvalKit's save_video_frames, frame int(i * n / (nframe + 1)) for "
        "i = 1..nframe; with fps, frame int(k * video_fps / fps) for k < int(duration * "
        "fps). qwen_vl: qwen-vl-utils' fetch_video as VLMEvalKit's Qwen2-VL asks it "
        "(nframes, or fps with max_frames if below its own cap); lmms_eval_qwen: "
        "lmms-eval's Qwen2.5-VL (qwen-vl-utils at 2 fps, then nframe of those); "
        "llava_ov: VLMEvalKit's LLaVA-OneVision (1 frame per second, at most nframe); "
        "mvbench: VLMEvalKit's MVBench get_index (nframe segment midpoints between "
        "the clip bounds). A clip's frames stand for the video (mvbench: its bounds "
        "in seconds). A clip the peer refuses (qwen-vl-utils: under 2 frames) fails.",
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
        default=90,
        ge=1,
        le=100,
        description="JPEG quality of the cached frames (1-100); with png storage, of the "
        "JPEGs made from them for models that upload JPEGs (API models).",
    )
    storage: Literal["jpeg", "png"] = Field(
        default="jpeg",
        description="How cached frames are stored. jpeg: at jpeg_quality. png: lossless, "
        "the decoded pixels exactly (at the plan's size; max_side None: native), several "
        "times larger.",
    )

    @field_validator("nframe", "fps", "max_frames", "max_side", "jpeg_quality", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        return not_a_boolean(value, info)

    @model_validator(mode="before")
    @classmethod
    def _fps_alone_means_rate_sampling(cls, data: Any) -> Any:
        # nframe has a default, so without this `FramePlan(fps=1)` would always fail.
        if isinstance(data, dict) and data.get("fps") is not None and "nframe" not in data:
            return {**data, "nframe": None}
        return data

    @model_validator(mode="after")
    def _sampler_takes_nframe(self) -> FramePlan:
        if self.fps is not None and self.sampler in _NFRAME_ONLY:
            raise ValueError(
                f"sampler {self.sampler} takes a frame count (nframe), not fps: its peer "
                "has no rate of its own"
            )
        return self

    @field_validator("fps")
    @classmethod
    def _exactly_one_of_nframe_and_fps(cls, fps: float | None, info: ValidationInfo):
        nframe = info.data.get("nframe")
        if "nframe" not in info.data:
            return fps  # nframe itself failed validation; that error is reported already
        if (nframe is None) == (fps is None):
            raise ValueError(f"set exactly one of nframe and fps (got nframe={nframe}, fps={fps})")
        return fps

    # --- what derives from the plan ---------------------------------------------------

    @property
    def identity(self) -> dict[str, Any]:
        """The plan's fields as JSON: a cell key's `frames` (a subclass's own fields, how
        frames are made, are not in it). `storage` only when not jpeg: the keys of plans
        from before it stay byte-identical."""
        identity = self.model_dump(mode="json", include=set(FramePlan.model_fields))
        if identity["storage"] == "jpeg":
            del identity["storage"]
        return identity

    @property
    def plan(self) -> FramePlan:
        """The plan alone (a `FrameSettings` without its decoding settings): equal for
        equal plans, so it tells which models share frames."""
        return FramePlan(**self.identity)

    def index_path(self, dataset: DatasetSpec, ws: Workspace) -> Path:
        """The frame index of `dataset` under this plan: one per (TSV file, plan)."""
        where = str(Path(dataset.tsv).resolve())
        return ws.frame_index_path(dataset.dataset_name, stable_hash([where, self.identity]))

    def entry_spec(self, video_fingerprint: str, job: VideoJob) -> dict[str, Any]:
        """Everything that decides the pixels of a cached clip (`frames.cache`): the
        video's content, the clip, the sampling, the size, the JPEG quality and (when not
        JPEG) the storage. A png entry keeps the JPEG quality too: its uploads use it."""
        if self.fps is not None:
            sampling: dict[str, Any] = {"fps": self.fps, "max_frames": self.max_frames}
        else:
            sampling = {"nframe": self.nframe}
        if self.sampler != "midpoint":  # only then: keys made before samplers stay valid
            sampling["sampler"] = self.sampler
        spec = {
            "format": FORMAT_VERSION,
            "video": video_fingerprint,
            "clip": [None if t is None else float(t) for t in (job.start, job.end)],  # 1 == 1.0
            "sampling": sampling,
            "max_side": self.max_side,
            "jpeg_quality": self.jpeg_quality,
        }
        if self.storage != "jpeg":  # only then: keys made before png storage stay valid
            spec["storage"] = self.storage
        return spec

    def entry_key(self, video_fingerprint: str, job: VideoJob) -> str:
        """The frame cache key of `job`'s clip of the video with that fingerprint."""
        blob = json.dumps(self.entry_spec(video_fingerprint, job), sort_keys=True).encode()
        return hashlib.blake2b(blob, digest_size=16).hexdigest()

    @property
    def label(self) -> str:
        """Short, for task names: `(8 frames, midpoint)`, `(2.0 fps, vlmevalkit)`,
        `(16 frames, qwen_vl, png)`."""
        rate = f"{self.nframe} frames" if self.nframe else f"{self.fps} fps"
        storage = "" if self.storage == "jpeg" else f", {self.storage}"
        return f"({rate}, {self.sampler}{storage})"

    def card(self) -> dict[str, Any]:
        """The plan in a reproducibility card's terms (`Cell.card`). `frame_storage` only
        when not jpeg: the cards of reports made before it stay as they were (a changed
        card rewrites the report)."""
        card: dict[str, Any] = {
            "sampler": self.sampler,
            "frames_per_clip": self.nframe
            if self.nframe is not None
            else f"{self.fps} fps, at most {self.max_frames}",
            "frame_size": f"longer side <= {self.max_side}" if self.max_side else "native",
            "jpeg_quality": self.jpeg_quality,
        }
        if self.storage != "jpeg":
            card["frame_storage"] = f"{self.storage} (lossless)"
        return card


# the samplers whose peers take a frame count only
_NFRAME_ONLY = frozenset({"lmms_eval_qwen", "llava_ov", "mvbench"})


def not_a_boolean(value: Any, info: ValidationInfo) -> Any:
    """A field validator (mode `before`) for numbers: pydantic's lax mode reads `nframe:
    true` as 1; a boolean here is always a typo. (A float with a fractional part is
    already refused by the int fields.)"""
    if isinstance(value, bool):
        kind = "a number" if info.field_name == "fps" else "a whole number"
        raise PydanticCustomError(
            "bool_not_allowed",
            "{field} must be {kind}, not the boolean {value}",
            {"field": info.field_name, "kind": kind, "value": str(value).lower()},
        )
    return value
