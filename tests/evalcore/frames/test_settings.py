"""FrameSettings refuses a boolean where a number is meant, naming the field."""

import pytest
import yaml
from pydantic import ValidationError

from evalcore.frames import FrameSettings


@pytest.mark.parametrize(
    "field", ["nframe", "max_frames", "max_side", "jpeg_quality", "workers", "fps"]
)
def test_a_yaml_boolean_is_refused_naming_the_field(field):
    raw = yaml.safe_load(f"{field}: true")
    with pytest.raises(ValidationError) as info:
        FrameSettings(**raw)
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    kind = "a number" if field == "fps" else "a whole number"
    assert error["msg"] == f"{field} must be {kind}, not the boolean true"


@pytest.mark.parametrize("field", ["nframe", "max_frames", "max_side", "jpeg_quality", "workers"])
def test_a_fractional_number_is_refused_for_a_whole_number_field(field):
    with pytest.raises(ValidationError, match=f"{field}\n.*fractional part"):
        FrameSettings(**{field: 8.5})


def test_yaml_numbers_still_work():
    settings = FrameSettings(
        **yaml.safe_load("nframe: 8\nmax_frames: 32\nmax_side: 224\njpeg_quality: 80\nworkers: 3")
    )
    assert (settings.nframe, settings.max_frames, settings.max_side) == (8, 32, 224)
    assert (settings.jpeg_quality, settings.workers) == (80, 3)
    assert FrameSettings(**yaml.safe_load("fps: 2")).fps == 2.0
    assert FrameSettings(**yaml.safe_load("max_side: null")).max_side is None


def test_the_sampler_is_named_in_yaml_and_checked():
    assert FrameSettings().sampler == "midpoint"
    settings = FrameSettings(**yaml.safe_load("nframe: 8\nsampler: vlmevalkit"))
    assert settings.sampler == "vlmevalkit"
    with pytest.raises(ValidationError) as info:
        FrameSettings(**yaml.safe_load("sampler: decord"))
    (error,) = info.value.errors()
    assert error["loc"] == ("sampler",)
    assert (
        "'midpoint', 'vlmevalkit', 'qwen_vl', 'lmms_eval_qwen', 'llava_ov' or 'mvbench'"
        in (error["msg"])
    )
    png = FrameSettings(**yaml.safe_load("nframe: 16\nsampler: qwen_vl\nstorage: png"))
    assert (png.sampler, png.storage) == ("qwen_vl", "png")
