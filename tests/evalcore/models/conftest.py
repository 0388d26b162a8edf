"""Tiny real checkpoints, built once per session per architecture, loaded on CPU.

Offline on purpose: `HF_HUB_OFFLINE=1` is set before huggingface_hub is imported, so a
missing file fails instead of reaching for the network.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from evalcore.models import Runtime  # noqa: E402
from evalcore.models.transformers import (  # noqa: E402
    TINY_ARCHS,
    TransformersModel,
    build_tiny_checkpoint,
)


@pytest.fixture(scope="session", autouse=True)
def _offline_one_thread():
    import huggingface_hub.constants
    import torch

    huggingface_hub.constants.HF_HUB_OFFLINE = True  # in case it was imported before us
    torch.set_num_threads(1)  # more threads on 2 shared cores ran 7x slower


@pytest.fixture(scope="session", params=TINY_ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def checkpoint(arch, tmp_path_factory) -> Path:
    """A tiny checkpoint of `arch`, shared read-only by the session's tests."""
    return build_tiny_checkpoint(arch, tmp_path_factory.mktemp(arch))


@pytest.fixture(scope="session")
def loaded(checkpoint) -> TransformersModel:
    """The adapter over `checkpoint`, loaded on CPU as the runner would."""
    model = TransformersModel(TransformersModel.Params.model_validate({"model": str(checkpoint)}))
    model.load(Runtime(device="cpu"))
    yield model
    model.close()
