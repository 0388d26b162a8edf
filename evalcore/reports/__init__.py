"""Reports: per-cell xlsx/JSON and the leaderboard files."""

from evalcore.reports.cell import cell_stem, write_cell_json, write_cell_xlsx
from evalcore.reports.leaderboard import (
    collect_cells,
    leaderboard_markdown,
    leaderboard_rows,
    write_leaderboard,
)

__all__ = [
    "cell_stem",
    "collect_cells",
    "leaderboard_markdown",
    "leaderboard_rows",
    "write_cell_json",
    "write_cell_xlsx",
    "write_leaderboard",
]
