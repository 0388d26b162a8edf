"""Which family a model belongs to, for a protocol: the checkpoint's architecture for
`kind: transformers` (its `config.json` `model_type`), else the frame-based path (API
models, the reference and random stand-ins, your own kinds: they get sampled frames
and no processor of a reference's)."""

from __future__ import annotations

from typing import Any

FRAME_BASED = "frame-based"


def family_of(kind: str, params: dict[str, Any]) -> str:
    """A family name of `evalcore.models.transformers.families` (`qwen2_5_vl`, ...,
    `generic`) for a transformers checkpoint, `FRAME_BASED` for every other kind. Reads
    the checkpoint's config.json (already read once when the params were validated)."""
    if kind != "transformers":
        return FRAME_BASED
    from evalcore.models.transformers.adapter import locate_checkpoint
    from evalcore.models.transformers.families import family_for

    checkpoint = locate_checkpoint(
        params["model"], params.get("revision"), params.get("allow_network", False)
    )
    return family_for(checkpoint.model_type()).name
