"""Model kinds by name, so a config can say `kind: reference` and get a model.

A kind is a class following `VideoModel` with a pydantic `Params`; `package.module:Class`
names one outside this project. The built-in kinds are listed here by import path and
imported on first use (torch and transformers are paid for only by processes that
build such a model); this module imports none of them itself.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ValidationError

from evalcore.models.base import ModelParams, VideoModel

BUILTIN_KINDS: dict[str, str] = {
    "reference": "evalcore.models.reference:ReferenceModel",
    "random": "evalcore.models.random_choice:RandomChoiceModel",
    "openai-compatible": "evalcore.models.openai_compatible:OpenAICompatibleModel",
    "transformers": "evalcore.models.transformers:TransformersModel",
}


class ModelParamsError(ValueError):
    """Invalid params of a model kind; one `params.<field>: message` per problem."""


def model_kinds() -> list[str]:
    return sorted(BUILTIN_KINDS)


def resolve_kind(kind: str) -> type:
    """The class of a registered kind, or of `package.module:Class`. Raises KeyError for
    an unknown name, ImportError/AttributeError for a path that does not import."""
    target = BUILTIN_KINDS.get(kind)
    if target is None:
        if ":" not in kind:
            raise KeyError(f"unknown model kind {kind!r}; known: {', '.join(model_kinds())}")
        target = kind
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not isinstance(getattr(cls, "Params", None), type) or not issubclass(cls.Params, BaseModel):
        raise AttributeError(f"{target} has no pydantic `Params` class (see evalcore.models.base)")
    return cls


def parse_params(kind: str, params: dict[str, Any] | BaseModel) -> ModelParams:
    """Validate a kind's params; errors name each field as `params.<field>`."""
    cls = resolve_kind(kind)
    if isinstance(params, cls.Params):
        return params
    raw = params.model_dump() if isinstance(params, BaseModel) else params
    try:
        return cls.Params.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            # never echo the input: a misplaced API key must not reach a log
            msg = err["msg"].removeprefix("Value error, ")
            where = ".".join(str(p) for p in err["loc"])
            if not where:  # a whole-params validator names the field in its message
                where, _, msg = msg.partition(": ")
            lines.append(f"params.{where}: {msg}")
        raise ModelParamsError("; ".join(lines)) from None


def build_model(kind: str, params: dict[str, Any] | BaseModel | None = None) -> VideoModel:
    """An unloaded model: call `load(runtime)` before `generate`."""
    cls = resolve_kind(kind)
    return cls(parse_params(kind, params or {}))


def kind_modules(kind: str) -> list[str]:
    """The modules a process imports to build a model of `kind`, as far as they are known
    without building one: the kind's own module and its `preload_modules`."""
    cls = resolve_kind(kind)
    return [cls.__module__, *getattr(cls, "preload_modules", ())]


def model_identity(kind: str, params: dict[str, Any] | BaseModel) -> dict[str, Any]:
    """What identifies a model's answers (see `BaseVideoModel.identity`)."""
    cls = resolve_kind(kind)
    return {"kind": kind, **cls.identity(parse_params(kind, params))}
