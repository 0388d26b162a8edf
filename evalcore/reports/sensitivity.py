"""How far each protocol choice moves a cell's score (`evalcore explain --sensitivity`).

What can be computed from the stored answers is computed: the headline under every
answer rule set (`reports.rule_sets`), against the interval. What would need new
inference (frames, resolution, storage, time input, prompt) is named, with the setting
each reference protocol would use for this cell's family and benchmark against the
cell's own (`evalcore.protocols`): a re-run under that protocol measures it."""

from __future__ import annotations

from typing import Any

from evalcore.protocols import PROTOCOLS, FrameCount, ProtocolError, resolve
from evalcore.protocols.resolution import CHOICES


def sensitivity(report: dict[str, Any]) -> dict[str, Any]:
    """`answer_rule`: rule set -> headline and its change from the cell's own; `protocols`:
    protocol -> the choices whose setting differs from this cell's (each `theirs`,
    `ours`), what that protocol leaves unreproduced, or why it cannot run the cell."""
    card = (report.get("settings") or {}).get("card") or {}
    own_protocol = card.get("protocol", "evalcore")
    family, benchmark = card.get("family", ""), card.get("benchmark", "")
    setting = card.get("frame_setting") or {}
    count = FrameCount(setting.get("nframe"), setting.get("fps"), bool(setting.get("model_set")))
    own = resolve(own_protocol, family, benchmark, count)
    table = report.get("rule_sets") or {}
    headlines = table.get("headlines") or {}
    own_rule = table.get("default", own.rule_set)
    base = headlines.get(own_rule, report.get("accuracy"))
    ci = report.get("accuracy_ci") or {}
    half = (ci["high"] - ci["low"]) / 2 if ci.get("high") is not None else None
    answer_rule = {
        name: {
            "headline": value,
            "change": None if base is None else value - base,
            "beyond_interval": None if base is None or half is None else abs(value - base) > half,
        }
        for name, value in headlines.items()
    }
    protocols: dict[str, Any] = {}
    for name in PROTOCOLS:
        if name == own_protocol:
            continue
        try:
            theirs = resolve(name, family, benchmark, count)
        except ProtocolError as exc:
            protocols[name] = {"cannot_run": str(exc)}
            continue
        differs = {
            choice: {"theirs": theirs.reference.get(choice), "ours": own.reference.get(choice)}
            for choice in CHOICES
            if choice != "answer rule" and theirs.reference.get(choice) != own.reference.get(choice)
        }
        protocols[name] = {
            "rule_set": theirs.rule_set,
            "headline_under_its_rule": headlines.get(theirs.rule_set),
            "needs_inference": differs,
            "not_reproduced": list(theirs.not_reproduced),
        }
    return {
        "protocol": own_protocol,
        "family": family,
        "benchmark": benchmark,
        "rule_set": own_rule,
        "headline": base,
        "half_interval": half,
        "answer_rule": answer_rule,
        "disagreements": table.get("disagreements"),
        "protocols": protocols,
    }


def sensitivity_markdown(report: dict[str, Any]) -> str:
    s = sensitivity(report)
    name = f"{report.get('model', '?')} x {report.get('dataset', '?')}"
    lines = [
        f"# Sensitivity: {name}\n",
        f"Protocol `{s['protocol']}` (family `{s['family'] or 'unknown'}`, benchmark "
        f"`{s['benchmark']}`), headline under rule set `{s['rule_set']}`: "
        + (f"{s['headline']:.3f}" if s["headline"] is not None else "no score")
        + (f" ± {s['half_interval']:.3f}" if s["half_interval"] is not None else "")
        + ".\n",
        "## Computed from the stored answers (no inference)\n",
    ]
    if s["answer_rule"]:
        lines += ["| answer rule | headline | change | beyond ± |", "|---|---|---|---|"]
        for rule, row in s["answer_rule"].items():
            change = "-" if row["change"] is None else f"{row['change']:+.3f}"
            beyond = {None: "-", True: "yes", False: "no"}[row["beyond_interval"]]
            lines.append(f"| {rule} | {row['headline']:.3f} | {change} | {beyond} |")
        lines.append(f"\n{s['disagreements'] or 0} answers are read differently by the sets.\n")
    else:
        lines.append("This benchmark has no letter rule (judged): no rule set to compare.\n")
    lines.append("## Needs new inference (re-run the cell under that protocol)\n")
    for protocol, row in s["protocols"].items():
        if "cannot_run" in row:
            lines.append(f"- `{protocol}`: cannot run this cell: {row['cannot_run']}")
            continue
        if not row["needs_inference"]:
            lines.append(f"- `{protocol}`: the same inputs; only the answer rule differs.")
            continue
        lines.append(f"- `{protocol}` (answer rule `{row['rule_set']}`):")
        for choice, pair in row["needs_inference"].items():
            lines.append(f"  - {choice}: {pair['theirs']} (this cell: {pair['ours']})")
        for note in row["not_reproduced"]:
            lines.append(f"  - not reproduced: {note}")
    return "\n".join(lines) + "\n"


def protocols_table(family: str, benchmark: str, count: FrameCount) -> str:
    """Every protocol's setting of each choice for `family` on `benchmark`, as a markdown
    table (docs/reproduce.md is made of these; a test keeps it in step)."""
    rows = []
    columns = []
    for name in PROTOCOLS:
        try:
            columns.append((name, resolve(name, family, benchmark, count)))
        except ProtocolError as exc:
            columns.append((name, str(exc)))
    rows.append("| choice | " + " | ".join(f"`{name}`" for name, _ in columns) + " |")
    rows.append("|---" * (len(columns) + 1) + "|")
    for choice in CHOICES:
        cells = []
        for _, res in columns:
            text = res if isinstance(res, str) else res.reference.get(choice, "")
            if choice == "answer rule" and not isinstance(res, str):
                text = res.rule_set
            cells.append(text.replace("|", "\\|"))
        rows.append(f"| {choice} | " + " | ".join(cells) + " |")
    notes = sorted(
        {note for _, res in columns if not isinstance(res, str) for note in res.not_reproduced}
    )
    return "\n".join(rows) + "".join(f"\n\nNot reproduced: {note}" for note in notes) + "\n"
