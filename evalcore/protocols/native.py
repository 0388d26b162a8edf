"""The model authors' documented usage (the model cards; our own code).

- Qwen2-VL, Qwen2.5-VL, Qwen3-VL: qwen-vl-utils' `process_vision_info(messages,
  return_video_kwargs=True, return_video_metadata=True)` with the package's defaults
  (2 fps, 4 to 768 frames, its per-frame and total pixel budget; Qwen3-VL with
  image_patch_size 16) and the processor given the frames, their `video_metadata` and
  the returned kwargs (Qwen3-VL also `do_resize=False`): the time input is the real
  sample rate. A model's own
  `frames.nframe` or `frames.fps` is passed as the request's nframes / fps.
- Other families: no documented pipeline is reproduced; ours applies.
- The answer rule: ours (`evalcore`): the authors publish none for these benchmarks.
"""

from __future__ import annotations

from evalcore.protocols.resolution import FrameCount, Resolution, evalcore_settings

QWEN_FPS = 2.0  # qwen-vl-utils' FPS
QWEN_MAX_FRAMES = 768  # its FPS_MAX_FRAMES


def resolve(family: str, benchmark: str, count: FrameCount) -> Resolution:
    if family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        amount = count.fields if count.model_set else {"nframe": None, "fps": QWEN_FPS}
        video_input = {"resize": "qwen_vl", "time_input": "metadata"}
        if family == "qwen3_vl":  # qwen-vl-utils 0.0.14's README: patch 16, no second resize
            video_input.update(image_patch_size=16, do_resize=False)
        described = (
            FrameCount(**amount).describe() if count.model_set else "2 fps (4 to 768 frames)"
        )
        return Resolution(
            protocol="native",
            family=family,
            benchmark=benchmark,
            frames={
                "sampler": "qwen_vl",
                **amount,
                "max_frames": QWEN_MAX_FRAMES,
                "max_side": None,
                "storage": "png",
            },
            video_input=video_input,
            rule_set="evalcore",
            reference={
                "frames": f"qwen-vl-utils, {described}: linspace(0, n-1, count).round()",
                "resolution": "qwen-vl-utils' defaults: 128 to 768 tokens per frame, "
                "a total budget over the clip",
                "storage": "decoded frames straight to the processor (lossless)",
                "time input": "the sample rate, through video_metadata",
                "prompt": "the benchmark's prompt",
                "answer rule": "evalcore",
            },
        )
    return Resolution(
        protocol="native",
        family=family,
        benchmark=benchmark,
        rule_set="evalcore",
        reference=evalcore_settings(family),
        not_reproduced=(f"everything but the answer rule: no documented {family} pipeline",),
    )
