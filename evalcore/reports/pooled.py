"""The pooled table of a benchmark whose VLMEvalKit report pools several files
(`Benchmark.pool`: TempCompass pools its multi-choice, captioning and yes/no files).

Here each file is a dataset and a cell of its own, so each of a model's cells of the
pool carries the same table (`pooled`: name, the files pooled, VLMEvalKit's rows) in its
JSON and as the xlsx sheet `pooled`, beside its per-file breakdowns. The table is built
from the cell being reported and the other cell reports of the model in the output
folder whose benchmark is of the same pool (their per-sample outcomes), and is kept
out of each report's digest: a change in one file rewrites the table in the others'
reports, and only the table (their results, and when they were made, are unchanged).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from evalcore.atomic import atomic_path, atomic_write_text
from evalcore.benchmarks import Benchmark, get_benchmark
from evalcore.reports.samples import SampleOutcome, outcomes_from_json
from evalcore.workspace import Workspace

SHEET = "pooled"
COLUMNS = ["dim.task_type", "success", "overall", "acc"]


def pooled_table(
    benchmark: Benchmark,
    dataset: str,
    outcomes: Sequence[SampleOutcome],
    others: Sequence[tuple[Path, dict]],
) -> dict:
    """The pool's table over `dataset` (its `outcomes` as just scored) and the `others`
    (`pool_reports` but this dataset's); `note` says why there are no rows when the
    files cannot be pooled."""
    files = {dataset: _answers(outcomes)}
    for _, report in others:
        if "samples" in report:
            files[report["dataset"]] = _answers(outcomes_from_json(report["samples"]))
    try:
        order, rows = benchmark.pooled_rating(files)
    except ValueError as exc:
        return {"name": benchmark.pool, "files": sorted(files), "rows": [], "note": str(exc)}
    return {"name": benchmark.pool, "files": order, "rows": rows}


def pool_reports(
    ws: Workspace, model: str, pool: str, but: str | None = None
) -> list[tuple[Path, dict]]:
    """The model's cell reports (path, JSON) whose benchmark pools into `pool`, but the
    report of dataset `but`."""
    found = []
    for path in ws.cell_jsons():
        if path.parent.name != model or path == ws.cell_json(model, but or ""):
            continue
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            name = report["settings"]["card"]["benchmark"]
            if get_benchmark(name).pool == pool:
                found.append((path, report))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable, or from before reports named their benchmark
    return found


def refresh_pool(reports: Sequence[tuple[Path, dict]], table: dict) -> list[Path]:
    """Write `table` into each of `reports` (`pool_reports`) that holds another (JSON
    field and xlsx sheet); returns the JSONs rewritten."""
    written = []
    for path, report in reports:
        if report.get("pooled") != table:
            write_pooled(path, path.with_suffix(".xlsx"), report, table)
            written.append(path)
    return written


def write_pooled(json_path: Path, xlsx_path: Path, report: dict, table: dict) -> None:
    """Replace a cell report's pooled table, nothing else: its xlsx sheet (the other
    sheets copied as they are) and its JSON field."""
    if xlsx_path.exists():
        import pandas as pd  # only when a table changed

        with atomic_path(xlsx_path) as tmp:
            shutil.copyfile(xlsx_path, tmp)
            with pd.ExcelWriter(tmp, engine="openpyxl", mode="a", if_sheet_exists="replace") as w:
                pooled_frame(table).to_excel(w, sheet_name=SHEET, index=False)
    atomic_write_text(json_path, json.dumps({**report, "pooled": table}, indent=2, sort_keys=True))


def pooled_frame(table: dict):
    """The `pooled` sheet: VLMEvalKit's columns, the files pooled (or why none) below."""
    import pandas as pd

    rows = [*table["rows"], {"dim.task_type": f"files pooled: {', '.join(table['files'])}"}]
    if table.get("note"):
        rows.append({"dim.task_type": table["note"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def _answers(outcomes: Sequence[SampleOutcome]):
    return [(o.breakdown, o.value) for o in outcomes]
