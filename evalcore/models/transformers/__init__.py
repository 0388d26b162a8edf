"""`kind: transformers`: Hugging Face video-LLM checkpoints, and tiny ones for tests.

Importing this package imports neither torch nor transformers; `load` and
`build_tiny_checkpoint` do.
"""

from evalcore.models.transformers.adapter import (
    TransformersModel,
    TransformersParams,
    VideoInput,
    VideoProcessorOptions,
)
from evalcore.models.transformers.tiny import TINY_ARCHS, build_tiny_checkpoint

__all__ = [
    "TINY_ARCHS",
    "TransformersModel",
    "TransformersParams",
    "VideoInput",
    "VideoProcessorOptions",
    "build_tiny_checkpoint",
]
