"""Reports: per-cell xlsx/JSON, the leaderboard files, paired comparisons of cells."""

from evalcore.reports.cell_report import report_cell, write_cell_json, write_cell_xlsx
from evalcore.reports.compare import (
    CompareError,
    Comparison,
    compare_sides,
    comparison_markdown,
    load_side,
    write_comparison_xlsx,
)
from evalcore.reports.leaderboard import (
    collect_cells,
    format_accuracy,
    format_unjudged,
    leaderboard_markdown,
    leaderboard_rows,
    write_leaderboard,
)
from evalcore.reports.samples import SampleOutcome, sample_outcomes
from evalcore.reports.usage import CellUsage, cell_usage

__all__ = [
    "CellUsage",
    "CompareError",
    "Comparison",
    "SampleOutcome",
    "cell_usage",
    "collect_cells",
    "compare_sides",
    "comparison_markdown",
    "format_accuracy",
    "format_unjudged",
    "leaderboard_markdown",
    "leaderboard_rows",
    "load_side",
    "report_cell",
    "sample_outcomes",
    "write_cell_json",
    "write_cell_xlsx",
    "write_comparison_xlsx",
    "write_leaderboard",
]
