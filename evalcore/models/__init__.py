"""Video models: the interface every kind implements (`base`), the registry that turns a
config's `kind` and `params` into one (`registry`), and the built-in kinds (`reference`,
`random_choice`, `openai_compatible`, `transformers`).

Importing this package imports none of them: each name below is imported from its module
on first use (a kind pulls in torch or an HTTP client only when it is built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalcore.lazy import lazy_exports

if TYPE_CHECKING:
    from evalcore.models.base import (
        BaseVideoModel,
        ChatMessage,
        Frames,
        GenerationConfig,
        ModelError,
        ModelOutput,
        ModelParams,
        Runtime,
        Usage,
        VideoModel,
        VideoRequest,
    )
    from evalcore.models.registry import (
        ModelParamsError,
        build_model,
        kind_modules,
        model_identity,
        model_kinds,
        parse_params,
        resolve_kind,
    )

_EXPORTS = {
    "BaseVideoModel": "evalcore.models.base",
    "ChatMessage": "evalcore.models.base",
    "Frames": "evalcore.models.base",
    "GenerationConfig": "evalcore.models.base",
    "ModelError": "evalcore.models.base",
    "ModelOutput": "evalcore.models.base",
    "ModelParams": "evalcore.models.base",
    "ModelParamsError": "evalcore.models.registry",
    "Runtime": "evalcore.models.base",
    "Usage": "evalcore.models.base",
    "VideoModel": "evalcore.models.base",
    "VideoRequest": "evalcore.models.base",
    "build_model": "evalcore.models.registry",
    "kind_modules": "evalcore.models.registry",
    "model_identity": "evalcore.models.registry",
    "model_kinds": "evalcore.models.registry",
    "parse_params": "evalcore.models.registry",
    "resolve_kind": "evalcore.models.registry",
}

__all__ = [
    "BaseVideoModel",
    "ChatMessage",
    "Frames",
    "GenerationConfig",
    "ModelError",
    "ModelOutput",
    "ModelParams",
    "ModelParamsError",
    "Runtime",
    "Usage",
    "VideoModel",
    "VideoRequest",
    "build_model",
    "kind_modules",
    "model_identity",
    "model_kinds",
    "parse_params",
    "resolve_kind",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
