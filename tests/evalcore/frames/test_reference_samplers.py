"""Other pipelines' frame choices (evalcore.frames.reference_samplers): cases worked by
hand from each peer's source, the rules against the peers' own expressions (the
installed qwen-vl-utils, driven by a stand-in decord; numpy for the lines that are
numpy) over a grid of videos, and extraction of a real video under each sampler.

Peers: qwen-vl-utils 0.0.14 vision_process.py (smart_nframes, lines 144-181; decord
reader, lines 316-317); VLMEvalKit vlmeval/vlm/qwen2_vl/model.py lines 349-361,
vlmeval/vlm/llava/llava.py lines 798-817, vlmeval/dataset/mvbench.py lines 211-232;
lmms-eval lmms_eval/models/simple/qwen2_5_vl.py lines 291-300.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from evalcore.frames import (
    FrameCache,
    FrameEntry,
    FrameFailure,
    FrameSettings,
    SamplingRefusedError,
    VideoJob,
    extract_videos,
    frame_indices,
)
from evalcore.frames.reference_samplers import (
    numpy_linspace_int,
    sample_llava_ov,
    sample_lmms_eval_qwen,
    sample_qwen_vl,
)
from evalcore.predictions import FailureKind
from tests.doubles import decord_stand_in
from tests.doubles.videos import read_frame_number, write_video

NTSC = 30000 / 1001  # 29.97 fps
RATES = [NTSC, 24000 / 1001, 25.0, 30.0, 60.0, 15.0, 12.5, 2.5, 1.0]


def qwen_vl(n_total, video_fps, start=None, end=None, **plan) -> list[int]:
    settings = FrameSettings(sampler="qwen_vl", **plan)
    return frame_indices(n_total, video_fps, settings, start, end)


def indices(sampler, n_total, fps, nframe, start=None, end=None) -> list[int]:
    settings = FrameSettings(sampler=sampler, nframe=nframe)
    return frame_indices(n_total, fps, settings, start, end)


# --- qwen_vl: qwen-vl-utils' fetch_video, asked as VLMEvalKit's Qwen2-VL asks ---------


def test_qwen_vl_by_count_worked_by_hand():
    # 90 frames at 29.97 fps, nframe 8: nframes = 8 (round(8 / 2) * 2);
    # linspace(0, 89, 8): step 89/7 = 12.714; first half 0, 12.71, 25.43, 38.14; second
    # half 89 - step * (7 - i): 50.86, 63.57, 76.29, 89 -> rounded
    assert qwen_vl(90, NTSC, nframe=8) == [0, 13, 25, 38, 51, 64, 76, 89]
    # clip [2, 4) s of 150 frames at 15 fps: frames [30, 60), L = 30; linspace(0, 29, 8):
    # step 4.143: 0, 4.14, 8.29, 12.43 | 16.57, 20.71, 24.86, 29 -> + 30
    assert qwen_vl(150, 15.0, 2.0, 4.0, nframe=8) == [30, 34, 38, 42, 47, 51, 55, 59]
    # a 5-frame clip asked for 8: VLMEvalKit asks 5 // 2 * 2 = 4; linspace(0, 4, 4):
    # step 1.333: 0, 1.33 | 2.67, 4 -> + 10
    assert sample_qwen_vl(10, 15, 15.0, nframe=8) == [10, 11, 13, 14]


def test_qwen_vl_by_rate_worked_by_hand():
    # 300 frames at 30 fps (10 s), fps 1: 10 frames (between min 4 and the plan's cap
    # 64, which is below min(768, 300)); linspace(0, 299, 10): step 33.222
    assert qwen_vl(300, 30.0, fps=1.0) == [0, 33, 66, 100, 133, 166, 199, 233, 266, 299]
    # fps 2 wants 20, the plan's max_frames 8 caps it; linspace(0, 299, 8): step 42.714
    assert qwen_vl(300, 30.0, fps=2.0, max_frames=8) == [0, 43, 85, 128, 171, 214, 256, 299]
    # 90 frames at 29.97 fps, fps 2: 90 / 29.97 * 2 = 6.006 -> 6; step 89/5 = 17.8
    assert qwen_vl(90, NTSC, fps=2.0) == [0, 18, 36, 53, 71, 89]
    # a max_frames at or above qwen-vl-utils' own cap min(768, L) is not passed
    assert qwen_vl(90, NTSC, fps=40.0, max_frames=800) == list(range(90))


def test_qwen_vl_refuses_what_qwen_vl_utils_refuses():
    # a 1-frame clip ([2, 2.05) s at 15 fps is frame 30 alone): nframes 1 // 2 * 2 = 0
    with pytest.raises(SamplingRefusedError, match=r"1-frame clip .*\[2, 1\], but got 0"):
        qwen_vl(150, 15.0, 2.0, 2.05, nframe=8)
    with pytest.raises(SamplingRefusedError):
        qwen_vl(150, 15.0, 2.0, 2.05, fps=2.0)  # max(wanted, 4) capped by 1 // 2 * 2 = 0
    # 7 frames asked for 7: not fewer, so nframes 7, which rounds to 8 > 7
    with pytest.raises(SamplingRefusedError, match=r"\[2, 7\], but got 8"):
        sample_qwen_vl(0, 7, 15.0, nframe=7)
    assert SamplingRefusedError.error_type is FailureKind.SamplingRefused
    assert FailureKind.SamplingRefused.permanent


# --- lmms_eval_qwen: qwen-vl-utils at 2 fps, then lmms-eval's nframe of those ---------


def test_lmms_eval_qwen_worked_by_hand():
    # 90 frames at 29.97: qwen-vl-utils takes 6 (as qwen_vl at fps 2 above); nframe 32:
    # unique(linspace(0, 5, 32, int)) = 0..5: all six
    assert indices("lmms_eval_qwen", 90, NTSC, 32) == [0, 18, 36, 53, 71, 89]
    # 300 frames at 30 fps: T = 20, fetched = linspace(0, 299, 20) (step 15.737):
    # 0 16 31 47 63 79 94 110 126 142 | 157 173 189 205 220 236 252 268 283 299;
    # nframe 8: linspace(0, 19, 8, int) (step 2.714, floored) = 0 2 5 8 10 13 16 19
    assert indices("lmms_eval_qwen", 300, 30.0, 8) == [0, 31, 79, 126, 157, 205, 252, 299]
    # nframe 1: linspace gives [0]; T - 1 = 19 is appended
    assert indices("lmms_eval_qwen", 300, 30.0, 1) == [0, 299]
    # clip [2, 2.2) s at 15 fps: frames 30..32, L = 3: T = min(max(0.4, 4), 3 // 2 * 2)
    # = 2, fetched 0, 2; linspace(0, 1, 8, int) = 0 ... 0 1 -> + 30
    assert indices("lmms_eval_qwen", 150, 15.0, 8, 2.0, 2.2) == [30, 32]
    with pytest.raises(SamplingRefusedError, match="1-frame clip"):
        indices("lmms_eval_qwen", 150, 15.0, 8, 2.0, 2.05)


# --- llava_ov: VLMEvalKit's LLaVA_OneVision_HF.load_video, fps 1 ----------------------


def test_llava_ov_worked_by_hand():
    # 300 frames at 29.97: step round(29.97) = 30 -> 0, 30, ..., 270: 10 frames <= 16
    assert indices("llava_ov", 300, NTSC, 16) == list(range(0, 300, 30))
    # 10 > 8: linspace(0, 299, 8, int): step 42.714, floored
    assert indices("llava_ov", 300, NTSC, 8) == [0, 42, 85, 128, 170, 213, 256, 299]
    # clip [2, 4) s at 15 fps: frames [30, 60), step 15: 0, 15 -> + 30
    assert indices("llava_ov", 150, 15.0, 8, 2.0, 4.0) == [30, 45]
    assert indices("llava_ov", 150, 15.0, 8, 2.0, 2.05) == [30]  # a 1-frame clip: its frame
    # round(2.5) is 2 (half to even): every 2nd frame
    assert sample_llava_ov(0, 10, 2.5, 8) == [0, 2, 4, 6, 8]
    with pytest.raises(SamplingRefusedError, match=r"round\(0.4 / 1\) = 0"):
        sample_llava_ov(0, 10, 0.4, 8)  # range(0, 10, 0) raises there


# --- mvbench: VLMEvalKit's MVBench.get_index on the clip bounds -----------------------


def test_mvbench_worked_by_hand():
    # whole 90-frame video at 30 fps, 8 segments: start_idx 0, end_idx 89, seg 11.125;
    # int(5.5625 + round(11.125 i)): round 0 11 22 33 44 (44.5, half to even) 56 67 78
    assert indices("mvbench", 90, 30.0, 8) == [5, 16, 27, 38, 49, 61, 72, 83]
    # 300 frames at 29.97, clip [2, 6): start_idx round(59.94) = 60, end_idx
    # round(179.82) = 180, seg 30: int(60 + 15 + 30 i)
    assert indices("mvbench", 300, NTSC, 4, 2.0, 6.0) == [75, 105, 135, 165]
    # end past the video: end_idx = 89; seg 59 / 4 = 14.75; round(29.5) = 30
    assert indices("mvbench", 90, 30.0, 4, 1.0, 10.0) == [37, 52, 67, 81]
    # a short clip [1, 1.02): start_idx 30, end_idx round(30.6) = 31, seg 0.125:
    # round(0.125 i) = 0 for i <= 4 (0.5 -> 0), 1 after; frame 31 is MVBench's, past the clip
    assert indices("mvbench", 90, 30.0, 8, 1.0, 1.02) == [30] * 5 + [31] * 3
    assert indices("mvbench", 1, 30.0, 4) == [0, 0, 0, 0]  # a 1-frame video
    # start rounds past the last frame: start_idx 90 > end_idx 89, seg -0.25:
    # int(89.875 + round(-0.25 i)): round 0, -0, -0 (-0.5), -1
    assert indices("mvbench", 90, 30.0, 4, 2.99, None) == [89, 89, 89, 88]
    assert indices("mvbench", 90, 30.0, 4, 3.5, None) == []  # no frame in the clip


# --- against the peers' own expressions, over a grid -----------------------------------


@pytest.fixture
def qwen_vl_utils(monkeypatch):
    pytest.importorskip("qwen_vl_utils.vision_process")
    torch = pytest.importorskip("torch")
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("torch's DEFAULT CPU kernel: the samplers reproduce the fused x86-64 one")
    decord_stand_in.install(monkeypatch)
    return decord_stand_in.qwen_vl_utils_indices


def _grid(seed: int, n: int) -> list[tuple[int, float, int]]:
    """(frames, rate, nframe): short clips, odd counts, long videos."""
    rng = random.Random(seed)
    lengths = [1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 65, 90, 127, 300, 1799, 1800, 7201, 18000]
    cases = [(length, rate, 8) for length in lengths for rate in (NTSC, 2.5)]
    for _ in range(n):
        length = rng.choice([rng.randint(1, 200), rng.randint(200, 30000)])
        cases.append((length, rng.choice(RATES), rng.choice([1, 2, 3, 7, 8, 16, 32, 64, 128])))
    return cases


def _outcome(call):
    try:
        return call()
    except (ValueError, SamplingRefusedError):  # qwen-vl-utils raises ValueError
        return "refused"


def test_qwen_vl_matches_qwen_vl_utils_as_vlmevalkit_asks_it(qwen_vl_utils):
    for length, rate, nframe in _grid(seed=1, n=300):
        # VLMEvalKit's _prepare_content: a video shorter than nframe gets its count
        # rounded down to FRAME_FACTOR
        nframes = length // 2 * 2 if length < nframe else nframe
        theirs = _outcome(lambda: qwen_vl_utils(length, rate, {"nframes": nframes}))  # noqa: B023
        ours = _outcome(lambda: sample_qwen_vl(0, length, rate, nframe=nframe))  # noqa: B023
        assert ours == theirs, (length, rate, nframe)


def test_qwen_vl_by_rate_matches_qwen_vl_utils(qwen_vl_utils):
    rng = random.Random(2)
    for length, rate, _ in _grid(seed=2, n=200):
        fps, max_frames = rng.choice([0.5, 1.0, 2.0, 4.0]), rng.choice([8, 32, 64, 768, 1000])
        request = {"fps": fps}
        if max_frames < min(768, length):
            request["max_frames"] = max_frames
        theirs = _outcome(lambda: qwen_vl_utils(length, rate, request))  # noqa: B023
        plan = {"fps": fps, "max_frames": max_frames}
        ours = _outcome(lambda: sample_qwen_vl(0, length, rate, **plan))  # noqa: B023
        assert ours == theirs, (length, rate, fps, max_frames)


def test_lmms_eval_qwen_matches_qwen_vl_utils_and_lmms_evals_lines(qwen_vl_utils):
    for length, rate, nframe in _grid(seed=3, n=300):
        try:
            fetched = qwen_vl_utils(length, rate, {})  # lmms-eval passes only pixel keys
        except ValueError:
            with pytest.raises(SamplingRefusedError):
                sample_lmms_eval_qwen(0, length, rate, nframe)
            continue
        # qwen2_5_vl.py lines 293-300, as written there
        total_frames = len(fetched)
        picked = np.linspace(0, total_frames - 1, nframe, dtype=int)
        picked = np.unique(picked)
        if total_frames - 1 not in picked:
            picked = np.append(picked, total_frames - 1)
            picked = np.unique(picked)
        expected = np.asarray(fetched)[picked].tolist()
        assert sample_lmms_eval_qwen(0, length, rate, nframe) == expected, (length, rate, nframe)


def test_llava_ov_matches_vlmevalkits_expressions():
    def load_video(total_frame_num, avg_fps, max_frames_num, fps=1):
        # llava.py lines 810-816, as written there
        effective_fps = round(avg_fps / fps)
        frame_idx = list(range(0, total_frame_num, effective_fps))
        if len(frame_idx) > max_frames_num:
            uniform = np.linspace(0, total_frame_num - 1, max_frames_num, dtype=int)
            frame_idx = uniform.tolist()
        return frame_idx

    for length, rate, nframe in _grid(seed=4, n=400):
        assert sample_llava_ov(0, length, rate, nframe) == load_video(length, rate, nframe)
        assert sample_llava_ov(7, 7 + length, rate, nframe) == [
            7 + i for i in load_video(length, rate, nframe)
        ]


def test_mvbench_matches_vlmevalkits_get_index():
    def get_index(bound, fps, max_frame, num_segments, first_idx=0):
        # mvbench.py lines 211-223, as written there
        if bound:
            start, end = bound[0], bound[1]
        else:
            start, end = -100000, 100000
        start_idx = max(first_idx, round(start * fps))
        end_idx = min(round(end * fps), max_frame)
        seg_size = float(end_idx - start_idx) / num_segments
        return np.array(
            [
                int(start_idx + (seg_size / 2) + np.round(seg_size * idx))
                for idx in range(num_segments)
            ]
        )

    rng = random.Random(5)
    for length, rate, nframe in _grid(seed=5, n=400):
        duration = length / rate
        theirs = get_index(None, rate, length - 1, nframe).tolist()
        assert indices("mvbench", length, rate, nframe) == theirs
        start = round(rng.uniform(0, duration * 0.9), rng.choice([1, 2, 3]))
        end = round(rng.uniform(start + 0.01, duration * 1.2), rng.choice([1, 2, 3]))
        if end <= start:
            continue
        ours = indices("mvbench", length, rate, nframe, start, end)
        if ours:  # [] only for a clip that holds no frame
            assert ours == get_index((start, end), rate, length - 1, nframe).tolist()
            assert all(0 <= i < length for i in ours)


def test_numpy_linspace_int_is_numpys():
    rng = random.Random(6)
    cases = [(0, 1), (0, 5), (1, 8), (5, 32), (89, 8), (299, 8), (19, 8)]
    cases += [(rng.randint(0, 100000), rng.randint(1, 300)) for _ in range(2000)]
    for stop, num in cases:
        assert numpy_linspace_int(stop, num) == np.linspace(0, stop, num, dtype=int).tolist()


# --- extraction of a real video under each sampler ------------------------------------


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    # 90 frames at 15 fps, each showing its number
    return write_video(tmp_path_factory.mktemp("v") / "v.mp4", n_frames=90, gop=10)


@pytest.mark.parametrize("sampler", ["qwen_vl", "lmms_eval_qwen", "llava_ov", "mvbench"])
def test_extraction_under_each_sampler_takes_its_frames(video, tmp_path, sampler):
    settings = FrameSettings(nframe=8, sampler=sampler, workers=1)
    whole, clip = VideoJob(video), VideoJob(video, 1.0, 3.0)
    one_frame = VideoJob(video, 2.0, 2.05)  # frame 30 alone
    report = extract_videos([whole, clip, one_frame], FrameCache(tmp_path / "c"), settings)

    for job in (whole, clip):
        entry = report.results[job]
        assert isinstance(entry, FrameEntry)
        manifest = entry.manifest()
        expected = frame_indices(
            manifest["video_frames"], manifest["fps"], settings, job.start, job.end
        )
        assert list(entry.indices) == expected
        assert [read_frame_number(frame) for frame in entry.load()] == expected  # the pixels
    refused = report.results[one_frame]
    if sampler in ("qwen_vl", "lmms_eval_qwen"):  # qwen-vl-utils takes 2 frames at least
        assert isinstance(refused, FrameFailure)
        assert refused.error_type is FailureKind.SamplingRefused
        assert str(video) in refused.message and f"{sampler} sampler" in refused.message
        assert "qwen-vl-utils refuses a 1-frame clip" in refused.message
        assert (report.failed, report.decoded) == (1, 2)  # the others went on
    else:
        assert isinstance(refused, FrameEntry) and refused.indices[0] == 30
