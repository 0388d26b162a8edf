"""docs/reproduce.md's per-family tables are what `evalcore.protocols` sets: a change to a
protocol that the page does not follow fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalcore.protocols import FrameCount
from evalcore.reports.sensitivity import protocols_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "reproduce.md"
CASES = [
    ("Qwen2-VL", "qwen2_vl", "videomme", "Video-MME_64frame", FrameCount(64)),
    ("Qwen2.5-VL", "qwen2_5_vl", "videomme", "Video-MME_64frame", FrameCount(64)),
    ("Qwen3-VL", "qwen3_vl", "videomme", "Video-MME_64frame", FrameCount(64)),
    ("LLaVA-OneVision", "llava_onevision", "videomme", "Video-MME_64frame", FrameCount(64)),
    ("Frame-based models (API models, other families)", "frame-based", "videomme",
     "Video-MME_64frame", FrameCount(64)),
    ("Frame-based models (API models, other families)", "frame-based", "mvbench",
     "MVBench_8frame", FrameCount(8)),
]  # fmt: skip


@pytest.mark.parametrize(("title", "family", "benchmark", "name", "count"), CASES)
def test_the_page_shows_what_the_protocols_set(title, family, benchmark, name, count):
    section = f"### {title} on `{name}`\n\n{protocols_table(family, benchmark, count)}"
    assert section in DOC.read_text(encoding="utf-8")
