from pathlib import Path

import pytest

from evalcore.dataset import DatasetError, load_tsv
from evalcore.dataset.tsv import check_root, tsv_video_path, video_under_root

HEADER = "index\tvideo\tquestion\tanswer\tcandidates\tcategory\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "Bench.tsv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_parses_letters_and_option_text_answers(tmp_path):
    tsv = write(
        tmp_path,
        "0\tv0\tWhat colour?\tB\t['red', 'green']\tcolour\n"
        "1\tv1\tWhich way?\tleft\t['up', 'left', 'down']\tmotion\n",
    )
    samples = load_tsv(tsv)
    assert [s.answer for s in samples] == ["B", "B"]
    assert samples[1].options == ("up", "left", "down")
    assert samples[0].dataset == "Bench"
    assert samples[0].video_path == (tmp_path / "v0.mp4").resolve()
    assert samples[1].category == "motion"


def test_video_path_prefix_and_clip_bounds(tmp_path):
    header = "index\tvideo\tprefix\tquestion\tanswer\tcandidates\tstart\tend\n"
    tsv = write(tmp_path, "7\tclip.mkv\tsub\tQ\tA\t['x', 'y']\t1.5\t4\n", header)
    (s,) = load_tsv(tsv)
    assert s.video_path == (tmp_path / "sub" / "clip.mkv").resolve()
    assert (s.start, s.end) == (1.5, 4.0)
    assert s.sample_id == "7"


def test_path_escaping_root_is_a_per_sample_error(tmp_path):
    header = "index\tvideo\tvideo_path\tquestion\tanswer\tcandidates\n"
    tsv = write(tmp_path, "0\tv\t../../etc/passwd\tQ\tA\t['x', 'y']\n", header)
    (s,) = load_tsv(tsv)
    assert s.video_path is None
    assert "escapes the dataset root" in s.path_error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0\tv\tQ\tA\tnot a list\tc\n", "line 2.*candidates is not a Python list"),
        ("0\tv\tQ\tA\t['only']\tc\n", "line 2.*2-26 options"),
        ("0\tv\tQ\tZ\t['x', 'y']\tc\n", "line 2.*answer 'Z'"),
        (
            "0\tv\tQ\tA\t['x', 'y']\tc\n0\tv\tQ\tA\t['x', 'y']\tc\n",
            "line 3.*duplicate index.*line 2",
        ),
    ],
)
def test_malformed_rows_name_the_row(tmp_path, body, message):
    with pytest.raises(DatasetError, match=message):
        load_tsv(write(tmp_path, body))


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(DatasetError, match="missing column.*candidates"):
        load_tsv(write(tmp_path, "0\tv\tQ\tA\n", "index\tvideo\tquestion\tanswer\n"))


ROW = "0\tv\tQ\tA\t['x', 'y']\tc\n"
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def refused(tsv: Path, **kwargs) -> str:
    """The DatasetError message of loading `tsv`, checked to be one line naming the file."""
    with pytest.raises(DatasetError) as info:
        load_tsv(tsv, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", ": the file is empty"),
        (b"\n\n  \n", ": the file has no header line, only blank lines"),
        (PNG_HEADER, ": not a UTF-8 text file (byte 0x89 at offset 0, line 1)"),
        (
            HEADER.encode() + "0\tv\tQué?\tA\t['x', 'y']\tc\n".encode("latin-1"),
            ": not a UTF-8 text file (byte 0xe9 at offset 54, line 2)",
        ),
        (b"i\x00n\x00d\x00", ": not a text file (NUL byte at offset 1, line 1)"),
        (HEADER.encode(), ": no rows"),
    ],
)
def test_a_file_that_is_not_a_table_is_refused_naming_it(tmp_path, content, problem):
    tsv = tmp_path / "Bench.tsv"
    tsv.write_bytes(content)
    assert refused(tsv) == f"{tsv}{problem}"


def test_a_row_with_a_stray_tab_names_its_line(tmp_path):
    tsv = write(tmp_path, ROW + ROW.replace("0", "1", 1) + "2\tv\tQ\tA\t['x', 'y']\tc\textra\n")
    assert refused(tsv) == f"{tsv} line 4: 7 fields, the header has 6 (a stray tab?)"


def test_a_stray_tab_in_the_first_row_is_refused_not_shifted(tmp_path):
    # pandas alone would take the first column as the index and shift the rest by one
    tsv = write(tmp_path, "0\tv\tQ\tA\t['x', 'y']\tc\t\n")
    assert refused(tsv) == f"{tsv} line 2: 7 fields, the header has 6 (a stray tab?)"


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    quoted = "0\tv\t\"Two\tlines:\nwhich?\"\tA\t['x', 'y']\tc\n"  # tab and newline in quotes
    tsv = write(tmp_path, quoted + "\n" + "1\tv\tQ\tA\t['x', 'y']\tc\tc\n")
    assert refused(tsv) == f"{tsv} line 5: 7 fields, the header has 6 (a stray tab?)"
    tsv.write_text(HEADER + quoted, encoding="utf-8")
    assert load_tsv(tsv)[0].question == "Two\tlines:\nwhich?"


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    tsv = tmp_path / "Bench.tsv"
    tsv.write_text(HEADER + ROW, encoding="utf-8-sig")
    assert [s.sample_id for s in load_tsv(tsv)] == ["0"]


def test_a_short_row_keeps_loading_with_empty_trailing_fields(tmp_path):
    (sample,) = load_tsv(write(tmp_path, "0\tv\tQ\tA\t['x', 'y']\n"))
    assert sample.category == ""


def test_root_must_be_an_existing_folder(tmp_path):
    tsv = write(tmp_path, ROW)
    assert refused(tsv, root=tmp_path / "videos") == (
        f"root folder not found: {tmp_path / 'videos'}"
    )
    assert refused(tsv, root=tsv) == f"root folder not found: {tsv} is a file, not a folder"
    with pytest.raises(DatasetError, match="root folder not found"):
        check_root(tmp_path / "videos")
    check_root(tmp_path)
    assert load_tsv(tsv, root=tmp_path)[0].video_path == (tmp_path / "v.mp4").resolve()


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.tsv"
    assert refused(missing) == f"{missing}: dataset file not found"


# What pandas.read_csv made of each (the parser before `parse_table`, which keeps pandas
# out of the run path): the same columns and cells, or both refuse the file.
PANDAS_CASES = {
    "blank lines": "a\tb\n1\t2\n\n3\t4\n",
    "whitespace-only line": "a\tb\n1\t2\n   \n3\t4\n",
    "line of empty fields": "a\tb\n1\t2\n\t\n3\t4\n",
    "short row": "a\tb\tc\n1\t2\n3\t4\t5\n",
    "repeated names": "a\ta\tb\ta\n1\t2\t3\t4\n",
    "repeat of a used suffix": "a\ta\ta.1\n1\t2\t3\n",
    "empty names": "a\t\tb\t\n1\t2\t3\t\n",
    "tab and newline in quotes": 'a\tb\n"x\ty"\t"two\nlines"\n',
    "quote mid-field": 'a\tb\nab"cd\t"ab"cd\n',
    "doubled quotes": 'a\tb\n"a ""q"" b"\t"[\'x\', ""y""]"\n',
    "CRLF": "a\tb\r\n1\t2\r\n",
    "CR": "a\tb\r1\t2\r",
    "no final newline": "a\tb\n1\t2",
    "NA strings": "a\tb\nNA\tnan\n",
    "spaces kept": "a \t b\n 1 \t 2 \n",
    "blank lines first": "\n\na\tb\n1\t2\n",
    "header only": "a\tb\n",
    "quote never closed": 'a\tb\n"x\t2\n',
}


@pytest.mark.parametrize("text", PANDAS_CASES.values(), ids=PANDAS_CASES.keys())
def test_the_table_reads_as_pandas_read_it(tmp_path, text):
    import io

    import pandas as pd

    from evalcore.dataset.tsv import parse_table

    try:
        frame = pd.read_csv(
            io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, index_col=False
        )
    except pd.errors.ParserError:
        with pytest.raises(DatasetError, match="cannot parse"):
            parse_table(text, tmp_path / "t.tsv")
        return
    assert parse_table(text, tmp_path / "t.tsv") == (
        list(frame.columns),
        frame.to_dict("records"),
    )


# --- The one path resolver (`video_under_root`) and the common layout's path rule -------


@pytest.mark.parametrize(
    "relative",
    [
        "video/star/clip.mp4",
        # MVBench's forms: the name as written, nothing added to a GIF, a WebM or a folder
        "video/ssv2_video/g.gif",
        "video/ssv2_video/w.webm",
        "video/tvqa/frames_fps3_hq/s01e01_seg01_clip_00",
    ],
)
def test_a_video_path_resolves_under_the_root_as_written(tmp_path, relative):
    assert video_under_root(tmp_path, relative) == (tmp_path / relative, None)
    assert video_under_root(tmp_path, Path(relative)) == (tmp_path / relative, None)
    normalized = video_under_root(tmp_path, f"./x/../{relative}")
    assert normalized == (tmp_path / relative, None)


def test_an_absolute_video_path_must_lie_under_the_root(tmp_path):
    inside = tmp_path / "video" / "v.mp4"
    assert video_under_root(tmp_path, str(inside)) == (inside, None)
    assert video_under_root(tmp_path / "video", "/etc/passwd") == (
        None,
        f"video path '/etc/passwd' escapes the dataset root {str(tmp_path / 'video')!r}",
    )


@pytest.mark.parametrize("relative", ["../v.mp4", "video/../../v.mp4", "../root2/v.mp4"])
def test_a_video_path_that_leaves_the_root_is_the_samples_error(tmp_path, relative):
    root = tmp_path / "root"
    assert video_under_root(root, relative) == (
        None,
        f"video path {str(Path(relative))!r} escapes the dataset root {str(root)!r}",
    )


def test_a_relative_root_resolves_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert video_under_root(Path("data"), "v.mp4") == (tmp_path / "data" / "v.mp4", None)
    assert video_under_root(Path("data/../data"), "v.mp4") == (tmp_path / "data" / "v.mp4", None)


def test_a_symlink_inside_the_root_is_followed_wherever_it_points(tmp_path):
    """Hugging Face snapshots link each file to the cache's blob store, outside the
    dataset folder: the link is inside the root, so the path is kept as the link."""
    blob = tmp_path / "hub" / "blobs" / "0a1b2c"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"video bytes")
    snapshot = tmp_path / "hub" / "snapshots" / "rev"
    (snapshot / "video").mkdir(parents=True)
    (snapshot / "video" / "v.mp4").symlink_to(Path("../../../blobs/0a1b2c"))
    path, error = video_under_root(snapshot, "video/v.mp4")
    assert (path, error) == (snapshot / "video" / "v.mp4", None)
    assert path.read_bytes() == b"video bytes"
    # `..` is read lexically: through the link's folder it still leaves the root
    assert video_under_root(snapshot, "video/../../x.mp4")[0] is None


@pytest.mark.parametrize(
    ("row", "overrides", "expected"),
    [
        ({"video": "v", "video_path": "vids/a.mp4", "prefix": "p"}, {}, "vids/a.mp4"),
        ({"video": "v", "video_path": "", "prefix": "p"}, {}, "p/v.mp4"),
        ({"video": "v"}, {}, "v.mp4"),
        ({"video": "c.MKV", "prefix": "p"}, {}, "p/c.MKV"),  # a video suffix, any case
        ({"video": "w.webm"}, {}, "w.webm"),
        ({"video": "g.gif"}, {}, "g.gif.mp4"),  # not a video suffix in this layout
        ({"video": "v", "prefix": "./videos"}, {"video": "v.avi"}, "videos/v.avi"),
        ({"video": "v", "prefix": "p"}, {"prefix": "video"}, "video/v.mp4"),
        ({"video": "v", "video_path": "x/v.mov"}, {"prefix": "video"}, "x/v.mov"),
    ],
)
def test_the_common_layouts_video_path(row, overrides, expected):
    assert tsv_video_path(row, **overrides) == Path(expected)


def test_an_escaping_path_fails_its_sample_alone_as_invalid_path(tmp_path):
    from evalcore.cell import extract_dataset_frames
    from evalcore.config import DatasetSpec
    from evalcore.frames import FrameCache, FrameEntry, FrameFailure, FrameSettings
    from evalcore.frames.index import read_frame_index
    from evalcore.workspace import Workspace
    from tests.doubles.videos import write_video

    write_video(tmp_path / "data" / "v.mp4", n_frames=8)
    header = "index\tvideo\tvideo_path\tquestion\tanswer\tcandidates\n"
    rows = "0\tv\tv.mp4\tQ\tA\t['x', 'y']\n1\tv\t../v.mp4\tQ\tA\t['x', 'y']\n"
    tsv = tmp_path / "data" / "Bench.tsv"
    tsv.write_text(header + rows, encoding="utf-8")
    ws = Workspace(tmp_path / "work", tmp_path / "out")
    summary = extract_dataset_frames(DatasetSpec(tsv=tsv), FrameSettings(nframe=2), ws)
    index = read_frame_index(Path(summary.index_path), FrameCache(ws.frame_cache_dir))
    assert isinstance(index.frames_for("0"), FrameEntry)
    root = str(tmp_path / "data")
    assert index.frames_for("1") == FrameFailure(
        "InvalidPath", f"video path '../v.mp4' escapes the dataset root {root!r}"
    )
