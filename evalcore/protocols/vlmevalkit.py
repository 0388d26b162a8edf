"""VLMEvalKit's pipeline (open-compass/VLMEvalKit at e8e78f05, read there; our own code).

Frame count: the dataset's (`Video-MME_64frame`: nframe 64) replaces the model's
(vlmeval/inference_video.py lines 162-180: a video LLM's nframe or fps becomes the
dataset's, the other None).

- Qwen2-VL, Qwen2.5-VL (vlmeval/vlm/qwen2_vl/model.py): the video path goes to
  qwen-vl-utils with `nframes` (a video shorter than nframe asks for its frame count
  rounded down to even, `_prepare_content` lines 349-361) or `fps`, and the model
  entry's min/max pixels (vlmeval/config.py lines 1936-1941 and 2004-2009, the
  7B-Instruct entries: 1280 x 28 x 28 and 16384 x 28 x 28); `process_vision_info`
  without `return_video_kwargs`, then `processor(text, images, videos, padding=True,
  return_tensors='pt')` (`generate_inner_transformers` lines 485-486): no fps and no
  video metadata reach the processor, so its default rate sets `second_per_grid_ts`
  (transformers 5.24: 2 / 24 s whatever the video; a quirk, reproduced).
- Qwen3-VL (vlmeval/vlm/qwen3_vl/model.py lines 262-283): qwen-vl-utils with
  image_patch_size 16, return_video_kwargs and return_video_metadata; the processor gets
  the metadata, `do_resize=False` and the returned kwargs. The 8B-Instruct entry sets no
  pixel bounds (config.py lines 1451-1462): qwen-vl-utils' defaults.
- LLaVA-OneVision (vlmeval/vlm/llava/llava.py, `LLaVA_OneVision_HF`, lines 713-823):
  decord frames at 1 per second (`load_video`, `range(0, n, round(fps))`; more than
  nframe: `linspace(0, n-1, nframe, dtype=int)`), decoded arrays straight to the
  processor (no JPEG), and a prompt line with the duration and the frame times, text
  before the video (`generate_inner_video`). Its `load_video` compares the frame count
  with nframe, which an fps dataset sets to None: it cannot run fps datasets.
- Every other model: the frame-based path. The dataset saves frames
  (vlmeval/dataset/video_base.py `save_video_frames` lines 95-149, videomme.py lines
  167-198): frame int(i * n / (nframe + 1)) for i = 1..nframe, or int(k * fps / rate)
  at a rate; native size; `im.save(path)` as .jpg, Pillow's default quality 75.
  MVBench uses its own `get_index` (vlmeval/dataset/mvbench.py lines 211-223).
- The answer rule: VLMEvalKit's (`evalcore.scoring.rule_sets`, `vlmevalkit`).
"""

from __future__ import annotations

from evalcore.protocols.family import FRAME_BASED
from evalcore.protocols.resolution import FrameCount, ProtocolError, Resolution

TOKEN_28 = 28 * 28
QWEN_MIN_PIXELS = 1280 * TOKEN_28  # the 7B-Instruct entries of vlmeval/config.py
QWEN_MAX_PIXELS = 16384 * TOKEN_28
QWEN_MAX_FRAMES = 768  # qwen-vl-utils' FPS_MAX_FRAMES: no cap of VLMEvalKit's own


def resolve(family: str, benchmark: str, count: FrameCount) -> Resolution:
    if family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        return _qwen(family, benchmark, count)
    if family == "llava_onevision":
        return _llava_onevision(benchmark, count)
    return _frame_based(family, benchmark, count)


def _qwen(family: str, benchmark: str, count: FrameCount) -> Resolution:
    qwen3 = family == "qwen3_vl"
    frames = {
        "sampler": "qwen_vl",
        **count.fields,
        "max_frames": QWEN_MAX_FRAMES,
        "max_side": None,
        "storage": "png",
    }
    if qwen3:
        video_input = {
            "resize": "qwen_vl",
            "image_patch_size": 16,
            "time_input": "metadata",
            "do_resize": False,
        }
        pixels = "qwen-vl-utils' defaults with patch 16 (no bounds in the 8B-Instruct entry)"
        time = "the sample rate, through video_metadata (as qwen-vl-utils returns it)"
    else:
        video_input = {
            "resize": "qwen_vl",
            "min_pixels": QWEN_MIN_PIXELS,
            "max_pixels": QWEN_MAX_PIXELS,
            "time_input": "none",
        }
        pixels = "qwen-vl-utils smart_resize, min 1280 x 28 x 28, max 16384 x 28 x 28 per frame"
        time = (
            "none passed: the processor's default (transformers 5.24: 2/24 s per patch)"
            if family == "qwen2_5_vl"
            else "none"  # Qwen2-VL has no time input
        )
    return Resolution(
        protocol="vlmevalkit",
        family=family,
        benchmark=benchmark,
        frames=frames,
        video_input=video_input,
        rule_set="vlmevalkit",
        reference={
            "frames": f"qwen-vl-utils, {count.describe()}: linspace(0, n-1, count).round(); "
            "a video shorter than nframe asks for its frame count rounded down to even",
            "resolution": pixels,
            "storage": "decoded frames straight to the processor (lossless)",
            "time input": time,
            "prompt": "the benchmark's prompt",
            "answer rule": "vlmevalkit",
        },
    )


def _llava_onevision(benchmark: str, count: FrameCount) -> Resolution:
    if count.nframe is None:
        raise ProtocolError(
            "VLMEvalKit's LLaVA-OneVision cannot run an fps frame setting (its load_video "
            "compares the frame count with nframe, which is None then): give an nframe "
            "(e.g. benchmark `Video-MME_64frame` or frames.nframe)"
        )
    return Resolution(
        protocol="vlmevalkit",
        family="llava_onevision",
        benchmark=benchmark,
        frames={
            "sampler": "llava_ov",
            "nframe": count.nframe,
            "fps": None,
            "max_side": None,
            "storage": "png",
        },
        video_input={"prompt": "llava_ov_times"},
        rule_set="vlmevalkit",
        reference={
            "frames": f"1 per second (range(0, n, round(fps))); more than {count.nframe}: "
            f"linspace(0, n-1, {count.nframe}, dtype=int)",
            "resolution": "the processor's own resize of native-size frames",
            "storage": "decoded frames straight to the processor (lossless)",
            "time input": "none",
            "prompt": "<image> + 'The video lasts for D seconds, and N frames are uniformly "
            "sampled from it. These frames are located at t0s, t1s, ...' before the question, "
            "text before the video",
            "answer rule": "vlmevalkit",
        },
    )


def _frame_based(family: str, benchmark: str, count: FrameCount) -> Resolution:
    mvbench = benchmark == "mvbench" and count.nframe is not None
    frames = {
        "sampler": "mvbench" if mvbench else "vlmevalkit",
        **count.fields,
        "max_side": None,
        "jpeg_quality": 75,
        "storage": "jpeg",
    }
    not_reproduced = (
        "API model input: VLMEvalKit's API wrappers open each saved JPEG and encode it again "
        "(JPEG, Pillow's defaults) with detail 'low' (vlmeval/api/gpt.py lines 94-167, "
        "vlmeval/smp/vlm.py lines 96-117); here the saved JPEG is sent as it is, with the "
        "endpoint's own detail setting",
    )
    if family != FRAME_BASED:
        not_reproduced = (
            f"model input: VLMEvalKit's own {family} wrapper prepares the frames itself; here "
            "the checkpoint's transformers processor does",
        )
    rule = (
        "MVBench's get_index (segment midpoints, rounded)"
        if mvbench
        else (
            "int(i * n / (nframe + 1)), i = 1..nframe"
            if count.nframe is not None
            else "int(k * video_fps / fps)"
        )
    )
    return Resolution(
        protocol="vlmevalkit",
        family=family,
        benchmark=benchmark,
        frames=frames,
        rule_set="vlmevalkit",
        reference={
            "frames": f"{count.describe()}: {rule}",
            "resolution": "native size (the model or API resizes)",
            "storage": "JPEG, Pillow's default quality 75",
            "time input": "none",
            "prompt": "the benchmark's prompt",
            "answer rule": "vlmevalkit",
        },
        not_reproduced=not_reproduced,
    )
