"""VLMEvalKit's benchmark names, accepted as `datasets[].benchmark` as they are.

A name there is a dataset and a frame setting (vlmeval/dataset/video_dataset_config.py
at e8e78f05: `'Video-MME_64frame': partial(VideoMME, dataset='Video-MME', nframe=64)`,
lines 23-129), sometimes subtitles or packing too. `reference_name` maps one to our
adapter and what it implies; `DatasetSpec` keeps the name for reports. Pooled names
(`MLVU_8frame` = MLVU_MCQ + MLVU_OpenEnded, `TempCompass_1fps` = its three files) are
one TSV per file here: each file gets its own dataset entry with its part's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReferenceName:
    """What a VLMEvalKit name sets: our adapter, the frame setting, other fields."""

    benchmark: str
    frames: dict[str, Any] = field(default_factory=dict)  # {"nframe": 64} or {"fps": 1.0}
    fields: dict[str, Any] = field(default_factory=dict)  # subtitles, pack


def _settings(stem: str, benchmark: str, nframes=(), rates=(), subs=()) -> dict[str, ReferenceName]:
    out = {stem: ReferenceName(benchmark)}
    for n in nframes:
        out[f"{stem}_{n}frame"] = ReferenceName(benchmark, {"nframe": n})
    for rate in rates:
        out[f"{stem}_{rate:g}fps"] = ReferenceName(benchmark, {"fps": float(rate)})
    for suffix, frames in subs:
        out[f"{stem}_{suffix}_subs"] = ReferenceName(benchmark, frames, {"subtitles": True})
    return out


REFERENCE_NAMES: dict[str, ReferenceName] = {
    # video_dataset_config.py lines 47-52
    **_settings(
        "Video-MME",
        "videomme",
        nframes=(8, 64),
        rates=(1, 0.5),
        subs=(("8frame", {"nframe": 8}), ("0.5fps", {"fps": 0.5})),
    ),
    # lines 111-116
    **_settings(
        "LongVideoBench",
        "longvideobench",
        nframes=(8, 64),
        rates=(1, 0.5),
        subs=(("8frame", {"nframe": 8}), ("0.5fps", {"fps": 0.5})),
    ),
    # lines 33-34 (MVBench_MP4 reads other files with other rules: not accepted)
    **_settings("MVBench", "mvbench", nframes=(8, 64)),
    # the parts of the pooled MLVU and TempCompass (vlmeval/dataset/mlvu.py, tempcompass.py)
    "MLVU_MCQ": ReferenceName("mlvu"),
    "MLVU_OpenEnded": ReferenceName("mlvu_open"),
    "TempCompass_MCQ": ReferenceName("tempcompass"),
    "TempCompass_YorN": ReferenceName("tempcompass"),
    "TempCompass_Captioning": ReferenceName("tempcompass_captioning"),
    # lines 23-29
    "MMBench-Video": ReferenceName("mmbench_video"),
    **{
        f"MMBench_Video_{setting}_{pack}": ReferenceName(
            "mmbench_video", frames, {"pack": pack == "pack"}
        )
        for setting, frames, packs in (
            ("8frame", {"nframe": 8}, ("pack", "nopack")),
            ("16frame", {"nframe": 16}, ("nopack",)),
            ("64frame", {"nframe": 64}, ("pack", "nopack")),
            ("1fps", {"fps": 1.0}, ("pack", "nopack")),
        )
        for pack in packs
    },
}

# Pooled names: one TSV per part here.
POOLED: dict[str, str] = {
    "MLVU": "MLVU_MCQ and MLVU_OpenEnded",
    "TempCompass": "TempCompass_MCQ, TempCompass_YorN and TempCompass_Captioning",
}


def pooled_hint(name: str) -> str | None:
    """For a pooled VLMEvalKit name (`MLVU_8frame`): how to say it here, else None."""
    stem, _, setting = name.partition("_")
    parts = POOLED.get(stem)
    if parts is None or setting in ("MCQ", "OpenEnded", "YorN", "Captioning"):
        return None
    frames = ""
    if setting.endswith("frame"):
        frames = f" and frames.nframe: {setting.removesuffix('frame')}"
    elif setting.endswith("fps"):
        frames = f" and frames.fps: {setting.removesuffix('fps')}"
    return f"{name} pools {parts}: give each TSV its own dataset entry with its part's name{frames}"
