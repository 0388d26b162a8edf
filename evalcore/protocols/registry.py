"""Protocols by name: `resolve` picks the reference's module."""

from __future__ import annotations

from dataclasses import replace

from evalcore.protocols import lmms_eval, native, vlmevalkit
from evalcore.protocols.resolution import FrameCount, Resolution, evalcore_settings

_BY_NAME = {"vlmevalkit": vlmevalkit, "lmms-eval": lmms_eval, "native": native}


def resolve(protocol: str, family: str, benchmark: str, count: FrameCount) -> Resolution:
    """What `protocol` sets for a model of `family` (`family_of`) on `benchmark` (an
    adapter name) with the frame setting `count`. Raises ProtocolError where the
    reference cannot run the combination, KeyError for an unknown protocol."""
    if protocol == "evalcore":
        resolution = Resolution(
            "evalcore", family, benchmark, rule_set="evalcore", reference=evalcore_settings(family)
        )
    else:
        resolution = _BY_NAME[protocol].resolve(family, benchmark, count)
    return replace(resolution, count=count)
