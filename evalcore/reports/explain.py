"""`evalcore explain`: a cell's reproducibility card, and what differs between two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_card(path: Path) -> dict[str, Any]:
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    card = report.get("settings", {}).get("card")
    if card is None:
        raise ValueError(f"{path}: no reproducibility card (a report from an older version)")
    return {"cell": f"{report.get('model')} x {report.get('dataset')}", **card}


def card_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Setting -> (a's value, b's value) for every setting the two cards disagree on."""
    keys = [k for k in a if k != "cell"] + [k for k in b if k not in a]
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


def explain_markdown(cards: list[dict[str, Any]]) -> str:
    if len(cards) == 1:
        (card,) = cards
        lines = [f"# {card['cell']}", "", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {_show(v)} |" for k, v in card.items() if k != "cell"]
        return "\n".join(lines) + "\n"
    a, b = cards
    diff = card_differences(a, b)
    lines = [f"# {a['cell']} vs {b['cell']}", ""]
    if not diff:
        return "\n".join([*lines, "Every setting on the card is the same."]) + "\n"
    lines += ["| setting | first | second |", "|---|---|---|"]
    lines += [f"| {k} | {_show(x)} | {_show(y)} |" for k, (x, y) in diff.items()]
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
