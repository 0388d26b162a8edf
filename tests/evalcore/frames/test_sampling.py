"""Sampling formulas with exact expected index lists, and FrameSettings validation."""

import pytest
from pydantic import ValidationError

from evalcore.frames import FrameSettings, frame_indices, sample_fps, sample_uniform
from evalcore.frames.sampling import sample_fps_vlmevalkit, sample_uniform_vlmevalkit


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


# --- VLMEvalKit's rule (vlmeval/dataset/video_base.py, save_video_frames) -------------


def test_vlmevalkit_nframe_cuts_the_video_into_nframe_plus_one_parts():
    # step = 45 / 9 = 5.0 -> int(i * 5.0) for i = 1..8
    assert sample_uniform_vlmevalkit(45, 8) == [5, 10, 15, 20, 25, 30, 35, 40]
    # step = 100 / 5 = 20.0
    assert sample_uniform_vlmevalkit(100, 4) == [20, 40, 60, 80]
    # step = 10 / 4 = 2.5 -> int(2.5), int(5.0), int(7.5)
    assert sample_uniform_vlmevalkit(10, 3) == [2, 5, 7]
    # step = 5 / 9 = 0.555...: 0.56, 1.11, 1.67, 2.22, 2.78, 3.33, 3.89, 4.44 truncated
    assert sample_uniform_vlmevalkit(5, 8) == [0, 1, 1, 2, 2, 3, 3, 4]
    assert sample_uniform_vlmevalkit(0, 8) == []
    with pytest.raises(ValueError, match="nframe"):
        sample_uniform_vlmevalkit(100, 0)


def test_vlmevalkit_nframe_truncates_the_float_product_as_vlmevalkit_does():
    # 11 * (30 / 22) = 14.999999999999998 in floats: VLMEvalKit takes frame 14, while
    # the exact floor(11 * 30 / 22) is 15
    assert 11 * (30 / 22) < 15 and 11 * 30 // 22 == 15
    assert sample_uniform_vlmevalkit(30, 21)[10] == 14


def test_vlmevalkit_nframe_within_bounds():
    # frames [10, 30): L = 20, step = 5.0 -> 10 + 5, 10 + 10, 10 + 15
    assert sample_uniform_vlmevalkit(100, 3, start=10, end=30) == [15, 20, 25]
    # clip [1, 2) s at 15 fps = frames 15..29: L = 15, step = 3.0 -> 15 + 3, 6, 9, 12
    vlmevalkit = FrameSettings(nframe=4, sampler="vlmevalkit")
    assert frame_indices(45, 15.0, vlmevalkit, 1.0, 2.0) == [18, 21, 24, 27]
    # whole video: step = 45 / 5 = 9.0; midpoint's rule takes other frames
    assert frame_indices(45, 15.0, vlmevalkit, None, None) == [9, 18, 27, 36]
    assert frame_indices(45, 15.0, FrameSettings(nframe=4), None, None) == [5, 16, 28, 39]
    assert frame_indices(45, 15.0, vlmevalkit, 5.0, 6.0) == []


def test_vlmevalkit_fps_takes_every_step_th_frame_from_the_first():
    # 150 frames at 15 fps: duration 10 s -> int(10 * 1) = 10 frames, step 15 / 1 = 15
    assert sample_fps_vlmevalkit(150, 15.0, 1.0, 64) == [0, 15, 30, 45, 60, 75, 90, 105, 120, 135]
    # 45 frames at 15 fps, fps 2: int(3.0 * 2) = 6 frames, step 7.5 -> int(k * 7.5)
    assert sample_fps_vlmevalkit(45, 15.0, 2.0, 64) == [0, 7, 15, 22, 30, 37]
    # 300 frames at 29.97 fps: duration 10.01 s -> 10 frames, step 29.97 -> int(k * 29.97)
    assert sample_fps_vlmevalkit(300, 29.97, 1.0, 64) == [
        0,
        29,
        59,
        89,
        119,
        149,
        179,
        209,
        239,
        269,
    ]
    # 50 frames at 15 fps = 3.33 s -> int(3.33) = 3 frames: the last 0.33 s gives none
    assert sample_fps_vlmevalkit(50, 15.0, 1.0, 64) == [0, 15, 30]


def test_vlmevalkit_fps_within_bounds_cap_and_short_clips():
    # clip [2, 4) s = frames 30..59: 30 frames = 2.0 s -> 4 frames, step 7.5 -> 30 + 0, 7, 15, 22
    assert sample_fps_vlmevalkit(150, 15.0, 2.0, 64, 2.0, 4.0) == [30, 37, 45, 52]
    vlmevalkit = FrameSettings(fps=2.0, sampler="vlmevalkit")
    assert frame_indices(150, 15.0, vlmevalkit, 2.0, 4.0) == [30, 37, 45, 52]
    # over the cap (10 > 4): VLMEvalKit's nframe rule with 4 over the clip, step 150 / 5 = 30
    assert sample_fps_vlmevalkit(150, 15.0, 1.0, 4) == [30, 60, 90, 120]
    # [3.1, 3.3) s = frames 46..49 (0.27 s): int(0.27 * 1) = 0 frames -> its first frame
    assert sample_fps_vlmevalkit(150, 15.0, 1.0, 64, 3.1, 3.3) == [46]
    assert sample_fps_vlmevalkit(150, 15.0, 1.0, 64, 12.0, 13.0) == []
