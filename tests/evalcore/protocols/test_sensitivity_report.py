"""`evalcore explain --sensitivity`: the answer rule's effect computed from a real cell
report, and the choices that need a re-run named with each reference's settings."""

from __future__ import annotations

import json
import subprocess
import sys

from evalcore.reports.sensitivity import sensitivity
from tests.doubles.cells import reported_cell


def test_sensitivity_of_a_real_report(tmp_path):
    _, ws, _ = reported_cell(tmp_path)
    report = json.loads(ws.cell_json("m", "D").read_text())

    s = sensitivity(report)
    assert (s["protocol"], s["family"], s["rule_set"]) == ("evalcore", "frame-based", "evalcore")
    assert s["headline"] == 3 / 6
    assert s["answer_rule"]["lmms-eval"]["change"] == 2 / 6 - 3 / 6
    assert s["answer_rule"]["vlmevalkit"]["change"] == 0
    vlmevalkit = s["protocols"]["vlmevalkit"]["needs_inference"]
    assert set(vlmevalkit) == {"frames", "resolution", "storage"}  # its frame-based path
    assert "Pillow's default quality 75" in vlmevalkit["storage"]["theirs"]
    assert "int(i * n / (nframe + 1))" in vlmevalkit["frames"]["theirs"]
    assert s["protocols"]["lmms-eval"]["needs_inference"] == {}  # its rule only
    assert s["protocols"]["lmms-eval"]["not_reproduced"]

    out = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "explain", "--sensitivity",
         str(ws.cell_json("m", "D"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "| lmms-eval | 0.333 | -0.167 |" in out
    assert "- `vlmevalkit` (answer rule `vlmevalkit`):" in out
    assert "  - storage: JPEG, Pillow's default quality 75 (this cell: JPEG quality 90)" in out
    assert "- `lmms-eval`: the same inputs; only the answer rule differs." in out


def test_sensitivity_of_a_qwen_cell_names_every_reference(tmp_path):
    report = {
        "model": "q",
        "dataset": "V",
        "accuracy": 0.6,
        "accuracy_ci": {"low": 0.55, "high": 0.65},
        "settings": {
            "card": {
                "protocol": "evalcore",
                "family": "qwen2_5_vl",
                "benchmark": "videomme",
                "frame_setting": {"nframe": 64, "fps": None, "model_set": False},
            }
        },
        "rule_sets": {
            "default": "evalcore",
            "headlines": {"evalcore": 0.6, "vlmevalkit": 0.52, "lmms-eval": 0.61},
            "disagreements": 12,
        },
    }
    s = sensitivity(report)
    assert s["answer_rule"]["vlmevalkit"]["beyond_interval"] is True  # 0.08 > 0.05
    assert s["answer_rule"]["lmms-eval"]["beyond_interval"] is False
    needs = s["protocols"]["vlmevalkit"]["needs_inference"]
    assert {"frames", "resolution", "storage", "time input"} <= set(needs)
    assert "1280 x 28 x 28" in needs["resolution"]["theirs"]
    assert "2/24" in needs["time input"]["theirs"]
    assert "2 fps" in s["protocols"]["lmms-eval"]["needs_inference"]["frames"]["theirs"]
    assert "video_metadata" in s["protocols"]["native"]["needs_inference"]["time input"]["theirs"]
