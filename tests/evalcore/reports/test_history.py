"""The leaderboard over time: snapshots, deltas, chart, and which cells are current."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from evalcore.benchmarks import load_samples
from evalcore.cell import CellTrials, extract_dataset_frames
from evalcore.config import EvalConfig
from evalcore.frames import FrameSettings
from evalcore.predictions import Journal, PredictionRecord, failed
from evalcore.reports import leaderboard_markdown, report_cell
from evalcore.reports.compare import CompareError, Side, compare_sides
from evalcore.reports.history import (
    HAS_FAILURES,
    NO_RESULT,
    SAMPLES_CHANGED,
    SETTINGS_CHANGED,
    UNJUDGED,
    Snapshot,
    category_figure,
    cells_to_evaluate,
    history_figure,
    list_snapshots,
    publish_with_history,
    with_deltas,
    write_category_chart,
    write_history_chart,
    write_snapshot,
)
from evalcore.reports.samples import SampleOutcome
from evalcore.workspace import Workspace
from tests.doubles.cells import one_cell
from tests.doubles.judged_cells import JUDGE, judged_cell, report_judged

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def row(model: str, dataset: str, accuracy: float, failed: int = 0) -> dict:
    return {
        "model": model,
        "dataset": dataset,
        "accuracy": accuracy,
        "accuracy_std": 0.0,
        "trials": 1,
        "n": 10,
        "failed": failed,
        "per_category": {"count": accuracy},
        "evaluated_at": "2026-11-20T02:00:05Z",
    }


def test_snapshots_are_dated_ordered_and_never_overwritten(tmp_path):
    later = write_snapshot(tmp_path, [row("a", "D", 0.5)], T0 + timedelta(days=1))
    earlier = write_snapshot(tmp_path, [row("a", "D", 0.4)], T0)
    assert later.path != earlier.path and "2026-11-21" in later.path.name
    snaps = list_snapshots(tmp_path)
    assert [s.taken_at for s in snaps] == [T0, T0 + timedelta(days=1)]
    assert snaps[-1].rows[0]["accuracy"] == 0.5


def test_deltas_against_previous_snapshot_new_cells_marked(tmp_path):
    previous = write_snapshot(tmp_path, [row("a", "D", 0.4), row("b", "D", 0.9)], T0)
    rows = with_deltas([row("a", "D", 0.5), row("c", "D", 0.3)], previous)
    by_model = {r["model"]: r for r in rows}
    assert abs(by_model["a"]["delta"] - 0.1) < 1e-9 and by_model["a"]["previous_accuracy"] == 0.4
    assert by_model["c"]["delta"] is None
    text = leaderboard_markdown(rows)
    assert "| Δ |" in text and "+0.100" in text and "| new |" in text
    assert "last evaluated" in text and "2026-11-20T02:00:05Z" in text


def test_publish_with_history_writes_snapshot_deltas_and_chart(tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    publish_with_history(ws, [row("a", "D", 0.4)], snapshot=True, now=T0)
    board, paths = publish_with_history(
        ws, [row("a", "D", 0.6), row("b", "E", 0.2, failed=3)], snapshot=True, now=T0 + timedelta(1)
    )
    assert len(list_snapshots(ws.history_dir)) == 2 and paths["snapshot"].exists()
    saved = json.loads(paths["json"].read_text())
    assert abs(saved[0]["delta"] - 0.2) < 1e-9 and saved[1]["delta"] is None
    sheet = pd.read_excel(paths["xlsx"])
    assert {"delta", "previous_accuracy", "evaluated_at", "failed"} <= set(sheet.columns)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["categories_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Without `snapshot` (an `eval` run) nothing is frozen; deltas use the latest snapshot.
    board, paths = publish_with_history(ws, [row("a", "D", 0.7)], snapshot=False)
    assert len(list_snapshots(ws.history_dir)) == 2 and "snapshot" not in paths
    assert abs(board[0]["delta"] - 0.1) < 1e-9


def test_an_unchanged_leaderboard_is_not_written_again(tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    _, paths = publish_with_history(ws, [row("a", "D", 0.4)], snapshot=False, now=T0)
    files = {k: p.stat().st_ino for k, p in paths.items()}  # every write is a new file

    board, again = publish_with_history(ws, [row("a", "D", 0.4)], snapshot=False)
    assert {k: p.stat().st_ino for k, p in again.items()} == files
    assert board[0]["accuracy"] == 0.4 and board[0]["delta"] is None

    publish_with_history(ws, [row("a", "D", 0.5)], snapshot=False)  # a changed cell
    assert json.loads(paths["json"].read_text())[0]["accuracy"] == 0.5
    assert paths["png"].stat().st_ino != files["png"]

    paths["xlsx"].unlink()  # a missing file is written again
    publish_with_history(ws, [row("a", "D", 0.5)], snapshot=False)
    assert paths["xlsx"].exists()
    publish_with_history(ws, [row("a", "D", 0.5)], snapshot=True)  # a snapshot: new deltas
    assert len(list_snapshots(ws.history_dir)) == 1


def write_tsv(path: Path, n: int) -> Path:
    rows = [
        {
            "index": i,
            "video": f"v{i}",
            "question": "How many shapes?",
            "answer": "A",
            "candidates": "['1', '2', '3', '4']",
            "category": "count",
        }
        for i in range(n)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_staleness_follows_the_answer_keys_sample_by_sample(tmp_path):
    tsv = write_tsv(tmp_path / "D.tsv", 4)
    config, cell, ws, keys = one_cell(tsv, tmp_path)
    samples = load_samples(cell.dataset)
    assert cells_to_evaluate(config, ws) == {"D": {"m": NO_RESULT}}
    with Journal(cell.log_dir(ws), "main") as log:
        for s in samples:
            log.append(PredictionRecord(s.sample_id, "ok", "A", answer_key=keys[s.sample_id]))
    extract_dataset_frames(cell.dataset, cell.frames, ws)  # writes the index scoring reads
    report_cell(CellTrials([cell]), ws)
    assert cells_to_evaluate(config, ws) == {"D": {}}  # current: kept

    # another seed or model setting changes every answer key
    reseeded = config.model_copy(update={"seed": 1})
    assert cells_to_evaluate(reseeded, ws) == {"D": {"m": SETTINGS_CHANGED}}
    # a settings change that cannot change an answer keeps the cell
    faster = config.model_copy(update={"frames": FrameSettings(workers=4, timeout_s=9)})
    assert cells_to_evaluate(faster, ws) == {"D": {}}
    # one edited row: only that sample is stale
    text = tsv.read_text().replace("How many shapes?", "How many circles?", 1)
    tsv.write_text(text)
    assert cells_to_evaluate(config, ws) == {"D": {"m": f"1 of 4 {SAMPLES_CHANGED}"}}
    tsv.write_text(text.replace("How many circles?", "How many shapes?"))
    # a retryable failure makes the cell stale; a permanent one (no video) does not
    with Journal(cell.log_dir(ws), "main") as log:
        log.append(failed("0", "Timeout", "slow", attempts=2, answer_key=keys["0"]))
    assert cells_to_evaluate(config, ws) == {"D": {}}  # the success made earlier still wins
    for path in cell.log_dir(ws).glob("*.jsonl"):
        path.unlink()
    with Journal(cell.log_dir(ws), "main") as log:
        for s in samples[1:]:
            log.append(PredictionRecord(s.sample_id, "ok", "A", answer_key=keys[s.sample_id]))
        log.append(failed("0", "Timeout", "slow", attempts=1, answer_key=keys["0"]))
    assert cells_to_evaluate(config, ws) == {"D": {"m": HAS_FAILURES}}
    with Journal(cell.log_dir(ws), "main") as log:
        log.append(failed("0", "VideoNotFound", "gone", attempts=2, answer_key=keys["0"]))
    assert cells_to_evaluate(config, ws) == {"D": {}}


def outcomes(values: list[float]) -> list[SampleOutcome]:
    """One question per video (`v{i}`), answer A: right when the value is 1."""
    return [SampleOutcome(str(i), f"v{i}", v, "A", "A" if v else "B") for i, v in enumerate(values)]


def test_a_delta_is_marked_significant_only_when_the_paired_test_says_so(tmp_path):
    previous = write_snapshot(
        tmp_path,
        [row("a", "D", 0.5), row("b", "D", 0.5)],
        T0,
        {"a/D": outcomes([1.0] * 20 + [0.0] * 20), "b/D": outcomes([1.0] * 20 + [0.0] * 20)},
    )
    now = {
        "a/D": outcomes([1.0] * 36 + [0.0] * 4),  # 16 wrong -> right, none back: 0.9
        "b/D": outcomes([1.0] * 19 + [0.0] + [1.0] * 2 + [0.0] * 18),  # 2 gained, 1 lost
    }
    rows = with_deltas([row("a", "D", 0.9), row("b", "D", 0.525)], previous, now)
    a, b = rows
    assert a["delta_significant"] and a["delta_p"] < 0.001 and a["delta_gains"] == 16
    assert not b["delta_significant"] and b["delta_p"] > 0.5
    assert (b["delta_gains"], b["delta_losses"]) == (2, 1)
    assert a["delta_low"] > 0 > b["delta_low"]
    text = leaderboard_markdown(rows)
    assert "| **+0.400** (p<0.001) |" in text
    assert f"| +0.025 (p={b['delta_p']:.3f}) |" in text
    assert "**bold** when significant at 5%" in text
    # a snapshot from before outcomes were kept: the change, without a test
    old = write_snapshot(tmp_path / "old", [row("a", "D", 0.5)], T0)
    (plain,) = with_deltas([row("a", "D", 0.9)], old, now)
    assert "delta_p" not in plain and "| +0.400 |" in leaderboard_markdown([plain])


def ci_row(model: str, accuracy: float, half: float, taken: str = "") -> dict:
    return {
        **row(model, "D", accuracy),
        "accuracy_low": accuracy - half,
        "accuracy_high": accuracy + half,
        "per_category": {"count": accuracy, "shape": accuracy / 2},
        "per_category_ci": {"count": [accuracy - half, accuracy + half], "shape": None},
    }


def errorbars(ax) -> list:
    from matplotlib.container import ErrorbarContainer

    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_history_chart_draws_intervals_and_reads_with_one_or_two_points(tmp_path):
    one = [Snapshot(None, T0, [ci_row("a", 0.6, 0.05), ci_row("b", 0.62, 0.04)])]
    two = one + [Snapshot(None, T0 + timedelta(days=1), [ci_row("a", 0.7, 0.05)])]
    for snapshots in (one, two):
        fig = history_figure(snapshots)
        (ax,) = fig.axes
        bars = errorbars(ax)
        assert [c.get_label() for c in bars] == ["a", "b"]
        assert all(c.has_yerr for c in bars)
        # the vertical error bar segments span each point's interval
        (segments,) = bars[0].lines[2]
        spans = sorted(round(float(s[1][1] - s[0][1]), 6) for s in segments.get_segments())
        assert spans == [0.1] * len(snapshots)
        # one tick per snapshot, labelled by date and minute: no seconds, no empty hours
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == [s.taken_at.strftime("%Y-%m-%d\n%H:%M") for s in snapshots]
        assert ax.get_xlim()[0] < 0 and len(snapshots) - 1 < ax.get_xlim()[1]
        # the legend sits right of the plot, never over the data
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1
        low, high = ax.get_ylim()  # zoomed on the intervals, not 0..1
        tops = [r["accuracy_high"] for s in snapshots for r in s.rows]
        assert 0.4 < low < 0.55 and max(tops) < high < 0.9

    path = write_history_chart(two, tmp_path / "chart.png")
    with Image.open(path) as img:
        assert img.size == (900, 320)
        extrema = img.convert("L").getextrema()
        assert extrema[0] < 100 and extrema[1] == 255  # drawn on, not blank
        coloured = sum(1 for r, g, b, *_ in img.getdata() if abs(r - g) > 60 or abs(g - b) > 60)
        assert coloured > 200  # the lines and bars in the models' colours


def test_category_chart_has_a_bar_and_an_interval_per_model_and_category(tmp_path):
    from matplotlib.container import BarContainer

    rows = [ci_row("a", 0.6, 0.05), ci_row("b", 0.8, 0.1)]
    fig = category_figure(rows)
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bars] == ["a", "b"]
    assert [len(c.patches) for c in bars] == [3, 3]  # (overall), count, shape
    assert [t.get_text() for t in ax.get_yticklabels()] == ["(overall)", "count", "shape"]
    widths = [p.get_width() for p in bars[1].patches]
    assert widths == pytest.approx([0.8, 0.8, 0.4])
    # x error bars: overall and count have intervals (width 0.2), shape has none (0)
    (segments,) = bars[1].errorbar.lines[2]
    spans = [round(float(s[1][0] - s[0][0]), 6) for s in segments.get_segments()]
    assert spans == [0.2, 0.2, 0.0]
    path = write_category_chart(rows, tmp_path / "categories.png")
    with Image.open(path) as img:
        assert img.size[0] == 900 and img.size[1] > 200
        assert img.convert("L").getextrema()[0] < 100


def judged(values: list[float | None]) -> list[SampleOutcome]:
    """A judged cell's answers (status ok), one per video; None: unjudged."""
    return [SampleOutcome(str(i), f"v{i}", v, status="ok") for i, v in enumerate(values)]


def no_score_row(model: str, dataset: str, accuracy: float | None = None) -> dict:
    """A judged cell whose judge scored nothing (`accuracy` 0.0: as reports before the
    fix wrote it)."""
    return {**row(model, dataset, 0.0), "accuracy": accuracy, "per_category": {}, "unjudged": 40}


def test_a_cell_without_a_score_is_never_compared_with_0(tmp_path):
    scored_then = [3.0] * 30 + [0.0] * 10  # 2.25: far from 0, so 0 would look significant
    previous = write_snapshot(tmp_path, [row("a", "D", 2.25)], T0, {"a/D": judged(scored_then)})
    now = {"a/D": judged([None] * 40)}  # the judge failed on every answer
    (r,) = with_deltas([no_score_row("a", "D")], previous, now)
    assert r["delta"] is None and r["delta_skipped"] == "no score now"
    assert "delta_p" not in r and "delta_significant" not in r
    assert r["previous_accuracy"] == 2.25
    text = leaderboard_markdown([r])
    assert "| no score | - |" in text and "**" not in text.split("|---|")[-1]

    # a snapshot from before the fix shows the unjudged cell as 0.0; its outcomes hold
    # no judged answer, so the cell scored now is not compared with that 0 either
    old = write_snapshot(
        tmp_path / "old", [no_score_row("a", "D", 0.0)], T0, {"a/D": judged([None] * 40)}
    )
    (r,) = with_deltas([row("a", "D", 2.25)], old, {"a/D": judged(scored_then)})
    assert r["delta"] is None and r["delta_skipped"] == "no score before"
    assert "delta_p" not in r
    assert "| 2.250 | - |" in leaderboard_markdown([r])

    # and both ways a paired comparison refuses instead of testing against 0
    then = Side("a", "D", "then", "then.json", judged(scored_then))
    unjudged = Side("a", "D", "now", "now.json", judged([None] * 40), no_score="40 unjudged")
    with pytest.raises(CompareError, match=r"now.json has no score \(40 unjudged\)"):
        compare_sides(then, unjudged)
    with pytest.raises(CompareError, match="no answer judged"):  # an old report's outcomes
        compare_sides(replace(unjudged, no_score=None), then)


def test_publishing_with_a_cell_without_a_score(tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    first = [ci_row("a", 0.6, 0.05), no_score_row("b", "D")]
    publish_with_history(ws, first, snapshot=True, now=T0)
    board, paths = publish_with_history(
        ws, [ci_row("a", 0.7, 0.05), no_score_row("b", "D")], snapshot=True, now=T0 + timedelta(1)
    )
    by_model = {r["model"]: r for r in board}
    assert by_model["b"]["delta"] is None and by_model["b"]["delta_skipped"] == "no score now"
    assert by_model["a"]["delta"] == pytest.approx(0.1)
    # the charts draw the scored cells and leave the other out
    (ax,) = history_figure(list_snapshots(ws.history_dir)).axes
    assert [c.get_label() for c in errorbars(ax)] == ["a"]
    (ax,) = category_figure(board).axes
    assert [c.get_label() for c in ax.containers if c.get_label() in ("a", "b")] == ["a"]
    assert paths["png"].exists() and paths["categories_png"].exists()


def test_the_nightly_judges_again_a_cell_with_unjudged_answers(tmp_path):
    cell, ws = judged_cell(tmp_path, {"0": 3.0, "1": None})  # q1 failed, q2-q7 unjudged
    report_judged(cell, ws)
    config = EvalConfig(
        datasets=[cell.dataset],
        models=[cell.model],
        judge=JUDGE,
        output_dir=ws.output_dir,
        work_dir=ws.work_dir,
    )
    assert cells_to_evaluate(config, ws) == {"MMBench-Video": {"m": f"7 {UNJUDGED}"}}
    # without a judge there is nothing to retry: the cell is current, its answers unjudged
    unjudged = config.model_copy(update={"judge": None})
    assert cells_to_evaluate(unjudged, ws) == {"MMBench-Video": {}}


def test_a_cell_whose_protocol_changed_its_answer_rule_is_compared_under_the_new_rule(
    tmp_path,
):
    """Snapshots keep each cell's headline under every rule set: after a switch to
    `protocol: vlmevalkit` the delta compares like with like, or says why it cannot."""
    from evalcore.reports.history import with_deltas, write_snapshot

    base = {"model": "m", "dataset": "D", "n": 10, "failed": 0}
    then = {**base, "accuracy": 0.70, "rule_set": "evalcore",
            "rule_set_headlines": {"evalcore": 0.70, "vlmevalkit": 0.60}}  # fmt: skip
    previous = write_snapshot(tmp_path, [then], datetime(2026, 12, 1, tzinfo=UTC))
    now = {**base, "accuracy": 0.65, "rule_set": "vlmevalkit",
           "rule_set_headlines": {"evalcore": 0.72, "vlmevalkit": 0.65}}  # fmt: skip
    (row,) = with_deltas([now], previous)
    assert row["previous_accuracy"] == 0.60 and row["delta"] == pytest.approx(0.05)
    assert row["delta_rule"] == "previous re-read under vlmevalkit"
    older = write_snapshot(tmp_path / "old", [{**base, "accuracy": 0.70}])  # before rule sets
    (row,) = with_deltas([now], older)
    assert row["delta"] is None
    assert row["delta_skipped"] == "answer rule changed (evalcore -> vlmevalkit)"
