"""The reference model on real extracted frames, at several sampling settings."""

from collections import defaultdict

import pytest

from evalcore.dataset import load_tsv
from evalcore.frames import FrameCache, FrameSettings, VideoJob, extract_videos
from evalcore.inference.runner import build_request
from evalcore.models.registry import build_model


@pytest.mark.parametrize(
    "settings",
    [FrameSettings(nframe=4), FrameSettings(nframe=16, max_side=160), FrameSettings(fps=1.0)],
    ids=["nframe4", "nframe16-small", "fps1"],
)
def test_reference_answers_every_category(small_bench, tmp_path, settings):
    samples = load_tsv(small_bench)
    jobs = {s.sample_id: VideoJob(s.video_path) for s in samples}
    report = extract_videos(list(set(jobs.values())), FrameCache(tmp_path / "frames"), settings)
    model = build_model("reference")
    requests = [build_request(s, report.results[jobs[s.sample_id]]) for s in samples]
    answers = model.generate(requests)
    hits = defaultdict(list)
    for sample, answer in zip(samples, answers, strict=True):
        hits[sample.category].append(answer == sample.answer)
    accuracy = {cat: sum(h) / len(h) for cat, h in hits.items()}
    assert set(accuracy) >= {"count", "order", "motion", "colour", "shape"}
    assert min(accuracy.values()) >= 0.8, accuracy
