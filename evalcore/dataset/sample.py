"""The typed record every stage passes around for one benchmark question."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Sample:
    """One question about one video (clip): multiple choice (`options`, `answer` a letter)
    or another form its benchmark defines (`answer` e.g. `yes`/`no`, no options).

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
    answer: str  # option letter "A".."Z" for multiple choice; else the benchmark's form
    category: str = ""
    start: float | None = None  # clip bounds in seconds
    end: float | None = None
    path_error: str | None = None
    row: dict = field(default_factory=dict, compare=False, hash=False)  # original TSV row
    # Inputs of the prompt besides question and options (part of the answer key):
    subtitles: tuple[tuple[float, float, str], ...] = ()  # (start s, end s, text) cues
    prompt_extra: str = ""  # row-specific prompt text (e.g. TempCompass: candidate lines)

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]
