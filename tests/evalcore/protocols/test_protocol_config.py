"""`protocol:` and VLMEvalKit's benchmark names in a config: what each sets per family,
the frame count's precedence, and the errors a user gets (naming the field)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evalcore.cell import cells_of
from evalcore.config import ConfigError, parse_config

# a checkpoint directory is all a config needs to know a model's family
FAMILIES = ("qwen2_5_vl", "qwen3_vl", "llava_onevision", "internvl")


@pytest.fixture
def files(tmp_path):
    tsv = tmp_path / "D.tsv"
    row = {"question": "Q?", "answer": "B", "candidates": "['x', 'y']"}
    pd.DataFrame([{"index": 0, "video": "v0", **row}]).to_csv(tsv, sep="\t", index=False)
    for family in FAMILIES:
        (tmp_path / family).mkdir()
        (tmp_path / family / "config.json").write_text(json.dumps({"model_type": family}))
    return tmp_path


def config(files, *, models, benchmark="generic", protocol=None, frames=None, **dataset):
    raw = {
        "datasets": [{"tsv": str(files / "D.tsv"), "benchmark": benchmark, **dataset}],
        "models": models,
        "work_dir": str(files / "work"),
        "output_dir": str(files / "out"),
    }
    if protocol:
        raw["protocol"] = protocol
    if frames:
        raw["frames"] = frames
    return parse_config(raw, source="run.yaml")


def local(files, family, **extra):
    return {
        "name": family,
        "kind": "transformers",
        "params": {"model": str(files / family)},
        **extra,
    }


def test_evalcore_is_the_default_and_changes_nothing(files):
    plain = cells_of(config(files, models=[{"name": "r", "kind": "random"}]))
    named = cells_of(config(files, models=[{"name": "r", "kind": "random"}], protocol="evalcore"))
    assert plain[0].key == named[0].key
    assert plain[0].frames.sampler == "midpoint" and plain[0].frames.max_side == 448
    assert plain[0].rule_set == "evalcore" and plain[0].card()["protocol"] == "evalcore"


def test_vlmevalkit_names_set_the_frame_count_and_the_frame_based_pipeline(files):
    cfg = config(
        files, models=[{"name": "r", "kind": "random"}], benchmark="Video-MME_64frame",
        protocol="vlmevalkit",
    )  # fmt: skip
    (cell,) = cells_of(cfg)
    assert (
        cell.dataset.benchmark == "videomme" and cell.dataset.reference_name == "Video-MME_64frame"
    )
    assert (cell.frames.sampler, cell.frames.nframe, cell.frames.fps) == ("vlmevalkit", 64, None)
    assert (cell.frames.max_side, cell.frames.jpeg_quality) == (None, 75)
    assert cell.rule_set == "vlmevalkit"
    assert cell.card()["reference_name"] == "Video-MME_64frame"


def test_mvbench_uses_its_own_index_rule_under_vlmevalkit(files):
    cfg = config(
        files, models=[{"name": "r", "kind": "random"}], benchmark="MVBench_8frame",
        protocol="vlmevalkit",
    )  # fmt: skip
    (cell,) = cells_of(cfg)
    assert (cell.frames.sampler, cell.frames.nframe) == ("mvbench", 8)


def test_subtitles_and_a_rate_from_the_name(files):
    cfg = config(files, models=[{"name": "r", "kind": "random"}], benchmark="Video-MME_0.5fps_subs")
    (cell,) = cells_of(cfg)
    assert cell.dataset.subtitles is True
    assert (cell.frames.nframe, cell.frames.fps) == (None, 0.5)
    assert cell.frames.sampler == "midpoint"  # the name sets the amount; the protocol the rule


def test_frame_count_precedence_run_then_dataset_then_model(files):
    models = [
        {"name": "r", "kind": "random"},
        {"name": "s", "kind": "random", "frames": {"fps": 2}},
    ]
    cfg = config(files, models=models, benchmark="Video-MME_64frame", frames={"nframe": 4})
    by_model = {c.model.name: c.frames for c in cells_of(cfg)}
    assert (by_model["r"].nframe, by_model["r"].fps) == (64, None)  # the dataset's over the run's
    assert (by_model["s"].nframe, by_model["s"].fps) == (None, 2.0)  # the model's over both


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_qwen_under_vlmevalkit_gets_qwen_vl_utils_frames_lossless_and_its_video_input(
    files, family
):
    cfg = config(files, models=[local(files, family)], benchmark="Video-MME_64frame",
                 protocol="vlmevalkit")  # fmt: skip
    (cell,) = cells_of(cfg)
    assert (cell.frames.sampler, cell.frames.nframe, cell.frames.storage) == ("qwen_vl", 64, "png")
    assert cell.frames.max_side is None
    video_input = cell.model.params["video_input"]
    assert video_input["resize"] == "qwen_vl"
    if family == "qwen2_5_vl":
        assert video_input["time_input"] == "none"  # VLMEvalKit passes no fps: the quirk
        assert (video_input["min_pixels"], video_input["max_pixels"]) == (1280 * 784, 16384 * 784)
    else:
        assert video_input["time_input"] == "metadata" and video_input["image_patch_size"] == 16
    assert cell.rule_set == "vlmevalkit" and cell.card()["family"] == family


def test_a_models_own_video_input_key_wins_over_the_protocols(files):
    own = local(files, "qwen2_5_vl")
    # VLMEvalKit's -ForVideo entry (the keys must be valid on their own: resize too)
    own["params"]["video_input"] = {"resize": "qwen_vl", "total_pixels": 24576 * 784}
    (cell,) = cells_of(config(files, models=[own], protocol="vlmevalkit"))
    assert cell.model.params["video_input"]["total_pixels"] == 24576 * 784
    assert cell.model.params["video_input"]["min_pixels"] == 1280 * 784


def test_qwen_under_native_and_lmms_eval(files):
    (native,) = cells_of(config(files, models=[local(files, "qwen2_5_vl")], protocol="native"))
    assert (native.frames.sampler, native.frames.nframe, native.frames.fps) == (
        "qwen_vl",
        None,
        2.0,
    )
    assert native.model.params["video_input"]["time_input"] == "metadata"
    assert native.rule_set == "evalcore"
    (lmms,) = cells_of(config(files, models=[local(files, "qwen2_5_vl")], protocol="lmms-eval"))
    assert (lmms.frames.sampler, lmms.frames.nframe) == ("lmms_eval_qwen", 32)
    assert lmms.model.params["video_input"]["budget_fps"] == 2.0
    assert lmms.rule_set == "lmms-eval"


def test_llava_onevision_under_vlmevalkit(files):
    cfg = config(files, models=[local(files, "llava_onevision")], benchmark="Video-MME_8frame",
                 protocol="vlmevalkit")  # fmt: skip
    (cell,) = cells_of(cfg)
    assert (cell.frames.sampler, cell.frames.nframe, cell.frames.storage) == ("llava_ov", 8, "png")
    assert cell.model.params["video_input"] == {"prompt": "llava_ov_times"}


def test_a_protocol_only_changing_the_rule_keeps_the_answers(files):
    """lmms-eval has no frame-based pipeline of its own: the frames stay ours, so the
    cell's answers are the evalcore cell's, re-scored under lmms-eval's rule."""
    models = [{"name": "r", "kind": "random"}]
    (ours,) = cells_of(config(files, models=models))
    (theirs,) = cells_of(config(files, models=models, protocol="lmms-eval"))
    assert ours.key == theirs.key and theirs.rule_set == "lmms-eval"
    assert theirs.card()["not_reproduced"]


def test_errors_name_the_field(files):
    with pytest.raises(
        ConfigError, match=r"models\.0\.protocol: VLMEvalKit's LLaVA-OneVision cannot"
    ):
        config(files, models=[local(files, "llava_onevision")], benchmark="Video-MME_1fps",
               protocol="vlmevalkit")  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"models\.0\.frames\.max_side: protocol vlmevalkit fixes"
    ):
        config(files, models=[local(files, "qwen2_5_vl", frames={"max_side": 448})],
               protocol="vlmevalkit")  # fmt: skip
    with pytest.raises(ConfigError, match=r"datasets\.0.*subtitles: False contradicts"):
        config(files, models=[{"name": "r", "kind": "random"}], benchmark="Video-MME_8frame_subs",
               subtitles=False)  # fmt: skip
    with pytest.raises(ConfigError, match=r"MLVU_8frame pools MLVU_MCQ and MLVU_OpenEnded"):
        config(files, models=[{"name": "r", "kind": "random"}], benchmark="MLVU_8frame")
    with pytest.raises(ConfigError, match=r"models\.0\.protocol: Input should be"):
        config(files, models=[{"name": "r", "kind": "random", "protocol": "vlmeval"}])
