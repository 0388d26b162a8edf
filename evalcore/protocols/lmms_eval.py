"""lmms-eval's pipeline (EvolvingLMMs-Lab/lmms-eval at 75571cfe, read there; our own code).

lmms-eval's frame count is a model argument (`max_num_frames`, default 32), not the
task's: a model's own `frames.nframe` stands for it; the run's and the dataset's count
are not read.

- Qwen2.5-VL (lmms_eval/models/simple/qwen2_5_vl.py): min_pixels 256 x 28 x 28,
  max_pixels 1,605,632 (lines 44-45, also given to `AutoProcessor.from_pretrained`, line
  91); the video path goes to qwen-vl-utils with only those bounds (lines 238-248), so it
  fetches at its default 2 fps and resizes for that many frames; then lmms-eval keeps
  `unique(linspace(0, T-1, max_num_frames, dtype=int))` of them, the last appended
  (lines 291-300); `processor(text, images, videos, padding=True, ...)` with no fps or
  metadata (lines 303-310): the processor's default rate.
- Qwen2-VL (lmms_eval/models/simple/qwen2_vl.py): the same, with min_pixels 3136 and
  max_pixels 602,112 (lines 42-45, 73, 347-385). It does not append the last frame; the
  linspace ends on it anyway, so the frames are the same.
- Qwen3-VL (lmms_eval/models/simple/qwen3_vl.py): min_pixels 256 x 28 x 28, max_pixels
  1,605,632, 32 frames (lines 85-90); the request asks qwen-vl-utils for `nframes` 32
  with min_pixels and max_pixels (lines 213-230); `process_vision_info(...,
  image_patch_size=16, return_video_kwargs=True, return_video_metadata=True)` and the
  processor gets the metadata and `do_resize=False` (lines 362-394). qwen-vl-utils
  refuses a clip of fewer than 32 frames there; here it gets its frame count rounded
  down to even (VLMEvalKit's rule), so the sample is answered, not failed.
- Other families (llava_hf.py: 32 frames by `linspace(0, n-1, 32, dtype=int)`, lines
  256-265, and a `<video>` line in a one-string turn, lines 318-334): not reproduced;
  frames stay ours, only the answer rule is lmms-eval's.
- The answer rule: lmms-eval's task readers (`evalcore.scoring.rule_sets`, `lmms-eval`).
"""

from __future__ import annotations

from evalcore.protocols.resolution import FrameCount, Resolution, evalcore_settings

MAX_NUM_FRAMES = 32  # the wrappers' default
FETCH_FPS = 2.0  # qwen-vl-utils' default rate, which lmms-eval's request leaves in force
PIXELS = {  # (min_pixels, max_pixels) per wrapper, also given to from_pretrained
    "qwen2_5_vl": (256 * 28 * 28, 1605632),
    "qwen2_vl": (3136, 602112),
    "qwen3_vl": (256 * 28 * 28, 1605632),
}
PROMPT_NOTE = "prompt: lmms-eval's task prompt (ours is VLMEvalKit's)"


def resolve(family: str, benchmark: str, count: FrameCount) -> Resolution:
    nframe = count.nframe if count.model_set and count.nframe is not None else MAX_NUM_FRAMES
    if family not in PIXELS:
        return Resolution(
            protocol="lmms-eval",
            family=family,
            benchmark=benchmark,
            rule_set="lmms-eval",
            reference={**evalcore_settings(family), "answer rule": "lmms-eval"},
            not_reproduced=(
                f"frames, resolution, time input, prompt: lmms-eval's {family} wrapper is not "
                "reproduced; only its answer rule applies",
            ),
        )
    low, high = PIXELS[family]
    pixels = {"min_pixels": low, "max_pixels": high}
    if family == "qwen3_vl":  # nframes asked of qwen-vl-utils; metadata; no second resize
        sampler = "qwen_vl"
        video_input = {"image_patch_size": 16, "time_input": "metadata", "do_resize": False}
        frames = f"qwen-vl-utils, {nframe} frames: linspace(0, n-1, count).round()"
        resolution = f"qwen-vl-utils smart_resize (patch 16), min {low}, max {high} pixels"
        time = "the sample rate, through video_metadata"
        notes = (
            PROMPT_NOTE,
            f"clips under {nframe} frames: qwen-vl-utils refuses them there; here they get "
            "their frame count rounded down to even",
        )
    else:  # a 2 fps fetch, sized for all it read, then nframe of those; no time input
        sampler = "lmms_eval_qwen"
        video_input = {"budget_fps": FETCH_FPS, "time_input": "none"}
        frames = (
            f"qwen-vl-utils at 2 fps, then {nframe} of those by "
            "linspace(0, T-1, n, dtype=int), the last kept"
        )
        resolution = (
            f"qwen-vl-utils smart_resize, min {low}, max {high} pixels, budgeted for the "
            "2 fps frames"
        )
        time = "none passed: the processor's default"
        notes = (PROMPT_NOTE,)
    return Resolution(
        protocol="lmms-eval",
        family=family,
        benchmark=benchmark,
        frames={
            "sampler": sampler,
            "nframe": nframe,
            "fps": None,
            "max_side": None,
            "storage": "png",
        },
        video_input={"resize": "qwen_vl", **pixels, **video_input},
        processor=pixels,
        rule_set="lmms-eval",
        reference={
            "frames": frames,
            "resolution": resolution,
            "storage": "decoded frames straight to the processor (lossless)",
            "time input": time,
            "prompt": "the task's prompt (lmms-eval's own, not reproduced)",
            "answer rule": "lmms-eval",
        },
        not_reproduced=notes,
    )
