"""Per-sample outcomes in cell reports, `evalcore compare`, and the run summary's flips:
two models' answers written by hand, so every flip and number is known."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from evalcore.benchmarks import load_samples
from evalcore.cell import CellTrials, cells_of, extract_dataset_frames
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec, Price
from evalcore.frames import FrameCache
from evalcore.frames.index import video_fingerprints
from evalcore.predictions import Journal, PredictionRecord
from evalcore.reports import (
    CompareError,
    compare_sides,
    comparison_markdown,
    load_side,
    report_cell,
    write_comparison_xlsx,
)
from evalcore.reports.history import publish_leaderboard, write_snapshot
from evalcore.reports.run_summary import changes_markdown
from evalcore.reports.samples import SampleOutcome
from evalcore.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
# 6 questions about 3 videos (2 each), every answer "A"
QUESTIONS = ["How many shapes?", "What colour?"] * 3
VIDEOS = ["v0", "v0", "v1", "v1", "v2", "v2"]
A_SAYS = ["A", "A", "B", "A", "B", "A"]  # right on 0, 1, 3, 5
B_SAYS = ["A", "B", "A", "A", "B", "A"]  # right on 0, 2, 3, 5: 1 right -> wrong, 2 wrong -> right
PRICE = Price(input_per_million=2.0, output_per_million=10.0)


def write_tsv(path: Path) -> Path:
    rows = [
        {
            "index": i,
            "video": VIDEOS[i],
            "question": QUESTIONS[i],
            "answer": "A",
            "candidates": "['1', '2', '3', '4']",
            "category": ["count", "colour"][i % 2],
        }
        for i in range(len(VIDEOS))
    ]
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def two_models(tmp_path):
    """Config, workspace and a function that writes a model's answers and reports it."""
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=write_tsv(tmp_path / "D.tsv"))],
        models=[
            ModelSpec(name="a", kind="random", price=PRICE),
            ModelSpec(name="b", kind="random"),
        ],
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
    )
    ws = Workspace(config.work_dir, config.output_dir)
    cells = {c.model.name: c for c in cells_of(config)}
    extract_dataset_frames(cells["a"].dataset, cells["a"].frames, ws)
    samples = load_samples(cells["a"].dataset)
    videos = video_fingerprints(samples, FrameCache(ws.frame_cache_dir))

    def answer(model: str, says: list[str], cached: int = 0) -> dict:
        cell = cells[model]
        for log in cell.log_dir(ws).glob("*.jsonl"):
            log.unlink()
        keys = cell.answer_keys(samples, videos)
        with Journal(cell.log_dir(ws), "main") as log:
            for i, (s, text) in enumerate(zip(samples, says, strict=True)):
                from_cache = i >= len(samples) - cached
                log.append(
                    PredictionRecord(
                        s.sample_id,
                        "ok",
                        f"{text}. because",
                        answer_key=keys[s.sample_id],
                        seconds=0.5,
                        prompt_tokens=100,
                        completion_tokens=2,
                        from_cache=from_cache,
                    )
                )
        return report_cell(CellTrials([cell]), ws)

    return config, ws, answer


def test_report_carries_intervals_outcomes_and_cost(two_models):
    config, ws, answer = two_models
    summary = answer("a", A_SAYS, cached=2)
    report = json.loads(ws.cell_json("a", "D").read_text())
    assert report["accuracy"] == pytest.approx(4 / 6)
    ci = report["accuracy_ci"]
    assert (ci["clusters"], ci["n"], ci["level"]) == (3, 6, 0.95)
    assert 0 <= ci["low"] < 4 / 6 < ci["high"] <= 1
    assert (summary["accuracy_low"], summary["accuracy_high"]) == (ci["low"], ci["high"])
    # every "What colour?" question is answered right: a zero-width interval at 1.0
    assert report["breakdowns_ci"]["category"]["colour"] == [1.0, 1.0]
    assert report["per_category_ci"]["colour"] == [1.0, 1.0]
    assert [s["value"] for s in report["samples"]] == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert [s["video"] for s in report["samples"]] == VIDEOS
    assert report["samples"][2]["extracted"] == "B"
    assert report["samples"][2]["prediction"] == "B. because"
    # 4 answers made (100 + 2 tokens each), 2 from the response cache
    usage = report["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (400, 8)
    assert (usage["cached_answers"], usage["cached_prompt_tokens"]) == (2, 200)
    assert usage["cost"] == pytest.approx((400 * 2.0 + 8 * 10.0) / 1e6)
    assert usage["saved_cost"] == pytest.approx((200 * 2.0 + 4 * 10.0) / 1e6)
    assert usage["seconds_per_sample"] == pytest.approx(0.5) and usage["currency"] == "USD"

    sheets = pd.read_excel(ws.cell_xlsx("a", "D"), sheet_name=None)
    assert {"predictions", "breakdowns", "summary"} <= set(sheets)
    fields = dict(zip(sheets["summary"]["field"], sheets["summary"]["value"], strict=True))
    assert float(fields["accuracy 95% CI low"]) == pytest.approx(ci["low"])
    assert float(fields["cost"]) == pytest.approx(usage["cost"])
    assert {"ci_low", "ci_high"} <= set(sheets["breakdowns"].columns)

    answer("b", B_SAYS)
    board, paths = publish_leaderboard(ws)
    text = paths["md"].read_text()
    half = (ci["high"] - ci["low"]) / 2
    assert f"0.667 ± {half:.3f}" in text and "1.000 ± 0.000" in text  # a's colour column
    assert "tokens in / out" in text and "400 / 8 (2 cached)" in text
    assert "cluster bootstrap over the 3 videos" in text
    results = json.loads((ws.output_dir / "results.json").read_text())
    assert all("samples" not in cell for cell in results.values())  # metrics only
    row = next(r for r in board if r["model"] == "a")
    assert row["cost"] == pytest.approx(usage["cost"]) and row["clusters"] == 3


def test_compare_two_models_lists_the_known_flips(two_models, tmp_path):
    _, ws, answer = two_models
    answer("a", A_SAYS)
    answer("b", B_SAYS)
    a, b = load_side(ws.cell_json("a", "D")), load_side(ws.cell_json("b", "D"))
    comparison = compare_sides(a, b)
    assert [f.a.sample_id for f in comparison.gains] == ["2"]  # wrong -> right
    assert [f.a.sample_id for f in comparison.losses] == ["1"]  # right -> wrong
    t = comparison.test
    assert (t.n, t.clusters, t.discordant, t.discordant_clusters) == (6, 3, 2, 2)
    # d = (0, -1, 1, 0, 0, 0): mean 0; video sums -1, 1, 0: SE sqrt(3/2 x 2) / 6
    assert t.difference == 0.0 and t.p_value == 1.0 and not t.significant
    assert t.se == pytest.approx(3**0.5 / 6)

    text = comparison_markdown(comparison)
    assert "## wrong → right (1)" in text and "## right → wrong (1)" in text
    assert "| 1 | v0 | What colour? | A | A | A. because | B | B. because |" in text
    assert "p = 1.000: not significant at 5%" in text

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli.main",
            "compare",
            str(ws.cell_json("a", "D")),
            str(ws.cell_json("b", "D")),
            "--xlsx",
            str(tmp_path / "cmp.xlsx"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    assert "| 2 | v1 | How many shapes? | A | B | B. because | A | A. because |" in out.stdout
    flips = pd.read_excel(tmp_path / "cmp.xlsx", sheet_name="flips")
    assert list(zip(flips["direction"], flips["sample"], strict=True)) == [
        ("wrong -> right", 2),
        ("right -> wrong", 1),
    ]
    summary = pd.read_excel(tmp_path / "cmp.xlsx", sheet_name="summary")
    assert dict(zip(summary["field"], summary["value"], strict=True))["p-value"] == 1


def test_compare_refuses_what_it_cannot_pair(two_models, tmp_path):
    _, ws, answer = two_models
    answer("a", A_SAYS)
    other = json.loads(ws.cell_json("a", "D").read_text())
    (tmp_path / "e.json").write_text(json.dumps({**other, "dataset": "E"}))
    old = {k: v for k, v in other.items() if k != "samples"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(CompareError, match="needs the same questions"):
        compare_sides(load_side(ws.cell_json("a", "D")), load_side(tmp_path / "e.json"))
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", "compare", str(tmp_path / "old.json"), "x.json"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 2 and "no per-sample outcomes" in out.stderr


def outcomes(values: list[float]) -> list[SampleOutcome]:
    return [
        SampleOutcome(str(i), f"v{i}", v, "A", "A" if v else "B", "x", "ok")
        for i, v in enumerate(values)
    ]


def test_compare_one_cell_at_two_snapshots(tmp_path):
    before = write_snapshot(
        tmp_path,
        [],
        T0,
        {"m/D": outcomes([0.0] * 30), "n/D": outcomes([1.0] * 30)},
    )
    after = write_snapshot(
        tmp_path,
        [],
        T0 + timedelta(days=1),
        {"m/D": outcomes([1.0] * 20 + [0.0] * 10), "n/D": outcomes([1.0] * 30)},
    )
    # n/D did not change: both snapshots point at one stored file
    assert before.samples["n/D"] == after.samples["n/D"]
    assert len(list((tmp_path / "samples").iterdir())) == 3
    with pytest.raises(CompareError, match="several cells"):
        load_side(before.path)
    c = compare_sides(load_side(before.path, "m/D"), load_side(after.path, "m/D"))
    assert len(c.gains) == 20 and not c.losses and c.test.significant
    assert c.test.difference == pytest.approx(20 / 30)


def test_run_summary_lists_flips_of_cells_that_changed(two_models):
    config, ws, answer = two_models
    answer("a", A_SAYS)
    answer("b", A_SAYS)
    assert changes_markdown(config) == ""  # no snapshot yet: nothing to compare with
    publish_leaderboard(ws, snapshot=True)
    assert changes_markdown(config).startswith("No question changed")
    answer("b", B_SAYS)  # b changes; a does not
    text = changes_markdown(config)
    assert "### b x D" in text and "### a x D" not in text
    assert "wrong → right (1):" in text and "right → wrong (1):" in text
    assert "| 2 | v1 | How many shapes? | A | B | B. because | A | A. because |" in text
    # the leaderboard's delta for b carries its paired test; a's is exactly 0, p = 1
    board, _ = publish_leaderboard(ws)
    rows = {r["model"]: r for r in board}
    assert rows["b"]["delta"] == 0.0 and rows["b"]["delta_p"] == 1.0
    assert (rows["b"]["delta_gains"], rows["b"]["delta_losses"]) == (1, 1)
    assert rows["a"]["delta_significant"] is False


def test_comparison_xlsx_without_flips(tmp_path):
    side = load_side_of(tmp_path, [1.0, 0.0, 1.0])
    c = compare_sides(side, side)
    path = write_comparison_xlsx(c, tmp_path / "same.xlsx")
    assert pd.read_excel(path, sheet_name="flips").empty
    assert "None." in comparison_markdown(c)


def load_side_of(tmp_path: Path, values: list[float]):
    path = tmp_path / "m_D.json"
    samples = [o.__dict__ for o in outcomes(values)]
    path.write_text(json.dumps({"model": "m", "dataset": "D", "samples": samples}))
    return load_side(path)
