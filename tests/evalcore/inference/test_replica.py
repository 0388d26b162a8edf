"""A model kind whose libraries are missing (an install without the `local` extra)."""

from __future__ import annotations

import sys

import pytest

from evalcore.inference.replica import Replica
from evalcore.models import Runtime


def test_a_kind_without_torch_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as if absent
    monkeypatch.delitem(sys.modules, "evalcore.models.reference_net", raising=False)
    with Replica("reference", {}, Runtime()) as replica, pytest.raises(ModuleNotFoundError) as err:
        replica()
    assert "video-evalcore[local]" in str(err.value)
    assert err.value.name == "torch"
