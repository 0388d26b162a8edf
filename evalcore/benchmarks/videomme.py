"""`benchmark: videomme`: Video-MME as VLMEvalKit lays it out, prompts it and scores it.

Facts from VLMEvalKit (open-compass/VLMEvalKit, read at e8e78f0; our own code):

- Layout, `vlmeval/dataset/videomme.py` `VideoMME.prepare_dataset.generate_tsv`:
  `Video-MME.tsv` with columns index, video (the `videoID`), video_path
  (`./video/<videoID>.mp4`), duration (short/medium/long), domain, candidates (a Python
  list whose options carry their letters: `'A. Apples.'`), sub_category, task_type,
  subtitle_path (`./subtitle/<videoID>.srt`), question, answer (a letter). The TSV sits in
  the Hugging Face cache snapshot of `lmms-lab/Video-MME` (`get_cache_path`), with
  `video/` and `subtitle/` unzipped beside it; that folder is the data root.
- Prompt, `VideoMME.build_prompt` with `SYS = ''` (an empty text, no system turn) and
  `FRAMES_TMPL_NOSUB` / `FRAMES_TMPL_SUB`: after the frames, the template, then
  `'Question: {question}\\n{candidates joined by newlines}\\nAnswer: '`. With subtitles
  (`use_subtitle`, the `_subs` datasets of `video_dataset_config.py`) the template lists
  the subtitle lines of the sampled frames (see `evalcore.benchmarks.subtitles`); a
  video without a subtitle file gets that template with an empty list.
- Answer rule, `VideoMME.evaluate` and `vlmeval/dataset/utils/videomme.py`
  `extract_characters_regex`: strip, delete each answer prefix, then the first capital
  A-D anywhere is the answer. Its prefix list lacks two commas, so Python joins
  `'The best option is' 'The correct option is'` and `'Best answer:' 'Best option:'`:
  `Best answer: C` reads as `B` (from "Best"); reproduced. Its ">10 words without A-D"
  test changes nothing (no A-D reads nothing anyway).
- When the regex reads nothing, `extract_option` -> `extract_answer_from_item`
  (`utils/multiple_choice.py`) tries `can_infer` (`vlmeval/utils/matching_util.py`:
  `can_infer_option`, then `can_infer_text`) before any LLM judge; without a judge
  (`exact_matching`) an answer still unread scores 0. `extract_option` takes the choices
  from `A.` lines of the `question` column, which Video-MME's question does not have, so
  in VLMEvalKit that step never matches; here it gets the real options (text after the
  letter, `strip('. \\n')`), so an answer that only names an option's text is read.
  `can_infer`'s `Z` (a refusal) counts as unreadable here.
- Report, `utils/videomme.py` `get_dimension_rating`: accuracy overall and per duration,
  and within each duration (and overall) per domain, sub_category and task_type. Here:
  the four breakdowns duration, domain, sub_category, task_type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.benchmarks.subtitles import WITH_SUBTITLES, Cue, read_srt, subtitle_per_frame
from evalcore.dataset import LETTERS, DatasetError, Sample
from evalcore.dataset.tsv import (
    answer_letter,
    check_root,
    parse_candidates,
    read_rows,
    row_sample,
    strip_option_letters,
)
from evalcore.models import ChatMessage
from evalcore.prompts import chat_messages
from evalcore.scoring.rule_sets import read_letter

if TYPE_CHECKING:
    from evalcore.benchmarks.source import DatasetSource

DURATIONS = ("short", "medium", "long")
COLUMNS = (
    "video",
    "question",
    "answer",
    "candidates",
    "duration",
    "domain",
    "sub_category",
    "task_type",
)

_INSTRUCTION = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
)
WITHOUT_SUBTITLES_TEMPLATE = "These are the frames of a video. " + _INSTRUCTION
WITH_SUBTITLES_TEMPLATE = (
    "These are the frames of a video. This video's subtitles are listed below:\n{}\n" + _INSTRUCTION
)


class VideoMME(Benchmark):
    name = "videomme"
    template = "videomme-v1"
    rule = "videomme-regex-v1"
    breakdowns = ("duration", "domain", "sub_category", "task_type")
    layout = (
        "VLMEvalKit's Video-MME.tsv: index, video, video_path (default video/<video>.mp4), "
        "duration (short/medium/long), domain, sub_category, task_type, question, "
        "candidates (four options, lettered 'A. ...' or not), answer (letter or option "
        "text), subtitle_path (default subtitle/<video>.srt; with `subtitles: true`, a "
        "missing .srt means none). Paths resolve under `root` (default: the TSV's folder). "
        "VLMEvalKit keeps it in the Hugging Face cache, not $LMUData: tsv: "
        "$HF_HUB_CACHE (default ~/.cache/huggingface/hub)/datasets--lmms-lab--Video-MME/"
        "snapshots/<revision>/Video-MME.tsv, with "
        "video/ and subtitle/ beside it."
    )

    def load(self, spec: DatasetSource) -> list[Sample]:
        if spec.root is not None:
            check_root(spec.root)
        root = self.videos_under(spec)
        srt_cache: dict[Path, tuple[Cue, ...]] = {}
        samples = []
        for where, sample_id, row in read_rows(spec.tsv, COLUMNS):
            candidates = parse_candidates(row["candidates"], where)
            if len(candidates) != 4:
                raise DatasetError(
                    f"{where}: Video-MME questions have four options (A-D), not {len(candidates)}"
                )
            options = strip_option_letters(candidates)
            answer = str(row["answer"]).strip()
            if answer in candidates:  # the whole candidate, letter included
                answer = LETTERS[candidates.index(answer)]
            duration = str(row["duration"]).strip()
            if duration not in DURATIONS:
                raise DatasetError(
                    f"{where}: duration {row['duration']!r} is not one of {', '.join(DURATIONS)}"
                )
            video = str(row["video"])
            subtitles: tuple[Cue, ...] = ()
            if spec.subtitles:
                srt = row.get("subtitle_path") or f"subtitle/{video}.srt"
                subtitles = _subtitles_of(srt, root, where, srt_cache)
            samples.append(
                row_sample(
                    spec.dataset_name,
                    sample_id,
                    row,
                    root,
                    row.get("video_path") or f"video/{video}.mp4",
                    options=options,
                    answer=answer_letter(answer, options, where),
                    category=str(row["task_type"]),
                    subtitles=subtitles,
                    prompt_extra=WITH_SUBTITLES if spec.subtitles else "",
                )
            )
        return samples

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        if sample.prompt_extra == WITH_SUBTITLES or sample.subtitles:
            lines = subtitle_per_frame(sample.subtitles, timestamps)
            intro = WITH_SUBTITLES_TEMPLATE.format("\n".join(lines))
        else:
            intro = WITHOUT_SUBTITLES_TEMPLATE
        options = lettered(sample.options)
        return chat_messages(f"{intro}Question: {sample.question}\n{options}\nAnswer: ")

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(
            read_letter(self.name, self.rule_set, prediction, sample.options), self.rule
        )


def _subtitles_of(
    relative: str, root: Path, where: str, cache: dict[Path, tuple[Cue, ...]]
) -> tuple[Cue, ...]:
    """The cues of a row's subtitle file; none when it does not exist (as VLMEvalKit)."""
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise DatasetError(f"{where}: subtitle path {relative!r} escapes the dataset root")
    if path not in cache:
        try:
            cache[path] = read_srt(path) if path.is_file() else ()
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from exc
    return cache[path]


# --- shared with LongVideoBench -----------------------------------------------------------


def lettered(options: Sequence[str]) -> str:
    """The options one a line as "A. text" (options keep no letters of their own)."""
    return "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
