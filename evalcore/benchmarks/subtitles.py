"""Subtitles of Video-MME and LongVideoBench: `.srt` files read into cues, and the two
benchmarks' rules for which cues the prompt shows, given the sampled frames' times.

A cue is `(start s, end s, text)`, as `Sample.subtitles` keeps it (so every cue is part
of the answer key). Which of them a prompt shows depends on the frames sampled, so the
selection runs when the prompt is built, not at load.

Facts from VLMEvalKit (read there, not copied):
- `vlmeval/dataset/videomme.py` `VideoMME.build_prompt`: the `.srt` is read with pysubs2;
  for each sampled frame (its time `pysubs2.make_time(fps, frames=index)`, whole
  milliseconds) the first cue with `start < time < end` gives one line (its `\\N` line
  breaks as spaces); a frame inside no cue gives none; two frames inside the same cue
  give its line twice; blank lines are dropped. -> `subtitle_per_frame`. (Tags such as
  `<i>` are kept as written; pysubs2 would turn them into `{\\i1}`, which VLMEvalKit shows.)
- `vlmeval/dataset/longvideobench.py` `insert_subtitles_into_frames`: a cue shorter
  than 1 s is widened to 1 s around its midpoint; it is shown (once, in cue order) when
  some frame time lies strictly inside it. -> `cues_covering_frames`
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from evalcore.dataset import DatasetError

Cue = tuple[float, float, str]

# `prompt_extra` of a Video-MME sample evaluated with subtitles: VLMEvalKit then uses its
# subtitle template even for a video without a subtitle file (with an empty list), so the
# mode is part of the answer key even when there are no cues.
WITH_SUBTITLES = "with subtitles"

_TIME = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?$")
_LOOKS_TIMED = re.compile(r"^\s*\d+:\d")


def read_srt(path: Path) -> tuple[Cue, ...]:
    """The cues of an `.srt` file, or `DatasetError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 subtitle file (offset {exc.start})") from None
    return parse_srt(text, str(path))


def parse_srt(text: str, source: str = "<srt>") -> tuple[Cue, ...]:
    """Cues of SRT `text`: a timing line `HH:MM:SS,mmm --> HH:MM:SS,mmm`, then the text
    lines (joined by spaces) up to the next cue's number and timing line. `source` names
    the file in errors: a malformed timing line, an end before its start, or text before
    the first timing line."""
    lines = text.removeprefix("\ufeff").splitlines()
    timings: list[tuple[int, float, float]] = []  # (line index, start, end)
    for i, line in enumerate(lines):
        if "-->" not in line or not _LOOKS_TIMED.match(line):
            continue  # text (an arrow in dialogue is not a timing line)
        m = _TIMING.match(line)
        if m is None:
            raise DatasetError(f"{source} line {i + 1}: not a cue timing line: {line.strip()!r}")
        start, end = _seconds(m.groups()[:4]), _seconds(m.groups()[4:])
        if end < start:
            raise DatasetError(f"{source} line {i + 1}: the cue ends before it starts")
        timings.append((i, start, end))
    first = timings[0][0] if timings else len(lines)
    for i, line in enumerate(lines[:first]):
        if line.strip() and not line.strip().isdigit():
            raise DatasetError(f"{source} line {i + 1}: text before the first cue timing line")
    cues: list[Cue] = []
    for n, (i, start, end) in enumerate(timings):
        stop = timings[n + 1][0] if n + 1 < len(timings) else len(lines)
        body = [s.strip() for s in lines[i + 1 : stop]]
        while body and not body[-1]:
            body.pop()
        if n + 1 < len(timings) and body and body[-1].isdigit():
            body.pop()  # the next cue's number
        cues.append((start, end, " ".join(s for s in body if s)))
    return tuple(cues)


def _seconds(groups: Sequence[str]) -> float:
    h, m, s, frac = groups
    ms = int(frac.ljust(3, "0"))  # a decimal fraction: ",5" is 500 ms
    return (int(h) * 3600 + int(m) * 60 + int(s)) + ms / 1000


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def subtitle_per_frame(cues: Iterable[Cue], timestamps: Iterable[float]) -> list[str]:
    """Video-MME: per frame, the text of the first cue strictly around its time."""
    spans = [(_ms(start), _ms(end), text) for start, end, text in cues]
    lines = []
    for t in timestamps:
        now = _ms(t)
        text = next((text for start, end, text in spans if start < now < end), "")
        if text.strip():
            lines.append(text)
    return lines


def cues_covering_frames(cues: Iterable[Cue], timestamps: Sequence[float]) -> list[str]:
    """LongVideoBench: the texts of the cues (widened to at least 1 s) around some frame."""
    shown = []
    for start, end, text in cues:
        if end - start < 1:
            middle = (start + end) / 2
            start, end = middle - 0.5, middle + 0.5
        if any(start < t < end for t in timestamps):
            shown.append(text)
    return shown
