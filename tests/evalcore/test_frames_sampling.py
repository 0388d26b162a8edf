"""Sampling formulas with exact expected index lists, and FrameSettings validation."""

import pytest
from pydantic import ValidationError

from evalcore.frames import FrameSettings, frame_indices, sample_fps, sample_uniform


def test_uniform_takes_segment_midpoints():
    # floor((2i+1) * 100 / 16) for i = 0..7
    assert sample_uniform(100, 8) == [6, 18, 31, 43, 56, 68, 81, 93]
    assert sample_uniform(45, 8) == [2, 8, 14, 19, 25, 30, 36, 42]
    assert sample_uniform(10, 1) == [5]
    assert sample_uniform(10, 10) == list(range(10))


def test_uniform_within_bounds():
    assert sample_uniform(100, 4, start=10, end=30) == [12, 17, 22, 27]
    assert sample_uniform(100, 2, start=90) == [92, 97]
    # bounds are clamped to the video
    assert sample_uniform(50, 2, start=40, end=80) == [42, 47]


def test_uniform_repeats_frames_of_a_short_range_to_keep_the_count():
    assert sample_uniform(5, 8) == [0, 0, 1, 2, 2, 3, 4, 4]


def test_uniform_of_an_empty_range_is_empty():
    assert sample_uniform(0, 8) == []
    assert sample_uniform(100, 8, start=60, end=60) == []
    assert sample_uniform(100, 8, start=120) == []
    with pytest.raises(ValueError, match="nframe"):
        sample_uniform(100, 0)


def test_fps_samples_at_half_period_offsets():
    # 150 frames at 15 fps = 10 s; fps=1 -> t = 0.5, 1.5, ..., 9.5 -> floor(t * 15)
    assert sample_fps(150, 15.0, 1.0, 64) == [7, 22, 37, 52, 67, 82, 97, 112, 127, 142]
    # 45 frames at 15 fps, fps=2 -> t = 0.25, 0.75, ..., 2.75
    assert sample_fps(45, 15.0, 2.0, 64) == [3, 11, 18, 26, 33, 41]


def test_fps_over_the_cap_becomes_uniform_over_the_clip():
    # 10 timestamps > max_frames=4 -> sample_uniform(150, 4)
    assert sample_fps(150, 15.0, 1.0, 4) == sample_uniform(150, 4) == [18, 56, 93, 131]
    # exactly at the cap stays rate-based
    assert sample_fps(150, 15.0, 1.0, 10) == [7, 22, 37, 52, 67, 82, 97, 112, 127, 142]


def test_fps_within_clip_bounds():
    # clip [2, 4) s at 15 fps, fps=2 -> t = 2.25, 2.75, 3.25, 3.75
    assert sample_fps(150, 15.0, 2.0, 64, 2.0, 4.0) == [33, 41, 48, 56]
    # capped inside a clip: uniform over the clip's frames [30, 60)
    assert sample_fps(150, 15.0, 2.0, 2, 2.0, 4.0) == [37, 52]
    # end past the video is clamped to its duration (10 s)
    assert sample_fps(150, 15.0, 1.0, 64, 8.0, 99.0) == [127, 142]


def test_fps_clip_shorter_than_half_a_period_gets_its_middle_frame():
    # [3.1, 3.3) s covers frames 46..49; no t_k fits, so the middle one
    assert sample_fps(150, 15.0, 1.0, 64, 3.1, 3.3) == [48]
    assert sample_fps(150, 15.0, 1.0, 64, 12.0, 13.0) == []


def test_fps_uses_measured_frame_times_on_variable_frame_rate():
    # 15 frames 50 ms apart, then 15 frames 200 ms apart (average rate 9 fps)
    times = [i * 0.05 for i in range(15)] + [0.75 + i * 0.2 for i in range(15)]
    got = sample_fps(30, 9.0, 2.0, 64, frame_times=times)
    # t = 0.25, 0.75, 1.25, ... -> the frame on screen at each t
    assert got == [5, 15, 17, 20, 22, 25, 27]
    # an average-rate guess would pick different frames
    assert sample_fps(30, 9.0, 2.0, 64) != got


def test_frame_indices_follows_settings():
    assert frame_indices(45, 15.0, FrameSettings(nframe=8), None, None) == [
        2,
        8,
        14,
        19,
        25,
        30,
        36,
        42,
    ]
    # clip [1, 2) s = frames 15..29
    assert frame_indices(45, 15.0, FrameSettings(nframe=4), 1.0, 2.0) == [16, 20, 24, 28]
    assert frame_indices(45, 15.0, FrameSettings(fps=2.0), None, None) == [3, 11, 18, 26, 33, 41]
    assert frame_indices(45, 15.0, FrameSettings(nframe=4), 5.0, 6.0) == []
    assert frame_indices(0, 15.0, FrameSettings(), None, None) == []


def test_clip_bounds_are_robust_to_float_noise():
    # 0.1 * 30 = 3.0000000000000004 must not pull in frame 3
    assert frame_indices(300, 30.0, FrameSettings(nframe=3), 0.0, 0.1) == [0, 1, 2]


def test_settings_need_exactly_one_of_nframe_and_fps():
    assert FrameSettings().nframe == 8
    rate = FrameSettings(fps=1.0)
    assert (rate.nframe, rate.fps) == (None, 1.0)
    for bad in ({"nframe": 8, "fps": 1.0}, {"nframe": None}):
        with pytest.raises(ValidationError) as info:
            FrameSettings(**bad)
        error = info.value.errors()[0]
        assert error["loc"] == ("fps",)
        assert "exactly one of nframe and fps" in error["msg"]


def test_settings_are_strict_and_frozen():
    with pytest.raises(ValidationError):
        FrameSettings(nframes=8)  # typo: extra fields are refused
    with pytest.raises(ValidationError):
        FrameSettings(jpeg_quality=101)
    with pytest.raises(ValidationError):
        FrameSettings(backend="opencv")
    settings = FrameSettings()
    with pytest.raises(ValidationError):
        settings.nframe = 16
    described = FrameSettings.model_json_schema()["properties"]
    assert all(field.get("description") for field in described.values())
