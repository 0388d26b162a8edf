"""Tiny random-weight checkpoints of real video-LLM architectures, built offline.

Tests (and anyone checking the `transformers` adapter on a laptop) need checkpoints that
exercise the real code path: the family's model class, its processor classes, its chat
template and its special tokens, loaded back with `from_pretrained`. No weights may be
downloaded here, so each checkpoint is made from scratch: a tiny config of the real
architecture (hidden 32, one or two layers, a vision tower over 32-64 px frames), a BPE
tokenizer trained locally on generated sentences with the family's special tokens, and
the family's real image, video and processor classes with small sizes. Weights are random
(`torch.manual_seed(0)`), so answers are gibberish, but deterministic and dependent on
the frames and the prompt.

A build takes well under a second and a checkpoint is under 1 MB.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TINY_ARCHS: tuple[str, ...] = (
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "llava_onevision",
    "llava_next_video",
    "internvl",
)

# Text model sizes shared by every tiny checkpoint.
_HIDDEN = 32
# Std of the random weight matrices. transformers' 0.02 gives near-constant answers at this
# size, which would hide a padding or batching bug; 0.3 makes answers depend on the input.
_WEIGHT_STD = 0.3
_HEADS = 2  # head_dim 16
_VOCAB = 600  # BPE target; special tokens come on top

# Chat templates: the families' published templates, trimmed of tool-calling branches.
_QWEN2_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN3_VL_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' or 'image' in content %}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif content['type'] == 'video' or 'video' in content %}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in content %}{{- content['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
_LLAVA_ONEVISION_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ '\n' + content['text'] }}{% endfor %}{{'<|im_end|>'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_LLAVA_NEXT_VIDEO_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
_INTERNVL_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{'<|im_end|>\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)

_QWEN_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


@dataclass(frozen=True)
class _TokenizerSpec:
    """The family's special tokens and which of them play which role."""

    special: tuple[str, ...]
    eos: str
    pad: str
    bos: str | None = None
    unk: str | None = None
    named: dict[str, str] = field(default_factory=dict)  # e.g. video_token: <video>


def _sentences() -> list[str]:
    """A few hundred English sentences with the letters A-E and digits (answers look so)."""
    colours = ("red", "green", "blue", "yellow", "white")
    shapes = ("circle", "square", "triangle", "ball", "box")
    moves = ("moves left", "moves right", "goes up", "falls down", "stays still")
    out = []
    for i, (letter, colour, shape, move) in enumerate(
        itertools.product("ABCDE", colours, shapes, moves[:2])
    ):
        out.append(f"The answer is {letter}. The {colour} {shape} {move} {i % 10} times.")
        out.append(f"({letter}) {i} {shape}s; Question: which option? Answer: {letter}")
    out += [
        f"Option {letter}: {moves[i % 5]} at {i}.{i % 7} seconds"
        for i, letter in enumerate("ABCDE" * 20)
    ]
    return out


def _tokenizer(spec: _TokenizerSpec) -> Any:
    """A byte-level BPE like the real families', trained here in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token=spec.unk))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB,
        special_tokens=list(spec.special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_sentences(), trainer)
    if spec.bos is not None:  # Llama-style: every encoded text starts with BOS
        bos = (spec.bos, backend.token_to_id(spec.bos))
        backend.post_processor = processors.TemplateProcessing(
            single=f"{spec.bos} $A", pair=f"{spec.bos} $A {spec.bos} $B", special_tokens=[bos]
        )
    roles = {
        "eos_token": spec.eos,
        "pad_token": spec.pad,
        "bos_token": spec.bos,
        "unk_token": spec.unk,
    }
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **{role: token for role, token in roles.items() if token is not None},
        extra_special_tokens=dict(spec.named),
    )


def _ids(tokenizer: Any, *tokens: str) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def _qwen_text(tokenizer: Any, **extra: Any) -> dict[str, Any]:
    """A 1-layer text config of the Qwen2-VL kind (multimodal rope over head_dim 16)."""
    bos, eos, pad = _ids(tokenizer, "<|endoftext|>", "<|im_end|>", "<|endoftext|>")
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": _HIDDEN,
        "intermediate_size": 2 * _HIDDEN,
        "num_hidden_layers": 1,
        "num_attention_heads": _HEADS,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        **extra,
    }


def _qwen_vision_ids(tokenizer: Any) -> dict[str, int]:
    image, video, start, end = _ids(
        tokenizer, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"
    )
    return {
        "image_token_id": image,
        "video_token_id": video,
        "vision_start_token_id": start,
        "vision_end_token_id": end,
    }


def _qwen2_vl(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    config = Qwen2VLConfig(
        text_config=_qwen_text(tokenizer, rope_parameters=rope),
        vision_config={
            "depth": 1,
            "embed_dim": _HIDDEN,
            "hidden_size": _HIDDEN,
            "num_heads": _HEADS,
            "mlp_ratio": 2,
        },
        **_qwen_vision_ids(tokenizer),
    )
    # 64x64 frames -> 56x56 (multiples of 28) -> a 4x4 patch grid, 4 tokens per 2 frames
    pixels = {"min_pixels": 28 * 28, "max_pixels": 112 * 112}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer,
        chat_template=_QWEN2_VL_TEMPLATE,
    )
    return Qwen2VLForConditionalGeneration(config), processor


def _qwen2_5_vl(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    config = Qwen2_5_VLConfig(
        text_config=_qwen_text(tokenizer, rope_parameters=rope),
        vision_config={
            "depth": 2,
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_heads": _HEADS,
            "out_hidden_size": _HIDDEN,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,  # as the released checkpoints
        },
        **_qwen_vision_ids(tokenizer),
    )
    pixels = {"min_pixels": 28 * 28, "max_pixels": 112 * 112}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer,
        chat_template=_QWEN2_VL_TEMPLATE,
    )
    return Qwen2_5_VLForConditionalGeneration(config), processor


def _qwen3_vl(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    rope = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": [4, 2, 2],
        "mrope_interleaved": True,
    }
    text = _qwen_text(tokenizer, rope_parameters=rope, head_dim=_HIDDEN // _HEADS)
    text.pop("bos_token_id")
    text.pop("eos_token_id")
    config = Qwen3VLConfig(
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_heads": _HEADS,
            "out_hidden_size": _HIDDEN,
            "num_position_embeddings": 16,  # a 4x4 grid, interpolated to the frame's grid
            "deepstack_visual_indexes": [0],
        },
        **_qwen_vision_ids(tokenizer),
    )
    # patch 16, merge 2: 64x64 frames stay 64x64, a 4x4 grid; size bounds the whole clip
    patches = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=32 * 32, max_pixels=128 * 128, **patches),
        video_processor=Qwen3VLVideoProcessor(
            size={"shortest_edge": 32 * 32, "longest_edge": 16 * 128 * 128}, **patches
        ),
        tokenizer=tokenizer,
        chat_template=_QWEN3_VL_TEMPLATE,
    )
    return Qwen3VLForConditionalGeneration(config), processor


def _llava_onevision(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    image, video = _ids(tokenizer, "<image>", "<video>")
    text = _qwen_text(tokenizer, model_type="qwen2")
    config = LlavaOnevisionConfig(
        text_config=text,
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_hidden_layers": 1,
            "num_attention_heads": _HEADS,
            "image_size": 32,
            "patch_size": 8,  # 4x4 patches -> 2x2 pooled per frame
        },
        image_token_index=image,
        video_token_index=video,
        image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    side = {"height": 32, "width": 32}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(
            size=side, image_grid_pinpoints=config.image_grid_pinpoints
        ),
        video_processor=LlavaOnevisionVideoProcessor(size=side),
        tokenizer=tokenizer,
        num_image_tokens=16,
        vision_feature_select_strategy="full",
        chat_template=_LLAVA_ONEVISION_TEMPLATE,
    )
    return LlavaOnevisionForConditionalGeneration(config), processor


def _llava_next_video(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    image, video, bos, eos, pad = _ids(tokenizer, "<image>", "<video>", "<s>", "</s>", "<pad>")
    config = LlavaNextVideoConfig(
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_hidden_layers": 1,
            "num_attention_heads": _HEADS,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": pad,
        },
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "projection_dim": _HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": _HEADS,
            "image_size": 32,
            "patch_size": 8,  # 4x4 patches (+CLS, dropped) -> 2x2 pooled per frame
        },
        image_token_index=image,
        video_token_index=video,
        image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]],
        image_seq_length=16,
        video_seq_length=4,
    )
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        image_processor=LlavaNextImageProcessor(
            size={"shortest_edge": 32},
            crop_size={"height": 32, "width": 32},
            image_grid_pinpoints=config.image_grid_pinpoints,
        ),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=_LLAVA_NEXT_VIDEO_TEMPLATE,
    )
    return LlavaNextVideoForConditionalGeneration(config), processor


def _internvl(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    (context,) = _ids(tokenizer, "<IMG_CONTEXT>")
    config = InternVLConfig(
        text_config=_qwen_text(tokenizer, model_type="qwen2"),
        vision_config={
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_hidden_layers": 1,
            "num_attention_heads": _HEADS,
            "image_size": [32, 32],
            "patch_size": [8, 8],  # 4x4 patches -> pixel shuffle 0.5 -> 4 tokens per frame
        },
        image_token_id=context,
        image_seq_length=4,
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )
    side = {"height": 32, "width": 32}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=side, crop_to_patches=False),
        video_processor=InternVLVideoProcessor(size=side),
        tokenizer=tokenizer,
        image_seq_length=4,
        chat_template=_INTERNVL_TEMPLATE,
    )
    return InternVLForConditionalGeneration(config), processor


_QWEN_SPEC = _TokenizerSpec(special=_QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
_SPECS: dict[str, tuple[_TokenizerSpec, Callable[[Any], tuple[Any, Any]]]] = {
    "qwen2_vl": (_QWEN_SPEC, _qwen2_vl),
    "qwen2_5_vl": (_QWEN_SPEC, _qwen2_5_vl),
    "qwen3_vl": (_QWEN_SPEC, _qwen3_vl),
    "llava_onevision": (
        _TokenizerSpec(
            special=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"),
            eos="<|im_end|>",
            pad="<|endoftext|>",
        ),
        _llava_onevision,
    ),
    "llava_next_video": (
        _TokenizerSpec(
            special=("<unk>", "<s>", "</s>", "<pad>", "<image>", "<video>"),
            eos="</s>",
            pad="<pad>",
            bos="<s>",
            unk="<unk>",
        ),
        _llava_next_video,
    ),
    "internvl": (
        _TokenizerSpec(
            special=(
                "<|endoftext|>",
                "<|im_start|>",
                "<|im_end|>",
                "<img>",
                "</img>",
                "<IMG_CONTEXT>",
                "<video>",
            ),
            eos="<|im_end|>",
            pad="<|endoftext|>",
            # InternVLProcessor reads these as tokenizer attributes
            named={
                "start_image_token": "<img>",
                "end_image_token": "</img>",
                "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>",
            },
        ),
        _internvl,
    ),
}


def build_tiny_checkpoint(arch: str, out_dir: Path) -> Path:
    """Save a random-weight checkpoint of `arch` (one of `TINY_ARCHS`) into `out_dir`.

    The result loads with `AutoConfig`, `AutoProcessor` and
    `AutoModelForImageTextToText.from_pretrained(out_dir, local_files_only=True)`.
    Deterministic: the same arch gives the same weights and tokenizer every time.
    """
    import torch

    if arch not in _SPECS:
        raise ValueError(f"unknown tiny arch {arch!r}; known: {', '.join(TINY_ARCHS)}")
    spec, build = _SPECS[arch]
    torch.manual_seed(0)
    tokenizer = _tokenizer(spec)
    model, processor = build(tokenizer)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() >= 2:  # matrices, convolutions, embeddings; norms stay at 1
                weight.normal_(0.0, _WEIGHT_STD)
    model.eval()
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        generation.bos_token_id = tokenizer.bos_token_id
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
