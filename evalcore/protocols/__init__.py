"""Protocols: whose pipeline a cell reproduces (`protocol:` per model, or the run's).

A protocol fixes, per model family and benchmark, every choice that moves a score and
that a reference pipeline makes for its users: which frames and how many, their size
and storage, the time input, prompt additions, and the answer rule. `resolve` turns
(protocol, family, benchmark, frame count) into a `Resolution`: frame-plan fields,
the transformers model's `video_input` params and the answer rule set, with what is
reproduced and what is not. Each reference's rules live in its own module, citing the
peer's source: `vlmevalkit`, `lmms_eval`, `native`; `evalcore` is ours, today's default.
"""

from evalcore.protocols.family import FRAME_BASED, family_of
from evalcore.protocols.registry import resolve
from evalcore.protocols.resolution import (
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    FrameCount,
    ProtocolError,
    Resolution,
)

__all__ = [
    "DEFAULT_PROTOCOL",
    "FRAME_BASED",
    "PROTOCOLS",
    "FrameCount",
    "ProtocolError",
    "Resolution",
    "family_of",
    "resolve",
]
