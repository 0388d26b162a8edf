"""The peers' own calls that turn a video file into processor inputs, as their source
writes them (cited in each docstring), for tests that compare ours tensor for tensor:
VLMEvalKit's Qwen2/2.5/3-VL and LLaVA-OneVision wrappers, the Qwen model card's usage,
lmms-eval's Qwen2.5-VL, VLMEvalKit's frame-based `save_video_frames` (Video-MME), and
the comparison itself (ids, grids, time input; pixels up to the decoders)."""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path
from typing import Any

import decord
import numpy as np
import qwen_vl_utils as qvu
import torch

# the most two decoders' frames may differ, mean |difference| in 0-255 pixel units
MAX_MEAN_PIXEL_DIFF = 0.1


def pixel_diff(ours: Any, theirs: Any, processor: Any, channel_dim: int) -> tuple[float, float]:
    """(max, mean) |difference| of pixel_values_videos in 0-255 pixel units: the
    normalised values times std x 255, per channel."""
    std = torch.tensor(processor.video_processor.image_std, dtype=torch.float64)
    diff = (ours["pixel_values_videos"].double() - theirs["pixel_values_videos"].double()).abs()
    if channel_dim == 1:  # Qwen: (patches, C * temporal * patch * patch), channel outermost
        diff = diff.reshape(diff.shape[0], len(std), -1) * std[None, :, None] * 255
    else:  # (batch, frames, C, H, W)
        diff = diff * std[None, None, :, None, None] * 255
    return diff.max().item(), diff.mean().item()


def assert_same_inputs(case: str, ours: Any, theirs: Any, processor: Any, channel_dim: int = 1):
    if ours["input_ids"].tolist() != theirs["input_ids"].tolist():
        decode = processor.tokenizer.decode
        raise AssertionError(
            f"{case}: token ids differ:\nours:   {decode(ours['input_ids'][0])[:600]!r}"
            f"\ntheirs: {decode(theirs['input_ids'][0])[:600]!r}"
        )
    for key in ("video_grid_thw", "second_per_grid_ts"):
        if key in theirs:
            assert torch.as_tensor(ours[key]).tolist() == torch.as_tensor(theirs[key]).tolist(), key
    assert ours["pixel_values_videos"].shape == theirs["pixel_values_videos"].shape
    largest, mean = pixel_diff(ours, theirs, processor, channel_dim)
    print(f"\n{case}: pixel |diff| max {largest:.3f}, mean {mean:.4f} (0-255)")
    assert mean <= MAX_MEAN_PIXEL_DIFF


def vlmevalkit_qwen(
    arch: str, processor: Any, path: Path, nframes: int, pixels: dict, text: str
) -> Any:
    """Qwen2VLChat / Qwen3VLChat.generate_inner_transformers, no system prompt (its
    default), nframe set and fps None (a video dataset's nframe setting)."""
    video = {"type": "video", "video": "file://" + str(path), **pixels, "nframes": nframes}
    messages = [{"role": "user", "content": [video, {"type": "text", "text": text}]}]
    if arch != "qwen3_vl":
        chat = processor.apply_chat_template([messages], tokenize=False, add_generation_prompt=True)
        images, videos = qvu.process_vision_info([messages])
        return processor(text=chat, images=images, videos=videos, padding=True, return_tensors="pt")
    chat = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images, videos, video_kwargs = qvu.process_vision_info(
        messages, image_patch_size=16, return_video_kwargs=True, return_video_metadata=True
    )
    videos, metadata = (list(x) for x in zip(*videos, strict=True))
    return processor(
        text=chat,
        images=images,
        videos=videos,
        video_metadata=metadata,
        do_resize=False,
        return_tensors="pt",
        **video_kwargs,
    )


def native_qwen(arch: str, processor: Any, path: Path, keys: dict, text: str) -> Any:
    """qwen-vl-utils 0.0.14's README usage for Qwen2.5-VL / Qwen3-VL, with the metadata
    (its `fps` keyword is for older transformers only)."""
    video = {"type": "video", "video": "file://" + str(path), **keys}
    messages = [{"role": "user", "content": [video, {"type": "text", "text": text}]}]
    chat = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    qwen3 = {"image_patch_size": 16} if arch == "qwen3_vl" else {}
    images, videos, video_kwargs = qvu.process_vision_info(
        messages, return_video_kwargs=True, return_video_metadata=True, **qwen3
    )
    videos, metadata = (list(x) for x in zip(*videos, strict=True))
    resize = {"do_resize": False} if arch == "qwen3_vl" else {}
    return processor(
        text=chat,
        images=images,
        videos=videos,
        video_metadata=metadata,
        return_tensors="pt",
        **resize,
        **video_kwargs,
    )


def vlmevalkit_llava_ov(
    processor: Any, path: Path, nframe: int, text: str
) -> tuple[Any, list[int]]:
    """LLaVA_OneVision_HF.generate_inner_video with its load_video (fps 1, no
    force_sample), as written there; also the frame numbers it read."""
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    total_frame_num = len(vr)
    avg_fps = vr.get_avg_fps()
    effective_fps = round(avg_fps / 1)
    frame_idx = list(range(0, total_frame_num, effective_fps))
    frame_time = [i / avg_fps for i in frame_idx]
    if len(frame_idx) > nframe:
        frame_idx = np.linspace(0, total_frame_num - 1, nframe, dtype=int).tolist()
        frame_time = [i / avg_fps for i in frame_idx]
    frame_time_str = ", ".join([f"{t:.2f}s" for t in frame_time])
    video_frames = vr.get_batch(frame_idx).asnumpy()
    video_time = total_frame_num / avg_fps

    time_instruction = (
        f"The video lasts for {video_time:.2f} seconds, "
        f"and {len(video_frames)} frames are uniformly sampled from it. "
        f"These frames are located at {frame_time_str}. "
        f"Please answer the following questions related to this video.\n"
    )
    content = "<image>\n" + time_instruction + text
    conversation = [
        {"role": "user", "content": [{"type": "text", "text": content}, {"type": "video"}]}
    ]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
    try:
        inputs = processor(videos=video_frames, text=prompt, return_tensors="pt")
    except ValueError as exc:
        # transformers 5 refuses an image token with no image; the transformers 4
        # processors VLMEvalKit runs this with did not: their text path, as it was
        assert "no images were passed" in str(exc)
        inputs = as_transformers_4(processor, video_frames, prompt)
    return inputs, frame_idx


def as_transformers_4(processor: Any, video_frames: np.ndarray, prompt: str) -> Any:
    """LlavaOnevisionProcessor.__call__ of transformers 4.4x-4.5x for one video and no
    image: the video processor's pixels; `<video>` repeated frames x pooled patches + 1
    times; the tokenizer over that text (`<image>` stays one image token id)."""
    videos = processor.video_processor(video_frames, return_tensors="pt")
    num_frames = videos["pixel_values_videos"][0].shape[0]
    pooled = math.ceil(int(math.sqrt(processor.num_image_tokens)) / 2)
    tokens = processor.video_token * (num_frames * pooled * pooled + 1)
    text = prompt.replace(processor.video_token, tokens)
    return {**processor.tokenizer([text], return_tensors="pt"), **videos}


def lmms_eval_qwen25(
    checkpoint: Path, path: Path, pixels: dict, max_num_frames: int, text: str
) -> Any:
    """lmms_eval/models/simple/qwen2_5_vl.py `Qwen2_5_VL.generate_until` for one video
    (lines 224-310): its system prompt, the request keys min/max pixels only (so
    qwen-vl-utils reads at fps 2 and sizes every frame it read), then a subsample of
    those frames; the processor loaded with the same min/max pixels (line 91)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(checkpoint, local_files_only=True, **pixels)
    video = {"type": "video", "video": str(path), **pixels}
    message = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [video, {"type": "text", "text": text}]},
    ]
    texts = processor.apply_chat_template([message], tokenize=False, add_generation_prompt=True)
    image_inputs, video_inputs = qvu.process_vision_info([message])
    total_frames = video_inputs[0].shape[0]
    indices = np.unique(np.linspace(0, total_frames - 1, max_num_frames, dtype=int))
    if total_frames - 1 not in indices:
        indices = np.unique(np.append(indices, total_frames - 1))
    video_inputs[0] = video_inputs[0][indices]
    return processor(
        text=texts,
        images=image_inputs,
        videos=video_inputs,
        padding=True,
        padding_side="right",
        return_tensors="pt",
    )


def vlmevalkit_videomme_frames(path: Path, nframe: int) -> list[bytes]:
    """The frame files VLMEvalKit saves for a Video-MME video (vlmeval/dataset/
    videomme.py `save_video_frames`, lines 167-198, nframe > 0): decord, frame
    int(i * n / (nframe + 1)) for i = 1..nframe, `Image.fromarray(...).save(path)` as
    .jpg, Pillow's defaults. Their bytes, in order."""
    from PIL import Image

    vid = decord.VideoReader(str(path))
    step_size = len(vid) / (nframe + 1)
    indices = [int(i * step_size) for i in range(1, nframe + 1)]
    out = []
    for arr in [vid[i].asnumpy() for i in indices]:
        buffer = BytesIO()
        Image.fromarray(arr).save(buffer, format="JPEG")  # what `im.save("x.jpg")` writes
        out.append(buffer.getvalue())
    return out
