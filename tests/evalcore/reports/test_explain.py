"""The reproducibility card in every cell report, and `evalcore explain`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from evalcore.cell import Cell
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.frames import FrameSettings
from evalcore.reports.explain import card_differences, explain_markdown, read_card

REPO = Path(__file__).resolve().parents[3]


def report(path: Path, cell: Cell, judge: str | None = None) -> Path:
    payload = {"model": cell.model.name, "dataset": "D", "settings": {"card": cell.card(judge)}}
    path.write_text(json.dumps(payload))
    return path


def test_card_names_every_setting_that_decides_the_number(small_bench, tmp_path):
    model = ModelSpec(name="m", kind="random")
    base = Cell(model, DatasetSpec(tsv=small_bench), 0, 0, FrameSettings())
    card = base.card()
    assert card["benchmark"] == "generic" and card["frames_per_clip"] == 8
    assert card["frame_size"] == "longer side <= 448" and card["judge"] == "none"
    assert card["prompt_template"] == "mcq-v1" and card["extraction_rule"] == "letter-can-infer-v2"

    other = Cell(model, DatasetSpec(tsv=small_bench), 0, 0, FrameSettings(fps=1, max_side=None))
    a = read_card(report(tmp_path / "a.json", base))
    b = read_card(report(tmp_path / "b.json", other, judge="gpt-4o-mini"))
    diff = card_differences(a, b)
    assert set(diff) == {"frames_per_clip", "frame_size", "judge"}
    assert diff["judge"] == ("none", "gpt-4o-mini")
    text = explain_markdown([a, b])
    assert "| frame_size | longer side <= 448 | native |" in text

    out = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "explain", str(tmp_path / "a.json")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    assert "| sampler | midpoint |" in out and "| benchmark | generic |" in out


def test_benchmarks_command_lists_every_adapter():
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "benchmarks"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    assert "generic" in out and "letter-can-infer-v2" in out
