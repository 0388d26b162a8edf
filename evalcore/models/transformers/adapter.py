"""`kind: transformers`: a Hugging Face video-LLM checkpoint, run in this process.

The checkpoint is named by `model` (a local directory or a hub id) and checked when the
config is read: a missing directory, or a hub id absent from the local cache while the
network is off, fails validation at `params.model`, before any frame is extracted.

`load` picks the family from `config.json`'s `model_type` (see `families.py`) and loads
model and processor with `from_pretrained` on the runner's device. `generate` answers a
batch: one chat-templated text and one clip per request, one processor call (left
padding) per group of clips that stack, one `model.generate`, only the new tokens
decoded. A request whose frames or preprocessing fail comes back as a `ModelError`
alone; a CUDA out-of-memory error propagates so the runner can halve the batch.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from evalcore.models.base import (
    BaseVideoModel,
    GenerationConfig,
    ModelError,
    ModelOutput,
    ModelParams,
    Runtime,
    Usage,
    VideoRequest,
)
from evalcore.models.transformers.families import Clip, Family, family_for
from evalcore.predictions.failures import FailureKind

# Files whose change changes what a local checkpoint answers (weights, configs,
# tokenizer, chat template, remote code); READMEs and images are left out.
_CHECKPOINT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".json",
    ".jinja",
    ".model",
    ".txt",
    ".tiktoken",
    ".py",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class VideoProcessorOptions(BaseModel):
    """Overrides of the video processor's settings; None keeps the checkpoint's own.

    Only the Qwen families (qwen2_vl, qwen2_5_vl, qwen3_vl) take these.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pixels: int | None = Field(
        default=None,
        ge=1,
        description="Lower pixel bound: per frame for Qwen2/2.5-VL, per clip for Qwen3-VL.",
    )
    max_pixels: int | None = Field(
        default=None,
        ge=1,
        description="Upper pixel bound: per frame for Qwen2/2.5-VL, per clip for Qwen3-VL.",
    )
    cap_pixels_per_frame: bool | None = Field(
        default=None,
        description="true: bound the clip's total pixels as qwen-vl-utils does.",
    )

    def set_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class VideoInput(BaseModel):
    """How a clip reaches the processor: the frames it gets, the time it is told, the
    turn that carries it. The default is evalcore's own way (frames as the frame cache
    holds them, their exact times); the other values reproduce a peer's call of the
    same processor (`evalcore.protocols` picks them per protocol). In the model's
    identity only when not the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resize: Literal["processor", "qwen_vl"] = Field(
        default="processor",
        description="processor: the frames as stored, the processor resizes; qwen_vl: "
        "resized first as qwen-vl-utils does (Qwen families; store frames at native size, "
        "lossless).",
    )
    min_pixels: int | None = Field(
        default=None, ge=1, description="qwen-vl-utils' min_pixels key (None: its default)."
    )
    max_pixels: int | None = Field(
        default=None, ge=1, description="qwen-vl-utils' max_pixels key (None: its default)."
    )
    total_pixels: int | None = Field(
        default=None, ge=1, description="qwen-vl-utils' total_pixels key (None: its default)."
    )
    image_patch_size: Literal[14, 16] | None = Field(
        default=None,
        description="qwen-vl-utils' image_patch_size: 14 (Qwen2/2.5-VL), 16 (Qwen3-VL); "
        "None: the family's.",
    )
    budget_fps: float | None = Field(
        default=None,
        gt=0,
        description="Size the frames for as many frames as qwen-vl-utils reads from the "
        "whole video at this rate, not for the frames given (lmms-eval resizes first, "
        "then subsamples).",
    )
    time_input: Literal["exact", "metadata", "none"] = Field(
        default="exact",
        description="exact: the frames' real times (Qwen2.5-VL: second_per_grid_ts from "
        "them); metadata: the source's frame rate, frame numbers and frame count, as "
        "qwen-vl-utils' return_video_metadata gives; none: no time (the processor's "
        "default).",
    )
    do_resize: bool | None = Field(
        default=None, description="Passed to the processor when set (None: its default)."
    )
    prompt: Literal["template", "llava_ov_times"] = Field(
        default="template",
        description="template: the benchmark's turns, the video before the text; "
        "llava_ov_times: VLMEvalKit's LLaVA-OneVision video prompt (llava_onevision).",
    )

    def set_fields(self) -> dict[str, Any]:
        """The fields that differ from the default (what goes in the model's identity)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def errors(self, family: Family | None) -> list[tuple[str, str]]:
        """(field, message) for each setting that does not apply; `family` None: the
        checkpoint's is not known yet (checked again at load)."""
        found = []
        if self.resize != "qwen_vl":
            for name in ("min_pixels", "max_pixels", "total_pixels", "image_patch_size"):
                if getattr(self, name) is not None:
                    found.append((name, f"{name} sizes frames for resize: qwen_vl only"))
            if self.budget_fps is not None:
                found.append(("budget_fps", "budget_fps sizes frames for resize: qwen_vl only"))
        elif family is not None and family.image_patch_size is None:
            found.append(
                (
                    "resize",
                    f"{family.name} checkpoints take no qwen_vl resize (only the Qwen families do)",
                )
            )
        if (self.min_pixels or 0) > (self.max_pixels or float("inf")):
            found.append(("max_pixels", "max_pixels must be at least min_pixels"))
        if family is not None and self.prompt not in family.prompts:
            found.append(
                (
                    "prompt",
                    f"prompt {self.prompt} is for llava_onevision checkpoints, not {family.name}",
                )
            )
        return found


class TransformersParams(ModelParams):
    """Params of `kind: transformers` (validated when the config is read)."""

    model: str = Field(description="A local checkpoint directory or a Hugging Face hub id.")
    revision: str | None = Field(
        default=None,
        description="Hub branch, tag or commit; for a local directory a label you vouch for "
        "(it replaces the file fingerprint in the model's identity).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="auto: the launcher's dtype if it sets one, else bfloat16 on GPU and "
        "float32 on CPU.",
    )
    attn_implementation: str | None = Field(
        default=None, description="e.g. sdpa, eager, flash_attention_2; None: transformers picks."
    )
    trust_remote_code: bool = Field(
        default=False, description="Run Python code shipped with the checkpoint."
    )
    allow_network: bool = Field(
        default=False, description="false: load from local files only (no download)."
    )
    processor: VideoProcessorOptions = Field(
        default_factory=VideoProcessorOptions, description="Video processor overrides."
    )
    video_input: VideoInput = Field(
        default_factory=VideoInput,
        description="How the clip reaches the processor (default: evalcore's own way).",
    )

    @model_validator(mode="after")
    def _checkpoint_exists(self) -> TransformersParams:
        try:
            checkpoint = locate_checkpoint(self.model, self.revision, self.allow_network)
        except FileNotFoundError as exc:
            raise _field_error(("model",), str(exc), self.model) from None
        model_type = checkpoint.model_type()
        family = family_for(model_type) if model_type is not None else None
        if family is not None and not family.pixel_options:
            for name in self.processor.set_fields():
                raise _field_error(
                    ("processor", name),
                    f"{model_type} checkpoints take no {name} (only the Qwen families do)",
                    getattr(self.processor, name),
                )
        errors = self.video_input.errors(family)
        if errors:
            raise _field_errors(
                [
                    (("video_input", name), message, getattr(self.video_input, name))
                    for name, message in errors
                ]
            )
        return self


def _field_error(loc: tuple[str, ...], message: str, value: Any) -> ValidationError:
    """A validation error located at `loc`, so the config error names the field."""
    return _field_errors([(loc, message, value)])


def _field_errors(errors: Sequence[tuple[tuple[str, ...], str, Any]]) -> ValidationError:
    """One validation error naming each (field, message, value) in `errors`."""
    return ValidationError.from_exception_data(
        "TransformersParams",
        [
            InitErrorDetails(
                type=PydanticCustomError("checkpoint", "{message}", {"message": message}),
                loc=loc,
                input=value,
            )
            for loc, message, value in errors
        ],
    )


@dataclass(frozen=True)
class Checkpoint:
    """Where a checkpoint's files are: a local directory, or a hub id (cached or not)."""

    source: str  # what from_pretrained gets
    directory: Path | None  # its files on disk (the cached snapshot for a hub id)
    commit: str | None = None  # the cached snapshot's commit, for a hub id

    @property
    def is_local(self) -> bool:
        return self.commit is None and self.directory is not None

    def model_type(self) -> str | None:
        """`model_type` from config.json, None if not on disk or unreadable."""
        if self.directory is None:
            return None
        try:
            return json.loads((self.directory / "config.json").read_text()).get("model_type")
        except (OSError, ValueError):
            return None


def locate_checkpoint(model: str, revision: str | None, allow_network: bool) -> Checkpoint:
    """Find `model` on disk: a directory, else a hub id in the local HF cache.

    Raises FileNotFoundError with a message for the user when it is neither and the
    network may not be used.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no config.json in {path}")
        return Checkpoint(source=str(path), directory=path)
    if not _HUB_ID.match(model):
        raise FileNotFoundError(f"no checkpoint at {path}")
    snapshot = _cached_snapshot(model, revision)
    if snapshot is not None:
        return Checkpoint(source=model, directory=snapshot, commit=snapshot.name)
    if allow_network:
        return Checkpoint(source=model, directory=None)
    raise FileNotFoundError(
        f"no checkpoint at {model} (no such directory, and not in the local Hugging Face "
        "cache; set allow_network: true to download)"
    )


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ValueError:  # not a valid repo id after all
        return None
    return Path(found).parent if isinstance(found, str) else None


def checkpoint_fingerprint(directory: Path) -> str:
    """Names, sizes and mtimes of a checkpoint's files: changes when any is rewritten."""
    digest = hashlib.sha256()
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.name.endswith(_CHECKPOINT_SUFFIXES):
            continue
        if not entry.is_file():
            continue
        stat = entry.stat()  # follows symlinks (hub snapshots link into blobs/)
        digest.update(f"{entry.name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return "files-" + digest.hexdigest()[:16]


@dataclass(frozen=True)
class _Prepared:
    index: int  # position in the batch given to generate
    clip: Clip
    text: str  # the chat-templated prompt, with the family's video placeholder
    video: Any  # what the processor gets as the clip's video (`Family.processor_frames`)


class TransformersModel(BaseVideoModel):
    """A transformers image-text-to-text checkpoint answering from sampled frames."""

    Params = TransformersParams
    # What `load` imports before it reads a checkpoint (about 2.4 s here; torchvision
    # with them): a torchrun launch imports them once, in its preload server.
    preload_modules = (
        "transformers",
        "transformers.models.auto.configuration_auto",
        "transformers.models.auto.modeling_auto",
        "transformers.models.auto.processing_auto",
    )

    def __init__(self, params: TransformersParams) -> None:
        super().__init__(params)
        self.params: TransformersParams = params
        self.family: Family | None = None
        self.model: Any = None
        self.processor: Any = None

    @classmethod
    def identity(cls, params: TransformersParams) -> dict[str, Any]:  # type: ignore[override]
        """What the answers depend on, without loading weights: the checkpoint's version
        (revision, else the cached commit or the local files' fingerprint), dtype,
        attention kernel, remote code, processor overrides and, when not the default,
        the video input."""
        checkpoint = locate_checkpoint(params.model, params.revision, params.allow_network)
        if checkpoint.is_local:
            version = params.revision or checkpoint_fingerprint(checkpoint.directory)
        elif params.revision and _COMMIT.match(params.revision):
            version = params.revision
        else:
            version = checkpoint.commit or params.revision or "unresolved"
        identity = {
            "model": params.model,
            "checkpoint": version,
            "dtype": params.dtype,
            "attn_implementation": params.attn_implementation,
            "trust_remote_code": params.trust_remote_code,
            "processor": params.processor.set_fields(),
        }
        video_input = params.video_input.set_fields()
        if video_input:  # absent by default: the keys of cells before it stay as they were
            identity["video_input"] = video_input
        return identity

    def load(self, runtime: Runtime) -> None:
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        super().load(runtime)
        params = self.params
        checkpoint = locate_checkpoint(params.model, params.revision, params.allow_network)
        common = {
            "revision": params.revision,
            "trust_remote_code": params.trust_remote_code,
            "local_files_only": not params.allow_network,
        }
        config = AutoConfig.from_pretrained(checkpoint.source, **common)
        self.family = family_for(config.model_type)
        errors = params.video_input.errors(self.family)  # a hub id downloaded just now
        if errors:
            raise ValueError(
                f"{params.model}: "
                + "; ".join(f"video_input.{name}: {message}" for name, message in errors)
            )
        model = AutoModelForImageTextToText.from_pretrained(
            checkpoint.source,
            config=config,
            dtype=_torch_dtype(params.dtype, runtime),
            attn_implementation=params.attn_implementation,
            **_placement(runtime),
            **common,
        )
        if len(runtime.all_devices) == 1 and runtime.device != "cpu":
            model.to(runtime.device)
        model.eval()
        processor = AutoProcessor.from_pretrained(checkpoint.source, **common)
        if getattr(processor, "video_processor", None) is None:
            raise ValueError(
                f"{params.model}: its processor ({type(processor).__name__}) takes no videos"
            )
        if not (processor.chat_template or processor.tokenizer.chat_template):
            raise ValueError(f"{params.model}: the checkpoint has no chat template")
        processor.tokenizer.padding_side = "left"  # new tokens start at one column
        self.family.adapt_processor(processor, params.video_input)
        self.model, self.processor = model, processor

    def generate(
        self, requests: Sequence[VideoRequest], generation: GenerationConfig
    ) -> list[ModelOutput | ModelError]:
        if self.model is None:
            raise RuntimeError("TransformersModel.generate before load()")
        results: list[ModelOutput | ModelError | None] = [None] * len(requests)
        groups: dict[Any, list[_Prepared]] = {}
        for index, request in enumerate(requests):
            prepared = self._prepare(index, request)
            if isinstance(prepared, ModelError):
                results[index] = prepared
            else:
                groups.setdefault(self.family.stack_key(prepared.clip), []).append(prepared)
        for group in groups.values():
            inputs, group = self._encode(group, results)
            if group:
                for item, answer in zip(group, self._run(inputs, generation), strict=True):
                    results[item.index] = answer
        return results  # type: ignore[return-value]

    def close(self) -> None:
        on_gpu = self.runtime.device_class == "cuda"
        self.model = self.processor = None
        gc.collect()
        if on_gpu:
            import torch

            torch.cuda.empty_cache()

    def _prepare(self, index: int, request: VideoRequest) -> _Prepared | ModelError:
        """The request's clip and prompt text, or the error that fails it alone."""
        try:
            frames = np.asarray(request.frames.load())
            timestamps = tuple(float(t) for t in request.frames.timestamps)
        except Exception as exc:
            if _must_propagate(exc):
                raise
            return ModelError(f"frames could not be loaded: {exc!r}", FailureKind.FramesUnreadable)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            return ModelError(
                f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}",
                FailureKind.InvalidFrames,
            )
        if len(timestamps) != len(frames):
            return ModelError(
                f"{len(frames)} frames but {len(timestamps)} timestamps", FailureKind.InvalidFrames
            )
        clip = Clip(
            frames,
            timestamps,
            request.source_fps,
            request.source_frames,
            tuple(request.frame_indices),
        )
        video_input = self.params.video_input
        try:
            chat, prefill = self.family.conversation(
                request.messages, request.prompt, clip, video_input
            )
            text = self.processor.apply_chat_template(
                chat,
                tokenize=False,
                add_generation_prompt=not prefill,
                continue_final_message=prefill,
            )
        except Exception as exc:
            return ModelError(f"chat template failed: {exc!r}", FailureKind.PreprocessingError)
        try:
            video = self.family.processor_frames(clip, video_input)
        except Exception as exc:
            if _must_propagate(exc):
                raise
            return _preprocessing_error(exc)
        return _Prepared(index, clip, text, video)

    def _encode(
        self, group: list[_Prepared], results: list[ModelOutput | ModelError | None]
    ) -> tuple[Any, list[_Prepared]]:
        """One processor call for the group. If it raises, each request is processed
        alone to find the ones that fail; those get a ModelError, the rest go on."""
        try:
            return self._process(group), group
        except Exception as exc:
            if _must_propagate(exc):
                raise
            if len(group) == 1:
                results[group[0].index] = _preprocessing_error(exc)
                return None, []
        kept = []
        for item in group:
            try:
                self._process([item])
            except Exception as exc:
                if _must_propagate(exc):
                    raise
                results[item.index] = _preprocessing_error(exc)
            else:
                kept.append(item)
        # if the survivors still fail together, the batch fails: the runner isolates it
        return (self._process(kept), kept) if kept else (None, [])

    def _process(self, group: Sequence[_Prepared]) -> Any:
        clips = [item.clip for item in group]
        video_input = self.params.video_input
        inputs = self.processor(
            text=[item.text for item in group],
            videos=[item.video for item in group],
            padding=True,
            return_tensors="pt",
            videos_kwargs=self.family.videos_kwargs(
                clips, self.params.processor, video_input, self.processor
            ),
        )
        return self.family.finish(inputs, clips, video_input, self.processor)

    def _run(self, inputs: Any, generation: GenerationConfig) -> list[ModelOutput]:
        """model.generate on one processed batch; the new tokens decoded, cut at stops.
        Each answer carries its token counts: the prompt's tokens as the model saw them
        (the chat template with the video's tokens, padding left out) and the tokens
        generated before padding."""
        import torch

        inputs = inputs.to(self.model.device)
        for key in inputs:
            if key.startswith("pixel_values"):  # not second_per_grid_ts: it needs fp32
                inputs[key] = inputs[key].to(self.model.dtype)
        tokenizer = self.processor.tokenizer
        kwargs: dict[str, Any] = {
            "max_new_tokens": generation.max_new_tokens,
            "do_sample": not generation.greedy,
            "num_beams": 1,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
        }
        if not generation.greedy:
            # top_k 0: only temperature and top_p shape sampling (transformers would add 50)
            kwargs.update(temperature=generation.temperature, top_p=generation.top_p, top_k=0)
            torch.manual_seed(generation.seed)
        if generation.stop:
            kwargs.update(stop_strings=list(generation.stop), tokenizer=tokenizer)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        mask = inputs.get("attention_mask")  # left padding is not the prompt's
        width = inputs["input_ids"].shape[1]
        prompt = mask.sum(dim=1) if mask is not None else [width] * len(texts)
        generated = (new_tokens != kwargs["pad_token_id"]).sum(dim=1)
        return [
            ModelOutput(_cut_at_stop(text, generation.stop).strip(), Usage(int(p), int(c)))
            for text, p, c in zip(texts, prompt, generated, strict=True)
        ]


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def _must_propagate(exc: BaseException) -> bool:
    """Out-of-memory errors are the runner's (it halves the batch), never one request's."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError)


def _preprocessing_error(exc: Exception) -> ModelError:
    return ModelError(f"preprocessing failed: {exc!r}", FailureKind.PreprocessingError)


def _torch_dtype(dtype: str, runtime: Runtime) -> Any:
    """The params' dtype; with `auto`, the runtime's, else bfloat16 on GPU (float16 where
    the GPU has no bfloat16) and float32 on CPU."""
    import torch

    chosen = dtype if dtype != "auto" else runtime.dtype
    if chosen != "auto":
        return getattr(torch, chosen)
    if runtime.device_class == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _placement(runtime: Runtime) -> dict[str, Any]:
    """One device: load on the CPU, then move (any `device_map` needs accelerate).
    Several (a replica over M GPUs): accelerate's `device_map="auto"` spreads the layers
    over exactly those GPUs."""
    devices = runtime.all_devices
    if len(devices) == 1:
        return {}
    import importlib.util

    import torch

    if importlib.util.find_spec("accelerate") is None:
        raise ImportError("a model over several GPUs needs `pip install accelerate`")
    indices = [torch.device(d).index or 0 for d in devices]
    return {
        "device_map": "auto",
        "max_memory": {i: torch.cuda.get_device_properties(i).total_memory for i in indices},
    }
