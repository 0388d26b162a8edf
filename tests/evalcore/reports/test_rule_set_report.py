"""A letter cell's report carries its headline under each answer rule set and the
answers they read apart; `explain --rules` lists exactly those; the leaderboard flags it."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from evalcore.reports import collect_cells, leaderboard_markdown, leaderboard_rows
from tests.doubles.cells import reported_cell


def test_report_has_each_rule_sets_headline_and_explain_lists_the_disagreements(tmp_path):
    _, ws, result = reported_cell(tmp_path)

    report = json.loads(ws.cell_json("m", "D").read_text())
    rules = report["rule_sets"]
    assert rules["headlines"] == {"evalcore": 3 / 6, "vlmevalkit": 3 / 6, "lmms-eval": 2 / 6}
    assert rules["headlines"]["evalcore"] == result["accuracy"] == report["accuracy"]
    assert rules["disagreements"] == 4
    assert [d["sample_id"] for d in rules["disagreeing"]] == ["1", "2", "3", "5"]
    assert rules["disagreeing"][0] == {
        "trial": 0,
        "sample_id": "1",
        "answer": "Both B and C",
        "letters": {"evalcore": None, "vlmevalkit": None, "lmms-eval": "C"},
        "reference": "B",
    }
    sheets = pd.read_excel(ws.cell_xlsx("m", "D"), sheet_name=None)
    assert list(sheets["rule sets"]["sample_id"].astype(str)) == ["1", "2", "3", "5"]
    summary = dict(zip(sheets["summary"]["field"], sheets["summary"]["value"], strict=True))
    assert float(summary["accuracy (lmms-eval rules)"]) == 2 / 6
    assert int(summary["answers the rule sets read apart"]) == 4

    out = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "explain", "--rules", str(ws.cell_json("m", "D"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    listed = [line for line in out.splitlines() if line.startswith("| 0 |")]
    assert [line.split(" | ")[1] for line in listed] == ["1", "2", "3", "5"]
    assert "| 0 | 1 | Both B and C | - | - | C | B |" in out
    assert "| lmms-eval | 0.333 |" in out and "4 answers read differently." in out

    (row,) = leaderboard_rows(collect_cells(ws.cell_jsons()).values())
    spread = 3 / 6 - 2 / 6
    assert row["rules_differ"] == (spread > (row["accuracy_high"] - row["accuracy_low"]) / 2)
    assert ("| rules |" in leaderboard_markdown([row])) == row["rules_differ"]


def test_leaderboard_flags_a_cell_whose_rule_sets_differ_by_more_than_its_interval():
    headlines = {"evalcore": 0.626, "vlmevalkit": 0.555, "lmms-eval": 0.640}
    narrow = {"accuracy_ci": {"low": 0.58, "high": 0.67}}  # ± 0.045 < spread 0.085
    wide = {"accuracy_ci": {"low": 0.50, "high": 0.75}}  # ± 0.125 > spread
    cells = [
        {"model": m, "dataset": "D", "accuracy": 0.626, "n": 422, "failed": 0,
         "per_category": {}, "rule_sets": {"headlines": headlines}, **ci}
        for m, ci in (("narrow", narrow), ("wide", wide))
    ]  # fmt: skip
    rows = leaderboard_rows(cells)
    assert {r["model"]: r["rules_differ"] for r in rows} == {"narrow": True, "wide": False}
    table = leaderboard_markdown(rows)
    assert "| rules |" in table and table.count("| differ |") == 1
    judged = {**cells[0], "rule_sets": None}  # no letter rule: never flagged
    assert leaderboard_rows([judged])[0]["rules_differ"] is False
