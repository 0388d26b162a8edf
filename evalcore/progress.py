"""Terminal progress bars, silent when output is not a terminal (logs, CI)."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int, desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False)
