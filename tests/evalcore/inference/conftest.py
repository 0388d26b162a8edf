"""Fixtures for sharded inference: frames extracted once, a fresh workspace per test,
and the repo root on PYTHONPATH so torchrun ranks can import the test models."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _ranks_import_tests(subprocess_imports_tests):
    """torchrun ranks import the test models under tests/."""


@pytest.fixture(scope="session")
def extracted(small_bench, tmp_path_factory):
    """A work dir whose frame cache and frame index cover `small_bench` (default frames)."""
    from evalcore.cell import extract_dataset_frames as prepare_frames
    from evalcore.config import DatasetSpec
    from evalcore.frames import FrameSettings
    from evalcore.workspace import Workspace

    work = tmp_path_factory.mktemp("frames-work")
    summary = prepare_frames(DatasetSpec(tsv=small_bench), FrameSettings(), Workspace(work, work))
    assert summary.failed == 0
    return work


@pytest.fixture
def ws(extracted, tmp_path):
    """A fresh workspace sharing the extracted frames (read-only) through symlinks."""
    from evalcore.workspace import Workspace

    work = tmp_path / "work"
    work.mkdir()
    for name in ("frames", "frame-index"):
        (work / name).symlink_to(extracted / name, target_is_directory=True)
    return Workspace(work, tmp_path / "out")
