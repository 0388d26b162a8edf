"""Model kinds by name, so a config can say `kind: reference` and get a model."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from evalcore.models.base import VideoModel

ModelFactory = Callable[..., VideoModel]
_FACTORIES: dict[str, ModelFactory] = {}


def register_model(kind: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: make `factory(**params)` buildable as `kind`."""

    def add(factory: ModelFactory) -> ModelFactory:
        _FACTORIES[kind] = factory
        return factory

    return add


def model_kinds() -> list[str]:
    _load_builtins()
    return sorted(_FACTORIES)


def resolve_factory(kind: str) -> ModelFactory:
    """A registered kind, or `package.module:factory` for a model outside this project."""
    if ":" in kind:
        module, _, attr = kind.partition(":")
        return getattr(importlib.import_module(module), attr)
    _load_builtins()
    if kind not in _FACTORIES:
        raise KeyError(f"unknown model kind {kind!r}; known: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[kind]


def build_model(kind: str, params: dict[str, Any] | None = None) -> VideoModel:
    return resolve_factory(kind)(**(params or {}))


def accepts_seed(kind: str) -> bool:
    """Whether the factory takes `seed`, so trials can vary it."""
    return "seed" in inspect.signature(resolve_factory(kind)).parameters


def check_params(kind: str, params: dict[str, Any]) -> None:
    """Validate a model's params at config time, for kinds whose factory has a
    `check_params` (raising ValueError that names the field); others fail when built."""
    check = getattr(resolve_factory(kind), "check_params", None)
    if check is not None:
        check(params)


def _load_builtins() -> None:
    # Imported lazily: torch is only paid for by processes that build a model.
    from evalcore.api import model as _openai_compatible  # noqa: F401
    from evalcore.models import random_choice, reference  # noqa: F401
