"""Load VLMEvalKit's video TSV layout into `Sample`s, rejecting malformed rows up front."""

from __future__ import annotations

import ast
import csv
import io
import math
import os
import re
from pathlib import Path

from evalcore.dataset.sample import LETTERS, Sample

REQUIRED_COLUMNS = ("index", "video", "question", "answer", "candidates")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")


class DatasetError(ValueError):
    """The TSV cannot be evaluated; the message names the file and the row."""


def check_root(root: Path) -> None:
    """Raise `DatasetError` unless `root` is an existing folder (videos resolve under it)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"root folder not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"root folder not found: {root} is a file, not a folder")


def load_tsv(tsv: Path, name: str | None = None, root: Path | None = None) -> list[Sample]:
    """Parse every row or raise `DatasetError` before any work starts.

    Video paths resolve under `root` (default: the TSV's folder): `video_path` if given,
    else `prefix/video`, else `video` (with `.mp4` added when it has no suffix). A path
    that escapes the root is not an error for the dataset: the sample carries
    `path_error` and fails alone.

    Every `DatasetError` message is one line naming the file and, where known, the line:
    an empty or non-text file, a row with more fields than the header and a header
    without rows are reported here rather than as a parser traceback.
    """
    tsv = Path(tsv)
    rows = read_rows(tsv, REQUIRED_COLUMNS)
    if root is not None:
        check_root(root)
    root = Path(root) if root is not None else tsv.parent
    name = name or tsv.stem
    return [tsv_row_sample(name, sample_id, row, where, root) for where, sample_id, row in rows]


def tsv_row_sample(name: str, sample_id: str, row: dict, where: str, root: Path) -> Sample:
    """One row of the layout `load_tsv` reads (the `generic` benchmark's), or
    `DatasetError` naming `where`."""
    options = _parse_candidates(row["candidates"], where)
    answer = _answer_letter(row["answer"], options, where)
    return row_sample(
        name,
        sample_id,
        row,
        root,
        tsv_video_path(row),
        options=options,
        answer=answer,
        category=str(row.get("category") or row.get("task_type") or ""),
        start=_seconds(row.get("start"), where, "start"),
        end=_seconds(row.get("end"), where, "end"),
    )


def _read_text(tsv: Path) -> str:
    """The file as text, or `DatasetError` for an unreadable, empty or binary file."""
    try:
        data = tsv.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{tsv}: cannot read: {exc.strerror or exc}") from exc
    if not data:
        raise DatasetError(f"{tsv}: the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{tsv}: not a UTF-8 text file "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start}, line {line})"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:  # valid UTF-8, yet binary (or UTF-16 without a byte order mark)
        offset = len(text[:nul].encode("utf-8"))
        line = text.count("\n", 0, nul) + 1
        raise DatasetError(f"{tsv}: not a text file (NUL byte at offset {offset}, line {line})")
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark, as Excel writes
    if not text.strip():
        raise DatasetError(f"{tsv}: the file has no header line, only blank lines")
    return text


def parse_table(text: str, tsv: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of a tab-separated `text`, every cell a string.

    Read the way `pandas.read_csv(sep="\\t", dtype=str, keep_default_na=False,
    index_col=False)` reads it (the parser this replaced, kept out of the run path: pandas
    takes a quarter of a second to import): quotes follow the csv defaults (a tab or
    newline inside quotes is part of the field, `""` is a quote), blank and
    whitespace-only lines are skipped, a short row gets empty trailing fields, an empty
    header name becomes `Unnamed: {i}` and a repeated one `name.1`, `name.2`. A row with
    more fields than the header is refused naming its line (pandas would raise for most
    such rows, and for the first row would silently shift every column by one), and so
    is a quote left open at the end of the file.
    """
    csv.field_size_limit(2**31 - 1)  # pandas has no limit on a field's size
    try:
        records = _records(text, strict=True)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise DatasetError(
                f"{tsv}: cannot parse as a tab-separated table: a quote is never closed"
            ) from None
        records = _records(text, strict=False)  # a quote mid-field is kept, as pandas does
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    for line, record in records:
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank or whitespace-only line
        if header is None:
            header = _column_names(record)
            continue
        if len(record) > len(header):
            raise DatasetError(
                f"{tsv} line {line}: {len(record)} fields, the header has {len(header)} "
                "(a stray tab?)"
            )
        record += [""] * (len(header) - len(record))
        rows.append(dict(zip(header, record, strict=True)))
    if header is None:
        raise DatasetError(f"{tsv}: the file has no header line, only blank lines")
    return header, rows


def _records(text: str, strict: bool) -> list[tuple[int, list[str]]]:
    """(first line, fields) of every record; a quoted field may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=strict)
    records, line = [], 1
    for record in reader:
        records.append((line, record))
        line = reader.line_num + 1
    return records


def _column_names(header: list[str]) -> list[str]:
    """pandas' names: `Unnamed: {i}` for an empty one; a repeated one gets the first free
    `.1`, `.2`, ... (one the header does not use itself)."""
    given = [name or f"Unnamed: {i}" for i, name in enumerate(header)]
    names, counts = list(given), {}
    for i, name in enumerate(given):
        count = counts.get(name, 0)
        while count > 0:
            counts[given[i]] = count + 1
            name = f"{given[i]}.{count}"
            count = count + 1 if name in given else counts.get(name, 0)
        names[i] = name
        counts[name] = count + 1
    return names


def _parse_candidates(text: str, where: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise DatasetError(f"{where}: candidates is not a Python list literal: {text!r}") from exc
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= len(LETTERS):
        raise DatasetError(f"{where}: candidates must be a list of 2-26 options: {text!r}")
    return tuple(str(v) for v in value)


def _answer_letter(answer: str, options: tuple[str, ...], where: str) -> str:
    """Accept the option letter or the option's text, as real datasets use both."""
    text = answer.strip()
    letters = LETTERS[: len(options)]
    if len(text) == 1 and text.upper() in letters:
        return text.upper()
    for i, opt in enumerate(options):
        if text.lower() == opt.strip().lower():
            return letters[i]
    raise DatasetError(f"{where}: answer {answer!r} is neither a letter in {letters} nor an option")


def _seconds(value: str | None, where: str, column: str) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        seconds = float(value)
    except ValueError as exc:
        raise DatasetError(f"{where}: {column} is not a number: {value!r}") from exc
    if not math.isfinite(seconds) or seconds < 0:
        raise DatasetError(f"{where}: {column} must be a finite number >= 0: {value!r}")
    return seconds


# --- For benchmark adapters that read their own columns (evalcore.benchmarks) ----------


def read_rows(tsv: Path, required: tuple[str, ...]) -> list[tuple[str, str, dict]]:
    """Every row of `tsv` as (where, index, row), `where` naming the file and line for a
    `DatasetError`, after the checks of the file (exists, UTF-8 text, field counts), of
    `index` (present, non-empty, unique) and of the `required` columns; at least one
    row. Cells are strings. Every layout's loader starts here."""
    tsv = Path(tsv)
    if not tsv.is_file():
        raise DatasetError(f"{tsv}: dataset file not found")
    columns, table = parse_table(_read_text(tsv), tsv)
    missing = [c for c in dict.fromkeys(("index", *required)) if c not in columns]
    if missing:
        raise DatasetError(f"{tsv}: missing column(s) {', '.join(missing)}")
    rows: list[tuple[str, str, dict]] = []
    seen: dict[str, int] = {}
    for row_no, row in enumerate(table, start=2):  # header is line 1
        where = f"{tsv} line {row_no} (index {row['index']!r})"
        sample_id = str(row["index"]).strip()
        if not sample_id:
            raise DatasetError(f"{where}: empty index")
        if sample_id in seen:
            raise DatasetError(f"{where}: duplicate index, first seen at line {seen[sample_id]}")
        seen[sample_id] = row_no
        rows.append((where, sample_id, row))
    if not rows:
        raise DatasetError(f"{tsv}: no rows")
    return rows


def row_sample(
    dataset: str,
    sample_id: str,
    row: dict,
    root: Path,
    video_at: str | Path,
    *,
    options: tuple[str, ...],
    answer: str,
    category: str,
    start: float | None = None,
    end: float | None = None,
    subtitles: tuple[tuple[float, float, str], ...] = (),
    prompt_extra: str = "",
) -> Sample:
    """The one place a row becomes a `Sample`, for `load_tsv` and every adapter: `video`
    and `question` as the row has them, the row kept whole, the video at `video_at`
    under `root` (see `video_under_root`: a path that leaves the root becomes the
    sample's `path_error`); the other fields as the layout reads them."""
    video_path, path_error = video_under_root(root, video_at)
    return Sample(
        dataset=dataset,
        sample_id=sample_id,
        video=str(row["video"]),
        video_path=video_path,
        question=str(row["question"]),
        options=options,
        answer=answer,
        category=category,
        start=start,
        end=end,
        path_error=path_error,
        row=row,
        subtitles=subtitles,
        prompt_extra=prompt_extra,
    )


def video_under_root(root: Path, relative: str | Path) -> tuple[Path | None, str | None]:
    """Where a video (a file, or a folder of frames) is: (`root/relative`, None), or
    (None, why) when that leaves the root, which fails the sample alone (InvalidPath,
    before any decoder) rather than the dataset. An absolute `relative` stands for
    itself and must lie under the root too. Nothing is added to the name.

    Lexical, not resolved: a symlink inside the root stays allowed (Hugging Face
    snapshots link every file into the cache's blob store, outside the dataset folder);
    `..` cannot leave it."""
    relative = Path(relative)
    base = Path(os.path.abspath(root))
    path = Path(os.path.normpath(base / relative))
    if not path.is_relative_to(base):
        return None, f"video path {str(relative)!r} escapes the dataset root {str(base)!r}"
    return path, None


def tsv_video_path(row: dict, video: str | None = None, prefix: str | None = None) -> Path:
    """A row's video relative to the root, in VLMEvalKit's common layout: `video_path`
    if given, else `prefix/video`, with `.mp4` added when the name has no video suffix.
    `video` and `prefix` stand in for the row's columns of those names."""
    if row.get("video_path"):
        return Path(row["video_path"])
    if prefix is None:
        prefix = row.get("prefix") or ""
    relative = Path(prefix) / (str(row["video"]) if video is None else video)
    if relative.suffix.lower() not in VIDEO_SUFFIXES:
        relative = relative.with_name(relative.name + ".mp4")
    return relative


# `candidates` as options, exactly as `load_tsv` reads them.
parse_candidates = _parse_candidates


# The `answer` column as an option letter, and a clip bound column as seconds (None when
# empty), exactly as `load_tsv` reads them.
answer_letter = _answer_letter
parse_seconds = _seconds

_OWN_LETTER = re.compile(r"\s*\(?([A-Z])[.)]\s+")


def strip_option_letters(options: tuple[str, ...]) -> tuple[str, ...]:
    """The options without their letters when every one starts with its own ("A. red",
    "B) blue", "(C) green", in order), so a prompt that letters them never shows
    "A. A. red"; otherwise unchanged (one unlettered option means none are)."""
    stripped = []
    for letter, option in zip(LETTERS, options, strict=False):
        m = _OWN_LETTER.match(option)
        if m is None or m.group(1) != letter:
            return options
        stripped.append(option[m.end() :])
    return tuple(stripped)
