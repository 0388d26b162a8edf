"""A protocol applied to one model x dataset of a config: the model spec the cell runs
(with the protocol's `video_input` params), its frame settings and the resolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalcore.protocols.family import family_of
from evalcore.protocols.registry import resolve
from evalcore.protocols.resolution import FrameCount, ProtocolError, Resolution

if TYPE_CHECKING:
    from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
    from evalcore.frames import FrameSettings


@dataclass(frozen=True)
class Applied:
    model: ModelSpec  # the config's, with the protocol's video_input params merged in
    frames: FrameSettings
    resolution: Resolution


def protocol_of(config: EvalConfig, model: ModelSpec) -> str:
    return model.protocol or config.protocol


def apply_protocol(config: EvalConfig, model: ModelSpec, dataset: DatasetSpec) -> Applied:
    """The frame count is the run's `frames`, over it the dataset's (a VLMEvalKit name's
    nframe or fps), over that the model's own; the protocol then sets the fields it fixes.
    A model's `frames` may not set a field the protocol fixes to another value
    (ProtocolError naming it); its `params.video_input` keys win over the protocol's (a
    stated departure, shown in the model's identity). Pydantic's ValidationError for
    frame settings that do not validate."""
    from evalcore.frames import FrameSettings

    base = config.frames.model_dump()
    own = dict(model.frames or {})
    model_count = {k: own[k] for k in ("nframe", "fps") if k in own}
    count = model_count or dict(dataset.frames or {})
    if count:
        base.update(nframe=count.get("nframe"), fps=count.get("fps"))
    settings = FrameSettings.model_validate(
        {**base, **{k: v for k, v in own.items() if k not in ("nframe", "fps")}}
    )
    protocol = protocol_of(config, model)
    family = family_of(model.kind, model.params)
    frame_count = FrameCount(settings.nframe, settings.fps, model_set=bool(model_count))
    resolution = resolve(protocol, family, dataset.benchmark, frame_count)
    for name, value in resolution.frames.items():
        if name in own and name not in ("nframe", "fps") and own[name] != value:
            raise ProtocolError(
                f"frames.{name}: protocol {protocol} fixes it to {value!r} for {family} "
                f"(the reference's own); remove it or use protocol evalcore"
            )
    if resolution.frames:  # a protocol that sets frames sets nframe and fps both
        settings = FrameSettings.model_validate({**settings.model_dump(), **resolution.frames})
    if (resolution.video_input or resolution.processor) and model.kind == "transformers":
        params: dict[str, Any] = dict(model.params)
        for key in ("video_input", "processor"):
            fixed = getattr(resolution, key)
            if fixed:
                params[key] = {**fixed, **dict(params.get(key) or {})}
        model = model.model_copy(update={"params": params})
    return Applied(model, settings, resolution)
