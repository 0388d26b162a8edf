"""The typed record every stage passes around for one benchmark question."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Sample:
    """One multiple-choice question about one video (clip).

    `sample_id` is the TSV `index` as text: unique within a dataset and the key of the
    prediction log. `video_path` is None when the path could not be resolved safely;
    `path_error` then says why, and the sample fails without touching a decoder.
    """

    dataset: str
    sample_id: str
    video: str
    video_path: Path | None
    question: str
    options: tuple[str, ...]
    answer: str  # option letter, "A".."Z"
    category: str = ""
    start: float | None = None  # clip bounds in seconds
    end: float | None = None
    path_error: str | None = None
    row: dict = field(default_factory=dict, compare=False, hash=False)  # original TSV row

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]
