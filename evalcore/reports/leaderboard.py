"""The leaderboard: every cell under an output directory, as JSON, xlsx and markdown.

A judged cell whose judge scored none of its answers has no score (`accuracy` None):
ranked last, shown as `no score`, with how many answers are unjudged and why."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from evalcore.atomic import atomic_path, atomic_write_text
from evalcore.reports.rule_sets import rules_differ
from evalcore.scoring import describe_unjudged

LEADERBOARD_FIELDS = (
    "model",
    "dataset",
    "accuracy",
    "accuracy_std",
    "trials",
    "n",
    "failed",
    "unreadable",
    "unjudged",
    "unjudged_reasons",
    "metric",
    "per_category",
    "evaluated_at",
)


def collect_cells(paths: Iterable[Path]) -> dict[str, dict]:
    """Cell JSONs (`Workspace.cell_jsons()`), by `{model}/{model}_{dataset}`."""
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text(encoding="utf-8")) for p in paths}


def leaderboard_row(cell: dict) -> dict:
    """One cell JSON as a flat leaderboard row: the fields above, the 95% interval
    (`accuracy_low`/`high`, over `clusters` videos; None in reports older than it), the
    category intervals, and what the answers cost (`evalcore.reports.usage`)."""
    ci = cell.get("accuracy_ci") or {}
    usage = cell.get("usage") or {}
    return {
        **{k: cell.get(k) for k in LEADERBOARD_FIELDS},
        "accuracy_low": ci.get("low"),
        "accuracy_high": ci.get("high"),
        "clusters": ci.get("clusters"),
        "per_category_ci": cell.get("per_category_ci") or {},
        **{k: usage.get(k) for k in USAGE_FIELDS},
        "protocol": ((cell.get("settings") or {}).get("card") or {}).get("protocol", "evalcore"),
        "rule_set": (cell.get("rule_sets") or {}).get("default", "evalcore"),
        "rule_set_headlines": (cell.get("rule_sets") or {}).get("headlines") or {},
        "rules_differ": rules_differ(
            (cell.get("rule_sets") or {}).get("headlines") or {}, ci.get("low"), ci.get("high")
        ),
    }


USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_answers",
    "seconds_per_sample",
    "cost",
    "saved_cost",
    "currency",
)


def leaderboard_rows(cells: Iterable[dict]) -> list[dict]:
    """Leaderboard rows from cell JSONs, best accuracy first within each dataset, cells
    without a score last."""
    rows = [leaderboard_row(cell) for cell in cells]
    rows.sort(
        key=lambda r: (r["dataset"], r["accuracy"] is None, -(r["accuracy"] or 0.0), r["model"])
    )
    return rows


def format_score(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """`0.634 ± 0.021`: the value and half its 95% interval's width (the interval itself,
    asymmetric near 0 or 1, is in the JSON and xlsx); the bare value without one."""
    if value is None or value != value:  # None or NaN: no such category in this cell
        return "-"
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} ± {(high - low) / 2:.3f}"


def format_accuracy(row: dict) -> str:
    """A row's headline with its interval, and the spread over trials when there are
    several (`(sd 0.010)`: the seeds' standard deviation, not an interval); `no score`
    for a cell without one."""
    if row["accuracy"] is None:
        return "no score"
    text = format_score(row["accuracy"], row.get("accuracy_low"), row.get("accuracy_high"))
    if (row.get("trials") or 1) > 1:
        text += f" (sd {row.get('accuracy_std') or 0.0:.3f})"
    return text


def format_unjudged(row: dict) -> str:
    """`48 unjudged: judge failed`; empty when every answer was judged."""
    return describe_unjudged(row.get("unjudged") or 0, row.get("unjudged_reasons") or {})


def leaderboard_markdown(rows: list[dict]) -> str:
    """One table per dataset, ranked, with per-category accuracy columns, when each cell
    was last evaluated, and (rows from `history.with_deltas`) the change against the
    previous snapshot, in bold when a paired test on the same questions finds it
    significant. Scores show `± half` of their 95% interval, clustered by video; a
    judged benchmark's table says how many answers are unjudged and why."""
    if not rows:
        return "# Leaderboard\n\n_No results yet._\n"
    parts = ["# Leaderboard\n"]
    for dataset in sorted({r["dataset"] for r in rows}):
        cells = [r for r in rows if r["dataset"] == dataset]
        cats = sorted({c for r in cells for c in r["per_category"]})
        show_delta = any("delta" in r for r in cells)
        show_unreadable = any(r.get("unreadable") for r in cells)
        show_unjudged = any(r.get("unjudged") for r in cells)
        show_tokens = any(r.get("prompt_tokens") or r.get("cached_answers") for r in cells)
        show_cost = any(r.get("cost") is not None for r in cells)
        show_time = any(r.get("seconds_per_sample") is not None for r in cells)
        metric = next((r.get("metric") for r in cells if r.get("metric")), "accuracy")
        show_protocol = any(r.get("protocol", "evalcore") != "evalcore" for r in cells)
        head = ["#", "model", *(["protocol"] if show_protocol else []), metric]
        head += [*(["Δ"] if show_delta else []), "n", "failed"]
        head += ["unreadable"] if show_unreadable else []
        head += ["unjudged"] if show_unjudged else []
        head += ["tokens in / out"] if show_tokens else []
        head += ["cost (cache saved)"] if show_cost else []
        head += ["s / sample"] if show_time else []
        show_rules = any(r.get("rules_differ") for r in cells)
        head += ["rules"] if show_rules else []
        head += [*cats, "last evaluated"]
        lines = [f"## {dataset}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rank, r in enumerate(cells, start=1):
            delta = [_format_delta(r)] if show_delta else []
            cis = r.get("per_category_ci") or {}
            per_cat = [
                format_score(r["per_category"].get(c, float("nan")), *(cis.get(c) or (None, None)))
                for c in cats
            ]
            protocol = [_format_protocol(r)] if show_protocol else []
            cols = [str(rank), r["model"], *protocol, format_accuracy(r), *delta, str(r["n"])]
            cols += [str(r["failed"])]
            cols += [str(r.get("unreadable") or 0)] if show_unreadable else []
            cols += [format_unjudged(r) or "0"] if show_unjudged else []
            cols += [_format_tokens(r)] if show_tokens else []
            cols += [_format_cost(r)] if show_cost else []
            cols += [_format_seconds(r.get("seconds_per_sample"))] if show_time else []
            cols += [("differ" if r.get("rules_differ") else "")] if show_rules else []
            cols += per_cat
            lines.append("| " + " | ".join([*cols, str(r.get("evaluated_at") or "")]) + " |")
        clusters = sorted({r["clusters"] for r in cells if r.get("clusters")})
        if clusters:
            videos = "/".join(str(c) for c in clusters)
            lines.append(
                f"\n± half the 95% interval: cluster bootstrap over the {videos} videos "
                "(questions about one video are resampled together)."
            )
        if show_protocol:
            lines.append(
                "protocol: whose pipeline the cell reproduces (docs/reproduce.md), and the "
                "answer rule its score is read under."
            )
        if show_rules:
            lines.append(
                "rules: `differ` where the answer rule sets (evalcore, vlmevalkit, lmms-eval) "
                "give headlines further apart than the ±; `evalcore explain --rules` lists "
                "the answers."
            )
        if any(r.get("delta_p") is not None for r in cells):
            lines.append(
                "Δ: change since the previous snapshot; **bold** when significant at 5% "
                "(paired test on the same questions, standard error clustered by video)."
            )
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _format_protocol(row: dict) -> str:
    protocol, rule = row.get("protocol", "evalcore"), row.get("rule_set", "evalcore")
    return protocol if protocol == rule else f"{protocol} (rule {rule})"


def _format_delta(row: dict) -> str:
    delta = row.get("delta")
    if delta is None:  # not in the previous snapshot, or a side without a score
        return "-" if row.get("delta_skipped") else "new"
    text = f"{delta:+.3f}"
    p = row.get("delta_p")
    if p is None:
        return text
    shown = f"p={p:.3f}" if p >= 0.001 else "p<0.001"
    return (f"**{text}**" if row.get("delta_significant") else text) + f" ({shown})"


def _format_tokens(row: dict) -> str:
    text = f"{_thousands(row.get('prompt_tokens'))} / {_thousands(row.get('completion_tokens'))}"
    if row.get("cached_answers"):
        text += f" ({row['cached_answers']} cached)"
    return text


def _thousands(n: int | None) -> str:
    n = n or 0
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def _format_cost(row: dict) -> str:
    if row.get("cost") is None:
        return "-"
    text = f"{row['cost']:.4g} {row.get('currency') or ''}".rstrip()
    if row.get("saved_cost"):
        text += f" ({row['saved_cost']:.4g})"
    return text


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f}" if seconds >= 0.001 else "<0.001"


def leaderboard_files(output_dir: Path) -> dict[str, Path]:
    """leaderboard.{json,xlsx,md} under `output_dir`, by format."""
    return {fmt: Path(output_dir) / f"leaderboard.{fmt}" for fmt in ("json", "xlsx", "md")}


def write_leaderboard(rows: list[dict], output_dir: Path) -> dict[str, Path]:
    """Write leaderboard.{json,xlsx,md} atomically."""
    paths = leaderboard_files(output_dir)
    atomic_write_text(paths["json"], json.dumps(rows, indent=2))
    flat = [
        {
            **{k: v for k, v in r.items() if k not in ("per_category", "per_category_ci")},
            "accuracy": "no score" if r["accuracy"] is None else r["accuracy"],
            "unjudged_reasons": format_unjudged(r),
            **{
                f"cat:{c}{part}": v
                for c, a in r["per_category"].items()
                for part, v in zip(
                    ("", " low", " high"),
                    (a, *((r.get("per_category_ci") or {}).get(c) or (None, None))),
                    strict=True,
                )
            },
        }
        for r in rows
    ]
    import pandas as pd  # here, not at the top: only a changed leaderboard is written

    with atomic_path(paths["xlsx"]) as tmp:
        pd.DataFrame(flat).to_excel(tmp, index=False, engine="openpyxl")
    atomic_write_text(paths["md"], leaderboard_markdown(rows))
    return paths
