"""Keys that name things on disk never change by accident: a cell's key (its log
folder), a frame index's name, a frame cache entry's key and a sample's answer key,
pinned to the values the code gave when they were first pinned. A change here orphans
every log, index or cached frame made before it: make it on purpose, or not at all."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evalcore.cell import Cell
from evalcore.config import DatasetSpec, ModelSpec
from evalcore.dataset import Sample
from evalcore.frames import FramePlan, FrameSettings, VideoJob
from evalcore.hashing import stable_hash
from evalcore.models import GenerationConfig
from evalcore.workspace import Workspace

TSV = Path("/data/bench/Tiny.tsv")  # never read: only its name and place are hashed


def dataset(**changes) -> DatasetSpec:
    return DatasetSpec.model_construct(tsv=TSV, **changes)  # the file need not exist


def cell(**changes) -> Cell:
    model = ModelSpec(**{"name": "m", "kind": "reference", **changes.pop("model", {})})
    base = dict(model=model, dataset=dataset(), trial=0, seed=0, frames=FrameSettings())
    return Cell(**{**base, **changes})


FRAMES = {
    "default": FrameSettings(),
    "nframe4": FrameSettings(nframe=4),
    "fps1": FrameSettings(fps=1.0),
    "fps2_max16": FrameSettings(fps=2, max_frames=16),
    "vlmevalkit": FrameSettings(sampler="vlmevalkit"),
    "vlmevalkit_fps": FrameSettings(sampler="vlmevalkit", fps=0.5, max_frames=8),
    "full_size": FrameSettings(max_side=None),
    "jpeg80": FrameSettings(jpeg_quality=80),
}
# settings that change how fast frames are made, not which: in no key
SPEED = FrameSettings(workers=1, timeout_s=5, backend="decord")

CELL_KEYS = {
    "default": "b6b0f527ba9bc8d6",
    "random": "cb5e0bb136f421ba",
    "params": "e9f2afb7b584cde6",
    "max_new_tokens": "bba7bd6ede44c218",
    "trial1": "4f18ab03f13bcf0d",
    "seed5": "c369dbc098477574",
    "cuda": "aab29e8755480d21",
    "pack": "5c2f29a5a36e2869",
    "mlvu": "383b46ac5f1f510e",
    "frames_default": "b6b0f527ba9bc8d6",
    "frames_nframe4": "e7510826c1286dc2",
    "frames_fps1": "5399dc5e5d2fac80",
    "frames_fps2_max16": "161ebbddf04d362a",
    "frames_vlmevalkit": "8fca7077b0ac6468",
    "frames_vlmevalkit_fps": "edd73023fd700917",
    "frames_full_size": "ed9eed9c11abd967",
    "frames_jpeg80": "1df873a242c7c89b",
}
INDEX_NAMES = {
    "default": "Tiny-b4bed5c4a99a77fe.jsonl",
    "nframe4": "Tiny-971ada403cd8f06d.jsonl",
    "fps1": "Tiny-8f1115363a54947e.jsonl",
    "fps2_max16": "Tiny-f71b27d6753ce80e.jsonl",
    "vlmevalkit": "Tiny-a64a77bb547321cd.jsonl",
    "vlmevalkit_fps": "Tiny-ceafb2ceaa9b7e6d.jsonl",
    "full_size": "Tiny-91c64a9fea9164b7.jsonl",
    "jpeg80": "Tiny-fd4ef826ee3a1091.jsonl",
}
ENTRY_KEYS = {
    "default/whole": "01a2482ef04b3e2cb426c0e8b82a2524",
    "default/clip": "dd2bb8c91288c15ea69e1dd6b2481070",
    "default/from": "b46327b9b8223c4842f31d9b25680864",
    "nframe4/whole": "d76cb2ccd48cb3e02b32333cc12ad53f",
    "nframe4/clip": "31f81102c73b48ac117eb71fad68dd4a",
    "nframe4/from": "8c494c1e7570e5ace2fca0203dd6f68b",
    "fps1/whole": "b3af87a914ed1bd09d246e683cb98528",
    "fps1/clip": "f007bceb94ad91cfacf6955d26419da7",
    "fps1/from": "bde4661bc75dee92fad70e2be2ee8976",
    "fps2_max16/whole": "94c960e43312ca69cc2e74410785729b",
    "fps2_max16/clip": "e8c8d02ca91946c8bcd14f1b6ad0d936",
    "fps2_max16/from": "5fa54c57bf464d6f09f5023c29b4e512",
    "vlmevalkit/whole": "1c36c2630b25763326a77108647cdfc2",
    "vlmevalkit/clip": "71f5d743b7b0eb854cb1bae150752ca9",
    "vlmevalkit/from": "da9bf21868b0aa854b4f3bd46f5c75d8",
    "vlmevalkit_fps/whole": "dd800f817c45d413bbf2726bd0ea58da",
    "vlmevalkit_fps/clip": "cf200ff677ea393fae33a70c418c9f0d",
    "vlmevalkit_fps/from": "e13cc4ab0371d445652d876c0aa21002",
    "full_size/whole": "112a01e89f3dde82ad9eb6de67cb72e6",
    "full_size/clip": "40b37a9bb34467f0ea450e4fc37f9c1e",
    "full_size/from": "579186a121a1bc74bcfd58b11c4bbbe5",
    "jpeg80/whole": "0022c09f5b037fa1feff2163f53480c4",
    "jpeg80/clip": "d188d9182ed49843789334bceb9dd794",
    "jpeg80/from": "c8cb96d3b7c215dcbcd785389905195c",
}
ANSWER_KEYS = {
    "plain": "c0d3ac1c923bf2ab0c8e7697",
    "clip": "b84ece9dc9f09708ba93b280",
    "int_clip": "3656f5ea5d6663d735e67046",
    "no_options": "ecd087d037ffdc1e2b392985",
    "unicode": "288bd6d085a27d37abd8519e",
    "subtitles": "16b9d97f91029e5f8871e749",
    "prompt_extra": "4558652944fae7f5ef92d9ec",
    "both": "9c653f10825552ef10893205",
    "irrelevant": "93645cda79b3d967c0609184",
}


def test_cell_keys_are_pinned():
    cells = {
        "default": cell(),
        "random": cell(model={"kind": "random"}),
        "params": cell(model={"params": {"colour_tolerance": 70.0}}),
        "max_new_tokens": cell(model={"generation": GenerationConfig(max_new_tokens=8)}),
        "trial1": cell(trial=1),
        "seed5": cell(seed=5),
        "cuda": cell(device_class="cuda"),
        "pack": cell(dataset=dataset(pack=True)),
        "mlvu": cell(dataset=dataset(benchmark="mlvu")),
        **{f"frames_{k}": cell(frames=v) for k, v in FRAMES.items()},
    }
    assert {k: c.key for k, c in cells.items()} == CELL_KEYS
    assert cell(frames=SPEED).key == CELL_KEYS["default"]


def test_frame_index_names_are_pinned():
    ws = Workspace(Path("/w"), Path("/o"))
    names = {k: v.index_path(dataset(), ws).name for k, v in FRAMES.items()}
    assert names == INDEX_NAMES
    assert SPEED.index_path(dataset(), ws).name == INDEX_NAMES["default"]
    plans = {k: v.plan.index_path(dataset(), ws).name for k, v in FRAMES.items()}
    assert plans == INDEX_NAMES


def test_frame_cache_entry_keys_are_pinned():
    video = "0123456789abcdef0123456789abcdef"
    jobs = {
        "whole": VideoJob(Path("/v/a.mp4")),
        "clip": VideoJob(Path("/v/a.mp4"), 1, 2.5),  # 1 and 1.0 give one key
        "from": VideoJob(Path("/v/a.mp4"), 0.5, None),
    }
    keys = {
        f"{f}/{j}": settings.entry_key(video, job)
        for f, settings in FRAMES.items()
        for j, job in jobs.items()
    }
    assert keys == ENTRY_KEYS
    assert SPEED.entry_key(video, jobs["whole"]) == ENTRY_KEYS["default/whole"]
    same_clip = VideoJob(Path("/v/a.mp4"), 1.0, 2.5)
    assert FRAMES["default"].entry_key(video, same_clip) == ENTRY_KEYS["default/clip"]
    # the plan alone (no decoding settings) gives the same keys as the settings holding it
    assert {
        f"{f}/{j}": settings.plan.entry_key(video, job)
        for f, settings in FRAMES.items()
        for j, job in jobs.items()
    } == ENTRY_KEYS
    assert FramePlan(fps=1.0).entry_key(video, jobs["clip"]) == ENTRY_KEYS["fps1/clip"]


def sample(**changes) -> Sample:
    base = dict(
        dataset="Tiny",
        sample_id="1",
        video="a.mp4",
        video_path=Path("/v/a.mp4"),
        question="What colour?",
        options=("red", "blue"),
        answer="A",
    )
    return Sample(**{**base, **changes})


SAMPLES = {
    "plain": sample(),
    "clip": sample(start=1.0, end=2.5),
    "int_clip": sample(start=1, end=3),  # hashed as given (1 is not 1.0 here)
    "no_options": sample(options=(), answer="yes"),
    "unicode": sample(question="Qu'est-ce que c'est ? 视频"),
    "subtitles": sample(subtitles=((0.0, 1.5, "hello"), (2.0, 3.0, "world"))),
    "prompt_extra": sample(prompt_extra="(A) one\n(B) two"),
    "both": sample(subtitles=((0.0, 1.5, "hi"),), prompt_extra="extra"),
    "irrelevant": sample(sample_id="2", category="x", answer="B", row={"a": 1}),
}


def test_answer_keys_are_pinned():
    c = cell()
    assert {k: c.answer_key(s, "fp-" + k) for k, s in SAMPLES.items()} == ANSWER_KEYS


def frozen_answer_key(cell_key: str, sample: Sample, video: str) -> str:
    """The answer key's formula as first pinned (a copy: never edit it)."""
    inputs = [sample.question, list(sample.options), sample.start, sample.end, video]
    if sample.subtitles or sample.prompt_extra:
        inputs += [[list(c) for c in sample.subtitles], sample.prompt_extra]
    return stable_hash([cell_key, inputs], length=24)


def varied_samples(n: int, seed: int = 3) -> list[Sample]:
    rng = random.Random(seed)
    words = ["red", "blue", "Wie viele?", "视频", "", "a\tb", '"quoted"', "ünï", "x" * 40]
    out = []
    for i in range(n):
        start = rng.choice([None, 0, 0.0, 1, 2.5, 1e-3, 12345.678])
        end = rng.choice([None, 3, 3.0, 7.25]) if start is not None else rng.choice([None, 4.0])
        cues = tuple(
            (rng.choice([0, 0.5, 1.0]), rng.choice([2, 2.5]), rng.choice(words))
            for _ in range(rng.choice([0, 0, 1, 3]))
        )
        out.append(
            sample(
                sample_id=str(i),
                question=" ".join(rng.choices(words, k=rng.randint(0, 4))),
                options=tuple(rng.choices(words, k=rng.choice([0, 2, 4, 5]))),
                start=start,
                end=end,
                subtitles=cues,
                prompt_extra=rng.choice(["", "", "Candidates:\n(A) x", "视频"]),
                category=rng.choice(["", "count", "colour"]),
                answer=rng.choice(["A", "B", "yes"]),
            )
        )
    return out


@pytest.mark.parametrize("c", [cell(), cell(trial=1, frames=FRAMES["fps1"])], ids=["t0", "t1"])
def test_answer_keys_follow_the_frozen_formula_on_varied_samples(c):
    samples = varied_samples(300)
    assert any(s.subtitles for s in samples) and any(s.prompt_extra for s in samples)
    assert any(not s.subtitles and not s.prompt_extra for s in samples)
    for s in samples:
        video = f"fp{s.sample_id}"
        assert c.answer_key(s, video) == frozen_answer_key(c.key, s, video), json.dumps(
            [s.question, s.options, s.start, s.end, s.subtitles, s.prompt_extra]
        )
