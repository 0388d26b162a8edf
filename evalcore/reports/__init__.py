"""Reports: per-cell xlsx/JSON and the leaderboard files."""

from evalcore.reports.cell import report_cell, write_cell_json, write_cell_xlsx
from evalcore.reports.leaderboard import (
    collect_cells,
    leaderboard_markdown,
    leaderboard_rows,
    write_leaderboard,
)
from evalcore.reports.usage import CellUsage, cell_usage

__all__ = [
    "CellUsage",
    "cell_usage",
    "collect_cells",
    "leaderboard_markdown",
    "leaderboard_rows",
    "report_cell",
    "write_cell_json",
    "write_cell_xlsx",
    "write_leaderboard",
]
