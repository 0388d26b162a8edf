"""The synthetic benchmark: layout, answers, determinism, idempotence, real H.264 videos,
and the timing that makes every question answerable from sampled frames."""

import ast
import json

import av
import numpy as np
import pandas as pd
import pytest

from evalcore.dataset import load_tsv
from evalcore.dataset.synthetic import (
    CATEGORIES,
    COLUMNS,
    PALETTE,
    generate_benchmark,
    plan_video,
    render_frame,
)
from evalcore.frames import sample_fps, sample_uniform


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


def test_six_videos_questions_and_durations(tmp_path):
    tsv = generate_benchmark(tmp_path, n_videos=6, seed=0)
    assert tsv == tmp_path / "SyntheticVQA.tsv"
    table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(COLUMNS)
    assert list(table["index"]) == [str(i) for i in range(24)]
    assert (table["start"] == "").all() and (table["end"] == "").all()
    # Four questions a video: count, order, motion, then colour or shape by turns.
    assert table["category"].value_counts().to_dict() == {
        "count": 6, "order": 6, "motion": 6, "colour": 3, "shape": 3,
    }  # fmt: skip
    for i, row in enumerate(table.itertuples()):
        options = ast.literal_eval(row.candidates)
        assert len(set(options)) == 4
        if i % 5 == 4:
            assert row.answer in options  # every 5th row names the option
        else:
            assert row.answer in ("A", "B", "C", "D")
        assert row.video_path == f"videos/{row.video}.mp4"
    letters = [s.answer for s in load_tsv(tsv)]
    assert len(set(letters)) > 1  # answer positions are shuffled

    manifest = json.loads((tmp_path / "SyntheticVQA.json").read_text())
    for video in manifest["videos"]:
        assert 2.0 <= video["duration"] <= 20.0
        with av.open(str(tmp_path / "videos" / f"{video['video_id']}.mp4")) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (320, 240)
            assert stream.codec_context.pix_fmt == "yuv420p"
            n = sum(1 for _ in container.decode(stream))
            seconds = float(stream.duration * stream.time_base)
        assert n == video["n_frames"]
        assert abs(seconds - video["duration"]) < 1.5 / 15


def test_changed_parameters_regenerate(tmp_path):
    tsv = generate_benchmark(tmp_path, n_videos=2, seed=0, max_seconds=3)
    assert len(pd.read_csv(tsv, sep="\t")) == 8
    generate_benchmark(tmp_path, n_videos=2, seed=0, max_seconds=3, questions_per_video=5)
    table = pd.read_csv(tsv, sep="\t")
    assert len(table) == 10 and set(table["category"]) == set(CATEGORIES)


def test_every_sampler_sees_first_shape_alone_and_all_at_the_end():
    """What makes `order` and `count` answerable: checked on 300 planned videos against
    segment-midpoint sampling (4..32 frames) and 1 fps sampling (from 0 s and the
    pipeline's own midpoints)."""
    for index in range(300):
        spec = plan_video(index, seed=5)
        n = spec.n_frames
        samplers = {f"nframe={k}": sample_uniform(n, k) for k in range(4, 33)}
        samplers["fps=1"] = sample_fps(n, spec.fps, 1.0, max_frames=1000)
        samplers["fps=1 from 0"] = [int(i * spec.fps) for i in range(int(spec.duration))]
        for name, indices in samplers.items():
            visible_first = [s for s in spec.shapes if s.appears <= indices[0]]
            visible_last = [s for s in spec.shapes if s.appears <= indices[-1]]
            assert visible_first == [spec.shapes[0]], (spec.video_id, name)
            assert visible_last == list(spec.shapes), (spec.video_id, name)


def test_shapes_stay_inside_apart_and_distinct():
    for index in range(300):
        spec = plan_video(index, seed=9)
        assert 2 <= len(spec.shapes) <= 4
        assert len({s.colour for s in spec.shapes}) == len(spec.shapes)
        assert 80 <= abs(spec.dx) + abs(spec.dy) <= 120 and 0 in (spec.dx, spec.dy)
        for s in spec.shapes:
            assert 30 <= s.size <= 45
            for x, y in ((s.x, s.y), (s.x + spec.dx, s.y + spec.dy)):
                assert 0 <= x and x + s.size <= spec.width
                assert 0 <= y and y + s.size <= spec.height
        boxes = [(s.x, s.y, s.x + s.size, s.y + s.size) for s in spec.shapes]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_first_frame_shows_shape_zero_alone_and_last_shows_all():
    spec = plan_video(3, seed=0)
    first, last = render_frame(spec, 0), render_frame(spec, spec.n_frames - 1)
    colours = [np.array(PALETTE[s.colour]) for s in spec.shapes]
    assert (first == colours[0]).all(axis=-1).any()
    assert not any((first == c).all(axis=-1).any() for c in colours[1:])
    assert all((last == c).all(axis=-1).any() for c in colours)


def test_bad_parameters_are_refused(tmp_path):
    with pytest.raises(ValueError, match="questions_per_video"):
        generate_benchmark(tmp_path, n_videos=1, questions_per_video=6)
    with pytest.raises(ValueError, match="min_seconds"):
        generate_benchmark(tmp_path, n_videos=1, min_seconds=1.0)
    assert not any(tmp_path.iterdir())
