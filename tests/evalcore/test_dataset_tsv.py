from pathlib import Path

import pytest

from evalcore.dataset import DatasetError, load_tsv

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
