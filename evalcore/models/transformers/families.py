"""What differs between video-LLM families, keyed by the checkpoint's `model_type`.

Every family gets the same thing from the adapter: a `Clip` per request (frames already
sampled by the pipeline, their real timestamps, the source frame rate) and the chat turns.
What differs is how the processor must be told about time and size:

- qwen2_vl: frames resized to multiples of 28 (min/max pixels per frame), two frames per
  temporal patch; the model has no time input (frame order only).
- qwen2_5_vl: as qwen2_vl, plus `second_per_grid_ts` = 2 x the real frame interval, which
  spaces the temporal rope ids.
- qwen3_vl, qwen3_vl_moe: multiples of 32, min/max pixels over the whole clip; a
  `<t seconds>` text before each temporal patch, from the real timestamps.
- llava_onevision, internvl: resized to the vision tower's square; frame order only
  (InternVL labels frames `Frame1:` ...).
- llava_next_video: shortest edge resized, centre crop; frame order only.
- any other model_type: whatever its video processor does with the frames and the
  `video_metadata` it is given.

In every case `do_sample_frames=False` (the processor must never re-sample frames the
pipeline already sampled) and a `VideoMetadata` with the real frame indices and times is
passed, so processors that print or embed timestamps get true ones.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from evalcore.models.base import ChatMessage

# With no source frame rate, timestamps are put on a millisecond grid: indices are
# integers (as processors expect) and times stay exact to 1 ms.
_MS_TIME_BASE = 1000.0


@dataclass(frozen=True)
class Clip:
    """One request's video as the processor gets it: (T, H, W, 3) uint8 RGB frames."""

    frames: np.ndarray
    timestamps: tuple[float, ...]  # seconds from the video start, one per frame
    source_fps: float | None = None

    @property
    def frame_interval(self) -> float:
        """Mean seconds between sampled frames (what temporal position ids scale by)."""
        if len(self.timestamps) > 1:
            span = self.timestamps[-1] - self.timestamps[0]
            if span > 0:
                return span / (len(self.timestamps) - 1)
        return 1.0 / self.source_fps if self.source_fps else 1.0

    def metadata(self) -> Any:
        """`VideoMetadata` on the source's frame grid: real indices, times and rate.

        The source's length is unknown here; `total_num_frames` is the least consistent
        with the frames (past the last index, and n x interval), so `sampled_fps`
        (n / total x fps) is 1 / interval when sampling started at 0, lower otherwise.
        Qwen2.5-VL's temporal spacing does not rely on it (see `Qwen25VL.finish`).
        """
        from transformers.video_utils import VideoMetadata

        fps = self.source_fps or _MS_TIME_BASE
        indices = [round(t * fps) for t in self.timestamps]
        covered = round(len(indices) * self.frame_interval * fps)
        total = max(covered, (indices[-1] + 1) if indices else 1)
        _, height, width, _ = self.frames.shape
        return VideoMetadata(
            total_num_frames=total,
            fps=fps,
            width=width,
            height=height,
            duration=total / fps,
            video_backend="evalcore",
            frames_indices=indices,
        )


class Family:
    """The generic path: any image-text-to-text model whose processor takes `videos=`."""

    name: ClassVar[str] = "generic"
    model_types: ClassVar[tuple[str, ...]] = ()
    # accepts `min_pixels`, `max_pixels`, `cap_pixels_per_frame` (Qwen video processors)
    pixel_options: ClassVar[bool] = False

    def conversation(
        self, messages: Sequence[ChatMessage], prompt: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """Chat turns for `apply_chat_template`, and whether the last turn is a prefill.

        The frames go first in the turn marked `video` (a `{"type": "video"}` part before
        the text); with no marked turn, in the last user turn; with no turns at all, one
        user turn of the frames and `prompt`.
        """
        turns = list(messages) or [ChatMessage(role="user", text=prompt, video=True)]
        video_at = next((i for i, t in enumerate(turns) if t.video), None)
        if video_at is None:
            users = [i for i, t in enumerate(turns) if t.role == "user"]
            if not users:
                raise ValueError("the chat has no user turn to put the frames in")
            video_at = users[-1]
        out = []
        for i, turn in enumerate(turns):
            content: list[dict[str, Any]] = [{"type": "video"}] if i == video_at else []
            content.append({"type": "text", "text": turn.text})
            out.append({"role": turn.role, "content": content})
        return out, turns[-1].role == "assistant"

    def videos_kwargs(self, clips: Sequence[Clip], options: Any, processor: Any) -> dict[str, Any]:
        """Per-call video processor settings: never re-sample; the real times."""
        return {
            "do_sample_frames": False,
            "video_metadata": [clip.metadata() for clip in clips],
        }

    def stack_key(self, clip: Clip) -> Hashable:
        """Clips with equal keys can share one processor call (their tensors stack)."""
        return clip.frames.shape

    def finish(self, inputs: Any, clips: Sequence[Clip], processor: Any) -> Any:
        """Adjust the processor's output (e.g. exact temporal spacing)."""
        return inputs


class QwenVL(Family):
    """Qwen2-VL: flat patch sequences of any frame size batch together; no time input."""

    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    pixel_options = True

    def videos_kwargs(self, clips: Sequence[Clip], options: Any, processor: Any) -> dict[str, Any]:
        kwargs = super().videos_kwargs(clips, options, processor)
        if options.min_pixels is not None or options.max_pixels is not None:
            # `size` is transformers 5's spelling of min/max pixels (the kwargs are deprecated)
            default = processor.video_processor.size
            kwargs["size"] = {
                "shortest_edge": options.min_pixels or default["shortest_edge"],
                "longest_edge": options.max_pixels or default["longest_edge"],
            }
        if options.cap_pixels_per_frame is not None:
            kwargs["cap_pixels_per_frame"] = options.cap_pixels_per_frame
        return kwargs

    def stack_key(self, clip: Clip) -> Hashable:
        return None  # patches are concatenated, not stacked: any mix of sizes batches


class Qwen25VL(QwenVL):
    """Qwen2.5-VL: temporal rope ids advance by `tokens_per_second x second_per_grid_ts`
    per temporal patch, so the spacing must come from the real frame times."""

    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)

    def finish(self, inputs: Any, clips: Sequence[Clip], processor: Any) -> Any:
        import torch

        # The processor derives it from metadata.sampled_fps (rounded through integer
        # frame counts); set it exactly: frames per temporal patch x seconds per frame.
        patch = processor.video_processor.temporal_patch_size
        inputs["second_per_grid_ts"] = torch.tensor(
            [patch * clip.frame_interval for clip in clips], dtype=torch.float32
        )
        return inputs


class Qwen3VL(QwenVL):
    """Qwen3-VL: each temporal patch is preceded by `<t seconds>` text, which the
    processor computes from `video_metadata` (frames_indices / fps, averaged per patch)."""

    name = "qwen3_vl"
    model_types = ("qwen3_vl", "qwen3_vl_moe")


class FixedSquare(Family):
    """Families whose video processor resizes every frame to one size, so clips stack
    when their frame counts match. The models see frame order only."""

    def stack_key(self, clip: Clip) -> Hashable:
        return len(clip.frames)


class LlavaOnevision(FixedSquare):
    name = "llava_onevision"
    model_types = ("llava_onevision",)


class LlavaNextVideo(FixedSquare):
    name = "llava_next_video"
    model_types = ("llava_next_video",)


class InternVL(FixedSquare):
    """transformers' own InternVL port (`-hf` checkpoints), not the remote-code one."""

    name = "internvl"
    model_types = ("internvl",)


FAMILIES: tuple[Family, ...] = (
    QwenVL(),
    Qwen25VL(),
    Qwen3VL(),
    LlavaOnevision(),
    LlavaNextVideo(),
    InternVL(),
)
_BY_MODEL_TYPE = {model_type: family for family in FAMILIES for model_type in family.model_types}
GENERIC = Family()


def family_for(model_type: str | None) -> Family:
    """The family of a checkpoint's `config.json` `model_type`; the generic path if unknown."""
    return _BY_MODEL_TYPE.get(model_type or "", GENERIC)
