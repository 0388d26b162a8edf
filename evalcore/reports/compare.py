"""`evalcore compare A B`: two sets of answers to the same questions, paired.

A and B are each a cell report (`outputs/{model}/{model}_{dataset}.json`: two models on
one dataset, or a saved copy of a cell's report) or a leaderboard snapshot
(`outputs/history/leaderboard-*.json`: one cell at two dates; `cell` names which when
the snapshot holds several). Both carry per-sample outcomes (`samples`), so a
comparison reads no log, config or video. Prediction logs are not accepted: which
records count depends on the config that made them, and the report already resolved it.

The comparison is paired on the questions both answered (`evalcore.stats.paired`: the
difference B - A with its interval and p-value, standard error clustered by video) and
lists every question that flipped, with both answers. A side without a score (a judged
cell whose judge scored none of its answers) is compared with nothing, never as 0.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalcore.atomic import atomic_path
from evalcore.reports.cell_report import cell_text
from evalcore.reports.samples import SampleOutcome, has_score, interval_of, outcomes_from_json
from evalcore.scoring import describe_unjudged
from evalcore.stats import PairedDifference, paired_difference

QUESTION_WORDS = 12  # questions and answers in the markdown are cut at this many words


class CompareError(ValueError):
    """A or B cannot be read or cannot be paired; the message says why."""


@dataclass(frozen=True)
class Side:
    """One set of answers: a cell as a report or a snapshot saw it."""

    model: str
    dataset: str
    when: str  # evaluated_at of a report, taken_at of a snapshot
    source: str  # the file it was read from
    outcomes: list[SampleOutcome]
    metric: str = "accuracy"
    no_score: str | None = None  # why the cell has no score (its report's), None: it has one

    @property
    def label(self) -> str:
        return f"{self.model} x {self.dataset} ({self.when})"


@dataclass(frozen=True)
class Flip:
    """A question whose value differs between A and B."""

    a: SampleOutcome
    b: SampleOutcome

    @property
    def gain(self) -> float:
        return (self.b.value or 0.0) - (self.a.value or 0.0)


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    test: PairedDifference  # B - A over the paired questions
    gains: list[Flip]  # B higher than A: wrong -> right
    losses: list[Flip]  # B lower than A: right -> wrong
    only_a: int  # questions only A has a value for (added rows, unjudged answers)
    only_b: int


def compare_sides(a: Side, b: Side) -> Comparison:
    """Pair A and B on the questions both have a value for, A's order; neither may be
    without a score."""
    if a.dataset != b.dataset:
        raise CompareError(
            f"A is on {a.dataset}, B on {b.dataset}: a paired comparison needs the same questions"
        )
    for side in (a, b):
        why = side.no_score or (None if has_score(side.outcomes) else "no answer judged")
        if why is not None:
            raise CompareError(f"{side.source} has no score ({why}): nothing to compare")
    theirs = {o.sample_id: o for o in b.outcomes if o.value is not None}
    pairs = [
        (o, theirs[o.sample_id])
        for o in a.outcomes
        if o.value is not None and o.sample_id in theirs
    ]
    if not pairs:
        raise CompareError(f"{a.source} and {b.source} share no answered question")
    test = paired_difference(
        [x.value for x, _ in pairs], [y.value for _, y in pairs], [x.video for x, _ in pairs]
    )
    flips = [Flip(x, y) for x, y in pairs if abs((y.value or 0.0) - (x.value or 0.0)) > 1e-12]
    paired = {x.sample_id for x, _ in pairs}
    return Comparison(
        a=a,
        b=b,
        test=test,
        gains=[f for f in flips if f.gain > 0],
        losses=[f for f in flips if f.gain < 0],
        only_a=sum(o.value is not None and o.sample_id not in paired for o in a.outcomes),
        only_b=sum(o.sample_id not in paired for o in theirs.values()),
    )


def load_side(path: Path, cell: str | None = None) -> Side:
    """A cell report, or a snapshot with `cell` (`model/dataset`; optional when it holds
    one cell with per-sample outcomes)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompareError(f"{path}: {exc}") from None
    if not isinstance(payload, dict):
        raise CompareError(f"{path}: neither a cell report nor a leaderboard snapshot")
    if "taken_at" in payload and "rows" in payload:
        return _snapshot_side(path, payload, cell)
    if "samples" not in payload:
        raise CompareError(
            f"{path}: no per-sample outcomes (a report written before they were kept: "
            "evaluate the cell again, which re-scores it from its logs without asking the model)"
        )
    return Side(
        model=payload["model"],
        dataset=payload["dataset"],
        when=str(payload.get("evaluated_at") or ""),
        source=str(path),
        outcomes=outcomes_from_json(payload["samples"]),
        metric=payload.get("metric") or "accuracy",
        no_score=no_score_reason(payload),
    )


def no_score_reason(report: dict) -> str | None:
    """Why a cell report or leaderboard row has no score (`48 unjudged: judge failed`),
    or None when it has one."""
    if "accuracy" not in report or report["accuracy"] is not None:
        return None
    count = report.get("unjudged") or 0
    return describe_unjudged(count, report.get("unjudged_reasons") or {}) or "no score"


def _snapshot_side(path: Path, payload: dict, cell: str | None) -> Side:
    stored = payload.get("samples") or {}
    if cell is None:
        if len(stored) != 1:
            names = ", ".join(sorted(stored)) or "none with per-sample outcomes"
            raise CompareError(f"{path}: a snapshot of several cells; name one of: {names}")
        (cell,) = stored
    if cell not in stored:
        raise CompareError(f"{path}: no per-sample outcomes of cell {cell!r} in this snapshot")
    model, dataset = cell.split("/", 1)
    row = next((r for r in payload["rows"] if r["model"] == model and r["dataset"] == dataset), {})
    return Side(
        model=model,
        dataset=dataset,
        when=str(payload["taken_at"]),
        source=f"{path} ({cell})",
        outcomes=read_outcome_file(path.parent / stored[cell]),
        metric=row.get("metric") or "accuracy",
        no_score=no_score_reason(row),
    )


def read_outcome_file(path: Path) -> list[SampleOutcome]:
    """Per-sample outcomes a snapshot stored (`history.store_outcomes`)."""
    return outcomes_from_json(json.loads(gzip.decompress(Path(path).read_bytes())))


# -- output -------------------------------------------------------------------------------
def _score(side: Side) -> str:
    ci = interval_of(side.outcomes)
    if ci.low is None or ci.high is None:
        return f"{ci.mean:.3f}"
    return f"{ci.mean:.3f} ± {(ci.high - ci.low) / 2:.3f} ({ci.low:.3f} to {ci.high:.3f})"


def _p(p: float) -> str:
    return f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"


def verdict(c: Comparison) -> str:
    """One sentence: the difference, its interval and p-value, and what it rests on."""
    t = c.test
    judged = "significant" if t.significant else "not significant"
    return (
        f"Difference B − A: {t.difference:+.3f} (95% CI {t.low:+.3f} to {t.high:+.3f}), "
        f"{_p(t.p_value)}: {judged} at 5%. Paired on {t.n} questions about {t.clusters} "
        f"videos (standard error clustered by video); {t.discordant} questions changed, "
        f"on {t.discordant_clusters} videos."
    )


def _cell(text: str | None, words: int | None = None) -> str:
    if text is None:
        return ""
    text = " ".join(str(text).split())
    if words is not None and len(text.split()) > words:
        text = " ".join(text.split()[:words]) + " …"
    return text.replace("|", "\\|")


def flips_table(flips: Sequence[Flip], limit: int | None = None) -> list[str]:
    """Markdown rows of flipped questions (at most `limit`, with a line for the rest)."""
    lines = [
        "| sample | video | question | answer | A read | A said | B read | B said |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shown = flips if limit is None else flips[:limit]
    for f in shown:
        cols = [
            f.a.sample_id,
            f.a.video,
            _cell(f.a.question, QUESTION_WORDS),
            f.a.answer,
            _cell(f.a.extracted) or "-",
            _cell(f.a.prediction, QUESTION_WORDS) or f"({f.a.status})",
            _cell(f.b.extracted) or "-",
            _cell(f.b.prediction, QUESTION_WORDS) or f"({f.b.status})",
        ]
        lines.append("| " + " | ".join(cols) + " |")
    if len(flips) > len(shown):
        lines.append(f"\n… and {len(flips) - len(shown)} more.")
    return lines


def comparison_markdown(c: Comparison, limit: int | None = None) -> str:
    """The whole comparison: both sides, the verdict, the flips both ways."""
    lines = [
        f"# {c.a.label} vs {c.b.label}",
        "",
        "| | A | B |",
        "|---|---|---|",
        f"| cell | {c.a.model} x {c.a.dataset} | {c.b.model} x {c.b.dataset} |",
        f"| {c.a.metric} (95% CI) | {_score(c.a)} | {_score(c.b)} |",
        f"| from | {c.a.source} | {c.b.source} |",
        "",
        verdict(c),
    ]
    if c.only_a or c.only_b:
        lines.append(f"Not paired: {c.only_a} questions only A has a value for, {c.only_b} only B.")
    for title, flips in (("wrong → right", c.gains), ("right → wrong", c.losses)):
        lines += ["", f"## {title} ({len(flips)})", ""]
        lines += flips_table(flips, limit) if flips else ["None."]
    return "\n".join(lines) + "\n"


def write_comparison_xlsx(c: Comparison, path: Path) -> Path:
    """Sheets `summary` (both sides, the test) and `flips` (every flipped question)."""
    t = c.test
    summary = [
        ("A", c.a.label),
        ("A source", c.a.source),
        ("B", c.b.label),
        ("B source", c.b.source),
        (f"A {c.a.metric}", interval_of(c.a.outcomes).mean),
        (f"B {c.b.metric}", interval_of(c.b.outcomes).mean),
        ("difference B - A", t.difference),
        ("95% CI low", t.low),
        ("95% CI high", t.high),
        ("standard error (clustered by video)", t.se),
        ("p-value", t.p_value),
        ("significant at 5%", t.significant),
        ("paired questions", t.n),
        ("videos", t.clusters),
        ("questions changed", t.discordant),
        ("wrong -> right", len(c.gains)),
        ("right -> wrong", len(c.losses)),
        ("only in A", c.only_a),
        ("only in B", c.only_b),
    ]
    rows = [
        {
            "direction": direction,
            "sample": f.a.sample_id,
            "video": f.a.video,
            "question": f.a.question,
            "answer": f.a.answer,
            "A value": f.a.value,
            "A extracted": f.a.extracted,
            "A prediction": f.a.prediction,
            "A status": f.a.status,
            "B value": f.b.value,
            "B extracted": f.b.extracted,
            "B prediction": f.b.prediction,
            "B status": f.b.status,
        }
        for direction, flips in (("wrong -> right", c.gains), ("right -> wrong", c.losses))
        for f in flips
    ]
    import pandas as pd  # only when an xlsx is written

    with atomic_path(Path(path)) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as writer:
        frame = pd.DataFrame([{"field": k, "value": v} for k, v in summary])
        frame.map(cell_text).to_excel(writer, sheet_name="summary", index=False)
        columns = list(rows[0]) if rows else ["direction", "sample", "video", "question"]
        flips = pd.DataFrame(rows, columns=columns).map(cell_text)
        flips.to_excel(writer, sheet_name="flips", index=False)
    return Path(path)


def default_xlsx_name(c: Comparison) -> str:
    """`compare_{A}_vs_{B}_{dataset}.xlsx`, with a snapshot's date when both sides are
    one model."""

    def tag(side: Side) -> str:
        when = re.sub(r"[^0-9T]", "", side.when)[:15] if c.a.model == c.b.model else ""
        return side.model + (f"@{when}" if when else "")

    return f"compare_{tag(c.a)}_vs_{tag(c.b)}_{c.a.dataset}.xlsx"
