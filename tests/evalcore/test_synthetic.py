import ast

import av
import pandas as pd

from evalcore.dataset import load_tsv
from evalcore.dataset.synthetic import CATEGORIES, generate_benchmark


def test_layout_determinism_and_idempotence(tmp_path):
    a = generate_benchmark(tmp_path / "a", n_videos=4, seed=3, min_seconds=2, max_seconds=4)
    b = generate_benchmark(tmp_path / "b", n_videos=4, seed=3, min_seconds=2, max_seconds=4)
    c = generate_benchmark(tmp_path / "c", n_videos=4, seed=4, min_seconds=2, max_seconds=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    for video in sorted((a.parent / "videos").glob("*.mp4")):
        assert video.read_bytes() == (b.parent / "videos" / video.name).read_bytes()

    table = pd.read_csv(a, sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns[:5]) == ["index", "video", "video_path", "question", "candidates"]
    assert len(table) == 16 and set(table["category"]) <= set(CATEGORIES)
    assert {"count", "order", "motion"} <= set(table["category"])
    for row in table.itertuples():
        options = ast.literal_eval(row.candidates)
        assert len(options) == 4
        assert row.answer in "ABCD" or row.answer in options  # both forms occur
    assert not table["answer"].isin(list("ABCD")).all()

    samples = load_tsv(a)  # the loader accepts what the generator writes
    assert all(s.video_path.exists() for s in samples)
    with av.open(str(samples[0].video_path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert 2.0 <= float(stream.duration * stream.time_base) <= 4.2

    before = {p: p.stat().st_mtime_ns for p in a.parent.rglob("*") if p.is_file()}
    assert generate_benchmark(tmp_path / "a", n_videos=4, seed=3, min_seconds=2, max_seconds=4) == a
    assert before == {p: p.stat().st_mtime_ns for p in a.parent.rglob("*") if p.is_file()}
