"""`reference`: a real torch model that answers the synthetic benchmark from its frames.

It is the pipeline's CPU test model: deterministic, fast, and right almost always on the
synthetic categories, so a broken frame path, sampler or scorer shows up as a drop in
accuracy. It sees pixels only; the question text just says which feature to report, and
the options are matched by the words they contain. The network is
`evalcore.models.reference_net.ReferenceNet`, imported by `load` (with torch): a process
that only names this kind (its params, its identity) never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from evalcore.models.base import (
    BaseVideoModel,
    GenerationConfig,
    ModelError,
    ModelParams,
    Runtime,
    VideoRequest,
)

if TYPE_CHECKING:
    from evalcore.models.reference_net import ReferenceNet


class ReferenceParams(ModelParams):
    """The detector's thresholds (defaults fit the synthetic benchmark)."""

    cache_size: int = Field(default=16, ge=0, description="Clips whose detections are kept.")
    foreground_distance: float = Field(default=60.0, gt=0)
    colour_tolerance: float = Field(default=80.0, gt=0)
    min_area_fraction: float = Field(default=0.002, gt=0, lt=1)


class ReferenceModel(BaseVideoModel):
    """`reference`: the oracle for the synthetic benchmark (see `ReferenceNet`)."""

    Params = ReferenceParams
    preload_modules = ("evalcore.models.reference_net",)

    def __init__(self, params: ReferenceParams) -> None:
        super().__init__(params)
        self.name = "reference"
        self.net: ReferenceNet | None = None

    def load(self, runtime: Runtime) -> None:
        super().load(runtime)
        from evalcore.models.reference_net import ReferenceNet

        p = self.params
        self.net = ReferenceNet(
            p.cache_size, p.foreground_distance, p.colour_tolerance, p.min_area_fraction
        ).to(runtime.device)

    def generate(
        self, requests: Sequence[VideoRequest], generation: GenerationConfig
    ) -> list[str | ModelError]:
        if self.net is None:
            self.load(self.runtime)
        return self.net.generate(requests)
