"""The typed record every stage passes around for one benchmark question."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Sample:
    """One question about one video (clip): multiple choice (`options`, `answer` a letter)
    or another form its benchmark defines (`answer` e.g. `yes`/`no`, no options).

    `sample_id` is the TSV `index` as text: unique within a dataset and the key of the
    prediction log. `video_path` is None when the path could not be resolved safely;
    `path_error` then says why, and the sample fails without touching a decoder.

    Which fields change an answer is declared once, in `ANSWER_FIELDS` and
    `LATER_ANSWER_FIELDS`: the answer key hashes them (`answer_inputs`), so a record
    stops counting when one of them changes. A new field that goes into the prompt
    belongs in one of them (a test makes every field choose).
    """

    # In every answer key, in this order, followed by the video's content fingerprint.
    # A field added here changes every answer key: every answer is asked again.
    ANSWER_FIELDS: ClassVar[tuple[str, ...]] = ("question", "options", "start", "end")
    # Prompt inputs added after the first answer keys were written: appended (in this
    # order) only when one of them is set, so the keys of samples that set none stay
    # what they were. A field added here changes the keys of the samples that set any.
    LATER_ANSWER_FIELDS: ClassVar[tuple[str, ...]] = ("subtitles", "prompt_extra")

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

    def answer_inputs(self, video: str) -> list[Any]:
        """What an answer to this sample depends on, as the answer key hashes it (JSON:
        tuples as lists): the `ANSWER_FIELDS`, `video` (its video's fingerprint), then
        the `LATER_ANSWER_FIELDS` when any of them is set."""
        inputs = [getattr(self, name) for name in self.ANSWER_FIELDS] + [video]
        later = [getattr(self, name) for name in self.LATER_ANSWER_FIELDS]
        return inputs + later if any(later) else inputs
