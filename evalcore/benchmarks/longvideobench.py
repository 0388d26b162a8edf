"""`benchmark: longvideobench`: LongVideoBench as VLMEvalKit lays it out, prompts it and
scores it.

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f0; our own code):

- Layout, `vlmeval/dataset/longvideobench.py` `LongVideoBench.prepare_dataset.generate_tsv`:
  `LongVideoBench.tsv` is `lvb_val.json` written as a TSV plus index and video (the
  `video_id`), video_path rewritten to `./videos/<file>`. Columns used here: index, video,
  video_path, question, candidates (a Python list of unlettered options), correct_choice
  (the 0-based index of the right option: `chr(ord("A") + correct_choice)` in `evaluate`),
  duration_group (15, 60, 600, 3600), question_category (S2E, ..., TAA), and for
  subtitles subtitle_path (a JSON file under `<root>/subtitles/`),
  starting_timestamp_for_subtitles and duration. The TSV sits in the Hugging Face cache
  snapshot of `longvideobench/LongVideoBench`, the videos untarred into `videos/` beside it.
- Prompt, `LongVideoBench.build_prompt` (`SYS = ''`: no system turn): the frames, then
  `question + '\\n' + 'A. cand'... + "\\nAnswer with the option's letter from the given
  choices directly."`. With subtitles (`use_subtitle`, the `_subs` datasets)
  `insert_subtitles_into_frames` interleaves each shown cue's `text + '\\n'` between the
  frames by the cue's midpoint. Our user turn has one place for the frames, so the shown
  cues come after all frames, in cue order, before the question. (VLMEvalKit shows no
  subtitles at all to video-native models, `video_llm`; here every model gets them.)
- Subtitle cues, `insert_subtitles_into_frames`: an entry is either
  `{"timestamp": [start, end], "text": ...}` in seconds, where an `end` that is not a
  float (null, or a JSON integer) becomes the clip's `duration`, or
  `{"start": "HH:MM:SS.fff", "end": ..., "line": ...}`; both minus
  `starting_timestamp_for_subtitles` (the `duration` substitute too, as there). Which
  cues are shown: `evalcore.benchmarks.subtitles.cues_covering_frames`.
- Answer rule, `LongVideoBench.evaluate` and `vlmeval/dataset/utils/longvideobench.py`
  `extract_characters_regex`: Video-MME's rule with the capitals A-E (so "Everything"
  reads E); then `can_infer` before any judge, given the real options here (see
  `evalcore.benchmarks.videomme`).
- Report, `utils/longvideobench.py` `get_dimension_rating`: accuracy overall and per
  duration_group, and within each per question_category. Here: the breakdowns
  duration_group and question_category.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.benchmarks.subtitles import Cue, cues_covering_frames
from evalcore.benchmarks.videomme import lettered
from evalcore.dataset import LETTERS, DatasetError, Sample
from evalcore.dataset.tsv import (
    check_root,
    parse_candidates,
    parse_seconds,
    read_rows,
    row_sample,
    strip_option_letters,
)
from evalcore.models import ChatMessage
from evalcore.prompts import chat_messages
from evalcore.scoring.rule_sets import read_letter

if TYPE_CHECKING:
    from evalcore.benchmarks.source import DatasetSource

DURATION_GROUPS = (15, 60, 600, 3600)
COLUMNS = (
    "video",
    "question",
    "candidates",
    "correct_choice",
    "duration_group",
    "question_category",
)
SUBTITLE_COLUMNS = ("subtitle_path", "starting_timestamp_for_subtitles", "duration")
INSTRUCTION = "Answer with the option's letter from the given choices directly."


class LongVideoBench(Benchmark):
    name = "longvideobench"
    template = "longvideobench-v1"
    rule = "longvideobench-regex-v1"
    breakdowns = ("duration_group", "question_category")
    layout = (
        "VLMEvalKit's LongVideoBench.tsv: index, video, video_path (default "
        "videos/<video>.mp4), question, candidates (2-5 options), correct_choice (0-based), "
        "duration_group (15/60/600/3600), question_category; with `subtitles: true` also "
        "subtitle_path (JSON under subtitles/), starting_timestamp_for_subtitles, duration. "
        "Paths resolve under `root` (default: the TSV's folder). VLMEvalKit keeps it in "
        "the Hugging Face cache, not $LMUData: tsv: $HF_HUB_CACHE (default ~/.cache/"
        "huggingface/hub)/datasets--longvideobench--LongVideoBench/snapshots/<revision>/"
        "LongVideoBench.tsv, with videos/ and subtitles/ "
        "beside it."
    )

    def load(self, spec: DatasetSource) -> list[Sample]:
        if spec.root is not None:
            check_root(spec.root)
        root = self.videos_under(spec)
        required = COLUMNS + (SUBTITLE_COLUMNS if spec.subtitles else ())
        samples = []
        for where, sample_id, row in read_rows(spec.tsv, required):
            options = strip_option_letters(parse_candidates(row["candidates"], where))
            if len(options) > 5:
                raise DatasetError(
                    f"{where}: LongVideoBench questions have at most five options (A-E), "
                    f"not {len(options)}"
                )
            _duration_group(row["duration_group"], where)
            samples.append(
                row_sample(
                    spec.dataset_name,
                    sample_id,
                    row,
                    root,
                    row.get("video_path") or f"videos/{row['video']}.mp4",
                    options=options,
                    answer=_choice_letter(row["correct_choice"], len(options), where),
                    category=str(row["question_category"]),
                    subtitles=_subtitles_of(row, root, where) if spec.subtitles else (),
                )
            )
        return samples

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        shown = cues_covering_frames(sample.subtitles, timestamps)
        options = lettered(sample.options)
        prompt = f"{sample.question}\n{options}\n{INSTRUCTION}"
        return chat_messages("".join(f"{text}\n" for text in shown) + prompt)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(
            read_letter(self.name, self.rule_set, prediction, sample.options), self.rule
        )

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        return {
            "duration_group": str(_duration_group(sample.row["duration_group"], sample.sample_id)),
            "question_category": str(sample.row["question_category"]),
        }


def _whole_number(value: str, where: str, column: str) -> int:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise DatasetError(f"{where}: {column} is not a whole number: {value!r}")
    return int(number)


def _choice_letter(value: str, n_options: int, where: str) -> str:
    choice = _whole_number(value, where, "correct_choice")
    if not 0 <= choice < n_options:
        raise DatasetError(
            f"{where}: correct_choice {choice} is not an option index 0-{n_options - 1}"
        )
    return LETTERS[choice]


def _duration_group(value: str, where: str) -> int:
    group = _whole_number(value, where, "duration_group")
    if group not in DURATION_GROUPS:
        raise DatasetError(
            f"{where}: duration_group {value!r} is not one of "
            f"{', '.join(map(str, DURATION_GROUPS))}"
        )
    return group


def _subtitles_of(row: dict, root: Path, where: str) -> tuple[Cue, ...]:
    """The row's cues in clip time (VLMEvalKit opens the file unconditionally: a missing
    one is an error)."""
    offset = parse_seconds(row["starting_timestamp_for_subtitles"], where, "starting_timestamp")
    duration = parse_seconds(row["duration"], where, "duration")
    if offset is None or duration is None:
        raise DatasetError(f"{where}: subtitles need starting_timestamp_for_subtitles and duration")
    base = root.resolve()
    path = (base / "subtitles" / str(row["subtitle_path"])).resolve()
    if not path.is_relative_to(base):
        raise DatasetError(f"{where}: subtitle path {row['subtitle_path']!r} escapes the root")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{where}: subtitles {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: subtitles {path} line {exc.lineno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{where}: subtitles {path}: not UTF-8 text") from exc
    if not isinstance(entries, list):
        raise DatasetError(f"{where}: subtitles {path}: not a JSON list of cues")
    return tuple(
        _cue(e, offset, duration, f"{where}: subtitles {path} cue {i}")
        for i, e in enumerate(entries)
    )


def _cue(entry: object, offset: float, duration: float, where: str) -> Cue:
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: not a JSON object: {entry!r}")
    try:
        if "timestamp" in entry:
            start, end = entry["timestamp"]
            if not isinstance(end, float):  # null, or a JSON integer, as in VLMEvalKit
                end = duration
            return (float(start) - offset, float(end) - offset, str(entry["text"]))
        start, end = (_clock(entry[k]) for k in ("start", "end"))
        return (start - offset, end - offset, str(entry["line"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise DatasetError(f"{where}: malformed cue {entry!r}") from exc


def _clock(stamp: str) -> float:
    """`timestamp_to_seconds`: "HH:MM:SS.fff" as seconds."""
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
