"""The frame plan owns its fields: what a model may override, what is in a cell's key,
which settings share frames; the decoding settings are in none of them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evalcore.config import ModelSpec
from evalcore.frames import FramePlan, FrameSettings

SPEED_FIELDS = {"backend", "timeout_s", "workers"}


def test_settings_are_a_plan_and_the_decoding_limits():
    assert set(FrameSettings.model_fields) == set(FramePlan.model_fields) | SPEED_FIELDS
    settings = FrameSettings(fps=2, max_frames=16, workers=1, backend="decord")
    assert settings.plan == FramePlan(fps=2.0, max_frames=16)
    assert settings.identity == settings.plan.identity
    # storage only when not the default: plans from before it keep their keys
    assert set(settings.identity) == set(FramePlan.model_fields) - {"storage"}
    png = FrameSettings(storage="png")
    assert png.identity == {**FrameSettings().identity, "storage": "png"}
    assert png.plan == FramePlan(storage="png") != FramePlan()


def test_equal_plans_are_equal_whatever_makes_their_frames():
    fast, slow = FrameSettings(workers=8, timeout_s=5), FrameSettings(backend="pyav")
    assert fast.plan == slow.plan and hash(fast.plan) == hash(slow.plan)
    assert fast.plan != FrameSettings(jpeg_quality=80).plan


@pytest.mark.parametrize("field", sorted(FramePlan.model_fields))
def test_a_model_may_override_each_plan_field(field):
    value = {"sampler": "vlmevalkit", "fps": 1.0, "max_side": None, "storage": "png"}.get(field, 4)
    ModelSpec(name="m", kind="random", frames={field: value})


@pytest.mark.parametrize("field", sorted(SPEED_FIELDS))
def test_a_model_may_not_override_how_frames_are_made(field):
    with pytest.raises(ValidationError, match=f"frames.{field}: not a per-model frame setting"):
        ModelSpec(name="m", kind="random", frames={field: 1})


def test_label_and_card_describe_the_plan():
    assert FramePlan().label == "(8 frames, midpoint)"
    assert FramePlan(fps=2, sampler="vlmevalkit").label == "(2.0 fps, vlmevalkit)"
    assert FramePlan(nframe=16, sampler="qwen_vl", storage="png").label == (
        "(16 frames, qwen_vl, png)"
    )
    assert FramePlan(fps=0.5, max_frames=32, max_side=None).card() == {
        "sampler": "midpoint",
        "frames_per_clip": "0.5 fps, at most 32",
        "frame_size": "native",
        "jpeg_quality": 90,
    }  # no frame_storage: the cards of reports from before it stay the same
    png = FramePlan(sampler="mvbench", max_side=None, storage="png").card()
    assert png["sampler"] == "mvbench" and png["frame_storage"] == "png (lossless)"
    assert FramePlan().card()["frames_per_clip"] == 8
    assert FramePlan().card()["frame_size"] == "longer side <= 448"


@pytest.mark.parametrize("sampler", ["lmms_eval_qwen", "llava_ov", "mvbench"])
def test_samplers_without_a_rate_of_their_own_refuse_fps(sampler):
    with pytest.raises(ValidationError, match=f"sampler {sampler} takes a frame count"):
        FramePlan(fps=1.0, sampler=sampler)
    assert FramePlan(nframe=16, sampler=sampler).nframe == 16
    assert FramePlan(fps=1.0, sampler="qwen_vl").fps == 1.0


def test_png_storage_is_a_literal():
    with pytest.raises(ValidationError):
        FramePlan(storage="webp")
