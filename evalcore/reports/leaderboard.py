"""The leaderboard: every cell under an output directory, as JSON, xlsx and markdown."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from evalcore.atomic import atomic_path, atomic_write_text

LEADERBOARD_FIELDS = (
    "model",
    "dataset",
    "accuracy",
    "accuracy_std",
    "trials",
    "n",
    "failed",
    "unreadable",
    "metric",
    "per_category",
    "evaluated_at",
)


def collect_cells(paths: Iterable[Path]) -> dict[str, dict]:
    """Cell JSONs (`Workspace.cell_jsons()`), by `{model}/{model}_{dataset}`."""
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text(encoding="utf-8")) for p in paths}


def leaderboard_rows(cells: Iterable[dict]) -> list[dict]:
    """Leaderboard rows from cell JSONs, best accuracy first within each dataset."""
    rows = [{k: cell.get(k) for k in LEADERBOARD_FIELDS} for cell in cells]
    rows.sort(key=lambda r: (r["dataset"], -r["accuracy"], r["model"]))
    return rows


def leaderboard_markdown(rows: list[dict]) -> str:
    """One table per dataset, ranked, with per-category accuracy columns, when each cell
    was last evaluated, and (rows from `history.with_deltas`) the change against the
    previous snapshot."""
    if not rows:
        return "# Leaderboard\n\n_No results yet._\n"
    parts = ["# Leaderboard\n"]
    for dataset in sorted({r["dataset"] for r in rows}):
        cells = [r for r in rows if r["dataset"] == dataset]
        cats = sorted({c for r in cells for c in r["per_category"]})
        show_delta = any("delta" in r for r in cells)
        show_unreadable = any(r.get("unreadable") for r in cells)
        metric = next((r.get("metric") for r in cells if r.get("metric")), "accuracy")
        head = ["#", "model", metric, *(["Δ"] if show_delta else []), "n", "failed"]
        head += ["unreadable"] if show_unreadable else []
        head += [*cats, "last evaluated"]
        lines = [f"## {dataset}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rank, r in enumerate(cells, start=1):
            acc = f"{r['accuracy']:.3f}"
            if r["trials"] > 1:
                acc += f" ± {r['accuracy_std']:.3f}"
            delta = [_format_delta(r.get("delta"))] if show_delta else []
            per_cat = [f"{r['per_category'].get(c, float('nan')):.3f}" for c in cats]
            unreadable = [str(r.get("unreadable") or 0)] if show_unreadable else []
            cols = [str(rank), r["model"], acc, *delta, str(r["n"]), str(r["failed"])]
            cols += [*unreadable, *per_cat]
            lines.append("| " + " | ".join([*cols, str(r.get("evaluated_at") or "")]) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _format_delta(delta: float | None) -> str:
    return "new" if delta is None else f"{delta:+.3f}"


def leaderboard_files(output_dir: Path) -> dict[str, Path]:
    """leaderboard.{json,xlsx,md} under `output_dir`, by format."""
    return {fmt: Path(output_dir) / f"leaderboard.{fmt}" for fmt in ("json", "xlsx", "md")}


def write_leaderboard(rows: list[dict], output_dir: Path) -> dict[str, Path]:
    """Write leaderboard.{json,xlsx,md} atomically."""
    paths = leaderboard_files(output_dir)
    atomic_write_text(paths["json"], json.dumps(rows, indent=2))
    flat = [
        {
            **{k: v for k, v in r.items() if k != "per_category"},
            **{f"cat:{c}": a for c, a in r["per_category"].items()},
        }
        for r in rows
    ]
    import pandas as pd  # here, not at the top: only a changed leaderboard is written

    with atomic_path(paths["xlsx"]) as tmp:
        pd.DataFrame(flat).to_excel(tmp, index=False, engine="openpyxl")
    atomic_write_text(paths["md"], leaderboard_markdown(rows))
    return paths
