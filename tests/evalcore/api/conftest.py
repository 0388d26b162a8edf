"""Fixtures for the API tests: JPEG frames on disk (the loopback server, the Dask cluster
and the extracted benchmark are in tests/evalcore/conftest.py, shared with the judge tests)."""

from __future__ import annotations

from pathlib import Path

import pytest


class FakeFrames:
    """A frame-cache entry stand-in: real JPEG files on disk."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = tuple(paths)
        self.timestamps = tuple(float(i) for i in range(len(paths)))

    def jpeg_bytes(self) -> list[bytes]:
        return [p.read_bytes() for p in self.paths]


@pytest.fixture(scope="session")
def jpeg_frames(tmp_path_factory) -> FakeFrames:
    from PIL import Image

    folder = tmp_path_factory.mktemp("jpegs")
    paths = []
    for i in range(3):
        path = folder / f"{i:03d}.jpg"
        Image.new("RGB", (320, 240), (40 * i, 100, 200)).save(path, quality=90)
        paths.append(path)
    return FakeFrames(paths)
