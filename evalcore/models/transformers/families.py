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
pipeline already sampled). By default a `VideoMetadata` with the real frame indices and
times is passed, so processors that print or embed timestamps get true ones.

`VideoInput` (the model's `video_input` params) selects a peer's way of calling the same
processor instead, each concern in one method: the frames it gets (`processor_frames`:
qwen-vl-utils' resize), the time it is told (`videos_kwargs`: exact, the source's
metadata, or none; `finish`: Qwen2.5-VL's exact spacing), and the turn that carries the
clip (`video_content`: VLMEvalKit's LLaVA-OneVision time instruction).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from evalcore.models.base import ChatMessage

if TYPE_CHECKING:
    from evalcore.models.transformers.adapter import VideoInput, VideoProcessorOptions

# With no source frame rate, timestamps are put on a millisecond grid: indices are
# integers (as processors expect) and times stay exact to 1 ms.
_MS_TIME_BASE = 1000.0


@dataclass(frozen=True)
class Clip:
    """One request's video as the processor gets it: (T, H, W, 3) uint8 RGB frames."""

    frames: np.ndarray
    timestamps: tuple[float, ...]  # seconds from the video start, one per frame
    source_fps: float | None = None
    source_frames: int | None = None  # the video's frame count
    frame_indices: tuple[int, ...] = ()  # the frames' numbers in the video (empty: unknown)

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

    def source_metadata(self) -> Any:
        """`VideoMetadata` as qwen-vl-utils' `return_video_metadata` gives it: the
        source's frame rate, the frames' numbers in it and its frame count, nothing else
        (the processor derives times and sample rate from these). Raises ValueError when
        the request did not carry them."""
        from transformers.video_utils import VideoMetadata

        if self.source_fps is None or self.source_frames is None:
            raise ValueError("time_input metadata needs the video's frame rate and frame count")
        return VideoMetadata(
            total_num_frames=self.source_frames,
            fps=self.source_fps,
            frames_indices=list(self.known_indices()),
        )

    def known_indices(self) -> tuple[int, ...]:
        """The frames' numbers in the video; ValueError if the request did not carry one
        per frame."""
        if len(self.frame_indices) != len(self.frames):
            raise ValueError(
                f"{len(self.frames)} frames but {len(self.frame_indices)} frame indices"
            )
        return self.frame_indices


class Family:
    """The generic path: any image-text-to-text model whose processor takes `videos=`."""

    name: ClassVar[str] = "generic"
    model_types: ClassVar[tuple[str, ...]] = ()
    # accepts `min_pixels`, `max_pixels`, `cap_pixels_per_frame` (Qwen video processors)
    pixel_options: ClassVar[bool] = False
    # qwen-vl-utils' patch size for this family (`video_input.resize: qwen_vl`); None: the
    # family is no Qwen-VL and that resize does not apply
    image_patch_size: ClassVar[int | None] = None
    # the `video_input.prompt` values the family implements
    prompts: ClassVar[tuple[str, ...]] = ("template",)

    def conversation(
        self,
        messages: Sequence[ChatMessage],
        prompt: str,
        clip: Clip | None = None,
        video_input: VideoInput | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Chat turns for `apply_chat_template`, and whether the last turn is a prefill.

        The clip goes in the turn marked `video` (`video_content`); with no marked turn,
        in the last user turn; with no turns at all, one user turn of the clip and
        `prompt`. `clip` and `video_input` (None: the default) matter only to a
        `video_input.prompt` other than `template`.
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
            content = (
                self.video_content(turn.text, clip, video_input)
                if i == video_at
                else [{"type": "text", "text": turn.text}]
            )
            out.append({"role": turn.role, "content": content})
        return out, turns[-1].role == "assistant"

    def video_content(
        self, text: str, clip: Clip | None, video_input: VideoInput | None
    ) -> list[dict[str, Any]]:
        """The content of the turn that carries the clip: the frames, then its text."""
        return [{"type": "video"}, {"type": "text", "text": text}]

    def processor_frames(self, clip: Clip, video_input: VideoInput) -> Any:
        """What the processor gets as this clip's video: its frames as they are."""
        return clip.frames

    def adapt_processor(self, processor: Any, video_input: VideoInput) -> None:
        """Set up the loaded processor for `video_input` (once, at load)."""
        return None

    def videos_kwargs(
        self,
        clips: Sequence[Clip],
        options: VideoProcessorOptions,
        video_input: VideoInput,
        processor: Any,
    ) -> dict[str, Any]:
        """Per-call video processor settings: never re-sample; the time as `time_input`
        says (exact: the real times; metadata: the source's, as qwen-vl-utils reports
        them; none: the processor's default); `do_resize` when set."""
        kwargs: dict[str, Any] = {"do_sample_frames": False}
        if video_input.time_input == "exact":
            kwargs["video_metadata"] = [clip.metadata() for clip in clips]
        elif video_input.time_input == "metadata":
            kwargs["video_metadata"] = [clip.source_metadata() for clip in clips]
        if video_input.do_resize is not None:
            kwargs["do_resize"] = video_input.do_resize
        return kwargs

    def stack_key(self, clip: Clip) -> Hashable:
        """Clips with equal keys can share one processor call (their tensors stack)."""
        return clip.frames.shape

    def finish(
        self, inputs: Any, clips: Sequence[Clip], video_input: VideoInput, processor: Any
    ) -> Any:
        """Adjust the processor's output (e.g. exact temporal spacing)."""
        return inputs


class QwenVL(Family):
    """Qwen2-VL: flat patch sequences of any frame size batch together; no time input."""

    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    pixel_options = True
    image_patch_size = 14

    def processor_frames(self, clip: Clip, video_input: VideoInput) -> Any:
        """With `resize: qwen_vl`, the frames resized as qwen-vl-utils' `fetch_video`
        resizes what it read (a float32 (T, 3, H, W) tensor of 0-255 values): the size
        `smart_resize` picks under the per-frame bounds of `video_pixel_bounds`, for the
        frames given or, with `budget_fps`, for the frames qwen-vl-utils would read from
        the whole video at that rate (lmms-eval takes its frames from those)."""
        if video_input.resize != "qwen_vl":
            return clip.frames
        from PIL import Image

        from evalcore.frames.qwen_vl import (
            image_factor,
            resize_frames,
            smart_nframes,
            smart_resize,
            video_pixel_bounds,
        )

        patch = video_input.image_patch_size or self.image_patch_size
        budget = len(clip.frames)
        if video_input.budget_fps is not None:
            if clip.source_frames is None or not clip.source_fps:
                raise ValueError("budget_fps needs the video's frame count and frame rate")
            budget = smart_nframes(clip.source_frames, clip.source_fps, fps=video_input.budget_fps)
        floor, ceiling = video_pixel_bounds(
            budget,
            min_pixels=video_input.min_pixels,
            max_pixels=video_input.max_pixels,
            total_pixels=video_input.total_pixels,
            image_patch_size=patch,
        )
        _, height, width, _ = clip.frames.shape
        height, width = smart_resize(height, width, image_factor(patch), floor, ceiling)
        return resize_frames([Image.fromarray(frame) for frame in clip.frames], height, width)

    def videos_kwargs(
        self,
        clips: Sequence[Clip],
        options: VideoProcessorOptions,
        video_input: VideoInput,
        processor: Any,
    ) -> dict[str, Any]:
        kwargs = super().videos_kwargs(clips, options, video_input, processor)
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

    def finish(
        self, inputs: Any, clips: Sequence[Clip], video_input: VideoInput, processor: Any
    ) -> Any:
        import torch

        if video_input.time_input != "exact":
            return inputs  # what the processor made of the metadata, or of none
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
    image_patch_size = 16


class FixedSquare(Family):
    """Families whose video processor resizes every frame to one size, so clips stack
    when their frame counts match. The models see frame order only."""

    def stack_key(self, clip: Clip) -> Hashable:
        return len(clip.frames)


class LlavaOnevision(FixedSquare):
    """LLaVA-OneVision. `prompt: llava_ov_times` words the turn as VLMEvalKit's
    `LLaVA_OneVision_HF.generate_inner_video` does (vlmeval/vlm/llava/llava.py): the
    text first, then the video; the text is its image token, a sentence on the video's
    length and the frames' times, then the turn's own text."""

    name = "llava_onevision"
    model_types = ("llava_onevision",)
    prompts = ("template", "llava_ov_times")

    def video_content(
        self, text: str, clip: Clip | None, video_input: VideoInput | None
    ) -> list[dict[str, Any]]:
        if video_input is None or video_input.prompt != "llava_ov_times":
            return super().video_content(text, clip, video_input)
        if clip is None:
            raise ValueError("prompt llava_ov_times needs the clip")
        return [
            {"type": "text", "text": "<image>\n" + llava_ov_time_instruction(clip) + text},
            {"type": "video"},
        ]

    def adapt_processor(self, processor: Any, video_input: VideoInput) -> None:
        """`llava_ov_times` text holds an image token and no image goes with it. The
        transformers 4 processors VLMEvalKit ran this with tokenized it as one image
        token id; transformers 5 refuses the text. Without an `image_token` the
        processor checks and expands video tokens only, and the tokenizer still reads
        `<image>` as its one id, as before (this adapter never passes images)."""
        if video_input.prompt == "llava_ov_times":
            processor.image_token = None


def llava_ov_time_instruction(clip: Clip) -> str:
    """VLMEvalKit's `time_instruction`: the video's length (its frame count / its average
    frame rate) and each frame's time as frame number / average rate (not its
    presentation time: they differ on variable-frame-rate videos), 2 decimals."""
    if clip.source_frames is None or not clip.source_fps:
        raise ValueError("prompt llava_ov_times needs the video's frame count and frame rate")
    fps = clip.source_fps
    times = ", ".join(f"{index / fps:.2f}s" for index in clip.known_indices())
    return (
        f"The video lasts for {clip.source_frames / fps:.2f} seconds, "
        f"and {len(clip.frames)} frames are uniformly sampled from it. "
        f"These frames are located at {times}. "
        "Please answer the following questions related to this video.\n"
    )


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
