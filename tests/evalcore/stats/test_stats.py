"""Intervals clustered by video and the paired test, on data with answers known by hand."""

from __future__ import annotations

import math

import pytest

from evalcore.stats import (
    cluster_bootstrap,
    clustered_se,
    normal_interval,
    paired_difference,
)


def clustered(right_videos: int, wrong_videos: int, per_video: int):
    """Perfectly clustered questions: every question of a video right, or every one wrong."""
    values, videos = [], []
    for v in range(right_videos + wrong_videos):
        values += [1.0 if v < right_videos else 0.0] * per_video
        videos += [f"vid{v}"] * per_video
    return values, videos


def width(interval) -> float:
    return interval.high - interval.low


def test_all_correct_or_all_wrong_gives_zero_width():
    videos = [f"v{i // 3}" for i in range(30)]
    right = cluster_bootstrap([1.0] * 30, videos)
    assert (right.mean, right.low, right.high, right.n, right.clusters) == (1.0, 1.0, 1.0, 30, 10)
    wrong = cluster_bootstrap([0.0] * 30, videos)
    assert (wrong.low, wrong.high, wrong.half_width) == (0.0, 0.0, 0.0)


def test_perfectly_clustered_questions_are_wider_than_independent_ones():
    values, videos = clustered(right_videos=18, wrong_videos=12, per_video=4)  # 0.6 on 120
    as_videos = cluster_bootstrap(values, videos)
    as_questions = cluster_bootstrap(values, list(range(len(values))))  # each its own cluster
    assert as_videos.mean == pytest.approx(0.6) and as_videos.clusters == 30
    assert as_questions.clusters == 120
    # 4 identical questions per video carry the information of one: ~sqrt(4) = 2x wider
    assert 1.6 < width(as_videos) / width(as_questions) < 2.5
    assert as_questions.low < 0.6 < as_questions.high

    # The analytic clustered SE, by hand: cluster sums 4 (18 videos) or 0 (12), each
    # minus 4 x 0.6: residuals 1.6 and -2.4, squares summed 18 x 2.56 + 12 x 5.76 = 115.2
    by_hand = math.sqrt(30 / 29 * 115.2) / 120
    assert clustered_se(values, videos) == pytest.approx(by_hand, rel=1e-12)
    # each question its own cluster: the sample SE, sqrt(s^2 / n), s^2 = n/(n-1) p(1-p)
    iid = math.sqrt(120 / 119 * 0.24 / 120)
    assert clustered_se(values, list(range(120))) == pytest.approx(iid, rel=1e-12)
    # and the bootstrap agrees with the analytic interval it approximates
    assert width(as_videos) == pytest.approx(2 * 1.96 * by_hand, rel=0.15)


def test_unequal_videos_weigh_by_their_questions():
    # video a: 3 of 3 right, video b: 0 of 1 -> accuracy is 3/4, not the mean of 1 and 0
    interval = cluster_bootstrap([1, 1, 1, 0], ["a", "a", "a", "b"])
    assert interval.mean == pytest.approx(0.75)
    assert 0.0 <= interval.low <= 0.75 <= interval.high <= 1.0


def test_seeded_and_deterministic():
    values = [float((i * 7919) % 13 < 8) for i in range(200)]  # fixed, irregular
    videos = [f"v{(i * 31) % 47}" for i in range(200)]  # 47 videos of unequal sizes
    first = cluster_bootstrap(values, videos)
    assert cluster_bootstrap(values, videos) == first
    other = cluster_bootstrap(values, videos, seed=1)
    assert other != first and abs(width(other) - width(first)) < 0.1


def test_nothing_to_resample_gives_no_interval():
    empty = cluster_bootstrap([], [])
    assert (empty.low, empty.high, empty.n) == (None, None, 0)
    one_video = cluster_bootstrap([1, 0, 1], ["v", "v", "v"])
    assert one_video.mean == pytest.approx(2 / 3)
    assert (one_video.low, one_video.high, one_video.half_width) == (None, None, None)
    with pytest.raises(ValueError, match="cluster labels"):
        cluster_bootstrap([1, 0], ["v"])


def test_normal_interval_is_the_textbook_one():
    values = [1.0] * 6 + [0.0] * 4
    naive = normal_interval(values)
    se = math.sqrt(10 / 9 * 0.24 / 10)
    assert naive.low == pytest.approx(0.6 - 1.959964 * se, rel=1e-6)
    assert naive.high == pytest.approx(0.6 + 1.959964 * se, rel=1e-6)


def test_paired_test_without_clusters_is_mcnemar():
    # 100 questions, each its own video: 10 flip wrong -> right, 2 right -> wrong
    a = [0.0] * 10 + [1.0] * 2 + [1.0] * 50 + [0.0] * 38
    b = [1.0] * 10 + [0.0] * 2 + [1.0] * 50 + [0.0] * 38
    result = paired_difference(a, b, list(range(100)))
    assert result.difference == pytest.approx(0.08)
    assert (result.discordant, result.discordant_clusters, result.n) == (12, 12, 100)
    # z^2 = (b - c)^2 (n - 1) / (n (b + c) - (b - c)^2), which tends to McNemar's 64 / 12
    z2 = 64 * 99 / (100 * 12 - 64)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(z2 / 2)), rel=1e-9)
    assert result.p_value < 0.05 and result.significant
    assert result.low > 0  # the interval agrees with the p-value


def test_flips_on_few_videos_are_less_significant_than_spread_ones():
    a = [0.0] * 12 + [1.0] * 48
    b = [1.0] * 12 + [1.0] * 48
    spread = paired_difference(a, b, [f"v{i}" for i in range(60)])  # a flip per video
    few = paired_difference(a, b, [f"v{i // 4}" for i in range(60)])  # 4 flips per video
    assert spread.difference == few.difference == pytest.approx(0.2)
    assert few.discordant_clusters == 3 and spread.discordant_clusters == 12
    assert few.se > spread.se and few.p_value > spread.p_value


def test_paired_edge_cases():
    same = paired_difference([1, 0, 1], [1, 0, 1], ["a", "b", "c"])
    assert (same.difference, same.p_value, same.discordant) == (0.0, 1.0, 0)
    assert not same.significant
    everything = paired_difference([0, 0, 0], [1, 1, 1], ["a", "b", "c"])
    assert everything.p_value == 0.0 and everything.significant
    assert paired_difference([], [], []).n == 0
