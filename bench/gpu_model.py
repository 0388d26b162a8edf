"""The model kind of bench/gpu.py: the `transformers` adapter over a model with random
weights, built from a family's public config numbers on the runner's device.

No checkpoint is downloaded or written: `build_tiny_checkpoint` gives the family's real
processor classes and a locally trained tokenizer (its special-token ids go into the
config), then the model is instantiated with `from_config` directly on the device in
the runtime's dtype (bfloat16 on CUDA). `scale: 7b` takes the text and vision numbers
of the published `config.json` of Qwen/Qwen2.5-VL-7B-Instruct and
llava-hf/llava-onevision-qwen2-7b-ov-hf (vocabulary size included: the tokenizer
covers only the first ids, which is all the prompts use) and the processors' real frame
sizes; `scale: tiny` keeps the tiny checkpoint's shapes, so the same code runs on a CPU.

Everything after the build is the adapter's own code (`TransformersModel.generate`:
the chat template, one processor call per batch, `model.generate`, decoding). Two
things differ, both for the benchmark's sake:

- every answer has exactly `max_new_tokens` tokens (`min_new_tokens` is set to it), so
  every run does the same work whatever the random weights emit;
- a built model stays in this process (`RandomWeightsModel.release()` frees it), so the
  runs of one benchmark share one build, and `CALLS` records each batch's generation
  step (start, end, requests), which bench/gpu.py reads to find the inference phase.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evalcore.models import ModelParams, Runtime
from evalcore.models.transformers import TransformersModel
from evalcore.models.transformers.adapter import VideoInput, VideoProcessorOptions
from evalcore.models.transformers.families import family_for

ARCHS = ("qwen2_5_vl", "llava_onevision")

# Qwen/Qwen2.5-VL-7B-Instruct, config.json
QWEN2_5_VL_7B = {
    "text": {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [16, 24, 24],
        },
    },
    "vision": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "hidden_act": "silu",
    },
    # qwen-vl-utils' per-frame bounds for video (VIDEO_MIN/MAX_TOKEN_NUM 128 / 768)
    "pixels": {"min_pixels": 128 * 28 * 28, "max_pixels": 768 * 28 * 28},
}

# llava-hf/llava-onevision-qwen2-7b-ov-hf, config.json: SigLIP-so400m at 384 px, Qwen2-7B
LLAVA_ONEVISION_7B = {
    "text": {
        "model_type": "qwen2",
        "vocab_size": 152128,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    },
    "vision": {
        "model_type": "siglip_vision_model",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 26,
        "num_attention_heads": 16,
        "image_size": 384,
        "patch_size": 14,
    },
    "side": 384,
    "image_tokens": 729,  # (384 / 14)^2; a video frame is pooled to 14 x 14 = 196 tokens
}

# (start, end, requests, prompt width) of every batch's generation step (perf_counter s)
CALLS: list[tuple[float, float, int]] = []


class RandomWeightsParams(ModelParams):
    """Which family and size; the adapter's own options keep their meaning."""

    arch: Literal["qwen2_5_vl", "llava_onevision"] = Field(description="The family.")
    scale: Literal["7b", "tiny"] = Field(
        default="7b", description="7b: the published 7B shapes; tiny: the test shapes."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: bfloat16 on CUDA, float32 on the CPU."
    )
    attn_implementation: str | None = Field(
        default=None, description="sdpa, eager, flash_attention_2; None: transformers picks."
    )
    processor: VideoProcessorOptions = Field(default_factory=VideoProcessorOptions)
    video_input: VideoInput = Field(default_factory=VideoInput)


class RandomWeightsModel(TransformersModel):
    """`TransformersModel` whose `load` builds random weights instead of reading files."""

    Params = RandomWeightsParams
    _built: dict[tuple, tuple[Any, Any]] = {}

    @classmethod
    def identity(cls, params: RandomWeightsParams) -> dict[str, Any]:  # type: ignore[override]
        return {"random_weights": params.model_dump()}

    def load(self, runtime: Runtime) -> None:
        import torch

        from evalcore.models.transformers.adapter import _torch_dtype

        self.runtime = runtime
        params: RandomWeightsParams = self.params  # type: ignore[assignment]
        dtype = _torch_dtype(params.dtype, runtime)
        key = (params.arch, params.scale, runtime.device, str(dtype), params.attn_implementation)
        if key not in self._built:
            torch.manual_seed(0)
            self._built[key] = build(params, runtime.device, dtype)
        self.model, self.processor = self._built[key]
        self.family = family_for(self.model.config.model_type)

    def close(self) -> None:  # the build stays for the next run: see release()
        self.model = self.processor = None

    @classmethod
    def release(cls) -> None:
        """Drop every built model and give its device memory back."""
        import gc

        cls._built.clear()
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _run(self, inputs: Any, generation: Any) -> list[Any]:
        """The adapter's generation step with a fixed answer length, timed into CALLS."""
        self.model.generation_config.min_new_tokens = generation.max_new_tokens
        started = time.perf_counter()
        answers = super()._run(inputs, generation)
        CALLS.append((started, time.perf_counter(), len(answers), inputs["input_ids"].shape[1]))
        return answers


def build(params: RandomWeightsParams, device: str, dtype: Any) -> tuple[Any, Any]:
    """(model on `device` in `dtype`, processor) for `params.arch` at `params.scale`."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    from evalcore.models.transformers import build_tiny_checkpoint

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        tiny = build_tiny_checkpoint(params.arch, Path(tmp))
        config = AutoConfig.from_pretrained(tiny, local_files_only=True)
        processor = AutoProcessor.from_pretrained(tiny, local_files_only=True)
    if params.scale == "7b":
        config, processor = _SEVEN_B[params.arch](config, processor)
    import torch

    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(
            config, dtype=dtype, attn_implementation=params.attn_implementation
        )
    model.eval()
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, processor


def _qwen2_5_vl_7b(tiny_config: Any, tiny_processor: Any) -> tuple[Any, Any]:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    shape = QWEN2_5_VL_7B
    text = tiny_config.text_config
    ids = {  # the tokenizer's ids, as the tiny checkpoint set them
        name: getattr(tiny_config, name)
        for name in ("image_token_id", "video_token_id", "vision_start_token_id")
    }
    ids["vision_end_token_id"] = tiny_config.vision_end_token_id
    config = Qwen2_5_VLConfig(
        text_config={
            **shape["text"],
            "bos_token_id": text.bos_token_id,
            "eos_token_id": text.eos_token_id,
            "pad_token_id": text.pad_token_id,
        },
        vision_config=shape["vision"],
        **ids,
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**shape["pixels"]),
        video_processor=Qwen2VLVideoProcessor(**shape["pixels"]),
        tokenizer=tiny_processor.tokenizer,
        chat_template=tiny_processor.chat_template,
    )
    return config, processor


def _llava_onevision_7b(tiny_config: Any, tiny_processor: Any) -> tuple[Any, Any]:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    shape = LLAVA_ONEVISION_7B
    text = tiny_config.text_config
    side = {"height": shape["side"], "width": shape["side"]}
    pinpoints = [[shape["side"], shape["side"]]]  # images are not benchmarked
    config = LlavaOnevisionConfig(
        text_config={
            **shape["text"],
            "bos_token_id": text.bos_token_id,
            "eos_token_id": text.eos_token_id,
            "pad_token_id": text.pad_token_id,
        },
        vision_config=shape["vision"],
        image_token_index=tiny_config.image_token_index,
        video_token_index=tiny_config.video_token_index,
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=side, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=side),
        tokenizer=tiny_processor.tokenizer,
        num_image_tokens=shape["image_tokens"],
        vision_feature_select_strategy="full",
        chat_template=tiny_processor.chat_template,
    )
    return config, processor


_SEVEN_B = {"qwen2_5_vl": _qwen2_5_vl_7b, "llava_onevision": _llava_onevision_7b}


def parameter_bytes(model: Any) -> int:
    """Bytes of the model's weights (parameters and buffers) as loaded."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
