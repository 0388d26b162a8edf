"""The records that count for one cell trial now, as tests read them: the query is
`CellTrials.current_records` (it needs the cell's frame index)."""

from __future__ import annotations

from evalcore.cell import Cell, CellTrials
from evalcore.predictions import PredictionRecord
from evalcore.workspace import Workspace


def cell_records(cell: Cell, ws: Workspace) -> dict[str, PredictionRecord]:
    """Sample id -> the record that counts for it in `cell`'s logs."""
    return CellTrials.of([cell]).current_records(ws)[cell.trial].records
