"""`reference`: a real torch model that answers the synthetic benchmark from its frames.

It is the CPU test model of the pipeline: deterministic, fast, and right almost always on
the synthetic categories, so a broken frame path or scorer shows as a drop in accuracy.
It reads pixels only; the question text just says which feature to report.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from evalcore.dataset.sample import LETTERS
from evalcore.dataset.synthetic import BACKGROUND, PALETTE
from evalcore.models.base import VideoRequest
from evalcore.models.registry import register_model

COLOURS = tuple(PALETTE)
MAX_COLOUR_DISTANCE = 70.0  # farther than this from every palette colour: background/edge
MIN_AREA_FRACTION = 0.0008  # a colour covering less of a frame is noise (edges, blocking)


class ShapeFeatures(nn.Module):
    """Per frame and palette colour: presence, area, centroid and bounding-box fill ratio."""

    def __init__(self) -> None:
        super().__init__()
        colours = torch.tensor([BACKGROUND, *PALETTE.values()], dtype=torch.float32)
        self.register_buffer("colours", colours)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        t, h, w, _ = frames.shape
        pixels = frames.float().reshape(-1, 1, 3)
        dist = torch.linalg.vector_norm(pixels - self.colours[None], dim=-1)  # (THW, 1+P)
        best, label = dist.min(dim=-1)
        label = torch.where(best > MAX_COLOUR_DISTANCE, 0, label).reshape(t, h, w)
        masks = label[..., None] == torch.arange(1, len(self.colours))  # (T, H, W, P)
        area = masks.sum(dim=(1, 2)).float()  # (T, P)
        ys = torch.arange(h, dtype=torch.float32)[None, :, None, None]
        xs = torch.arange(w, dtype=torch.float32)[None, None, :, None]
        safe = area.clamp(min=1)
        cy = (masks * ys).sum(dim=(1, 2)) / safe
        cx = (masks * xs).sum(dim=(1, 2)) / safe
        rows, cols = masks.any(dim=2), masks.any(dim=1)  # (T, H, P), (T, W, P)
        iy = torch.arange(h)[None, :, None]
        ix = torch.arange(w)[None, :, None]
        height = torch.where(rows, iy, -1).amax(1) - torch.where(rows, iy, h).amin(1) + 1
        width = torch.where(cols, ix, -1).amax(1) - torch.where(cols, ix, w).amin(1) + 1
        fill = area / (height.clamp(min=1) * width.clamp(min=1)).float()
        present = area >= MIN_AREA_FRACTION * h * w
        return {"present": present, "area": area, "cx": cx, "cy": cy, "fill": fill}


def shape_kind(fill: float) -> str:
    """Box fill ratio: square 1.0, circle pi/4, triangle 1/2."""
    if fill > 0.89:
        return "square"
    return "circle" if fill > 0.64 else "triangle"


class ReferenceModel:
    """Answers count / order / motion / colour / shape questions with an option letter."""

    def __init__(self) -> None:
        self.name = "reference"
        self.features = ShapeFeatures().eval()
        # A video has several questions: keep the last clips' features (keyed by frame files).
        self._recent: OrderedDict[tuple, dict[str, torch.Tensor]] = OrderedDict()

    @torch.no_grad()
    def generate(self, requests: Sequence[VideoRequest]) -> list[str]:
        return [self._answer(r) for r in requests]

    def _answer(self, request: VideoRequest) -> str:
        f = self._features(request)
        text = self._answer_text(request.question.lower(), f)
        return _letter_for(text, request.options)

    def _features(self, request: VideoRequest) -> dict[str, torch.Tensor]:
        key = tuple(str(p) for p in request.frames.paths)
        if key not in self._recent:
            self._recent[key] = self.features(torch.from_numpy(request.frames.load()))
            while len(self._recent) > 16:
                self._recent.popitem(last=False)
        return self._recent[key]

    def _answer_text(self, question: str, f: dict[str, torch.Tensor]) -> str:
        present = f["present"]
        seen = present.any(dim=0)
        if "how many" in question:
            return str(int(present[-1].sum()))
        if "appears first" in question:
            first = int(present.any(dim=1).float().argmax())  # earliest frame showing a shape
            return COLOURS[int(f["area"][first].argmax())]
        if "direction" in question:
            return _direction(f)
        if m := re.search(r"what colour is the (\w+)", question):
            kinds = {c: shape_kind(_fill(f, i)) for i, c in enumerate(COLOURS) if seen[i]}
            matches = [c for c, k in kinds.items() if k == m.group(1)]
            return matches[0] if matches else ""
        if m := re.search(r"what shape is the (\w+)", question):
            colour = m.group(1)
            return shape_kind(_fill(f, COLOURS.index(colour))) if colour in COLOURS else ""
        return ""


def _fill(f: dict[str, torch.Tensor], colour: int) -> float:
    """Fill ratio in the frame where the shape is largest (least cut by compression)."""
    t = int(f["area"][:, colour].argmax())
    return float(f["fill"][t, colour])


def _direction(f: dict[str, torch.Tensor]) -> str:
    """Track the first shape (on screen from the start) from first to last sample."""
    first = int(f["present"].any(dim=1).float().argmax())
    colour = int(f["area"][first].argmax())
    frames = torch.nonzero(f["present"][:, colour]).flatten()
    if len(frames) < 2:
        return ""
    a, b = int(frames[0]), int(frames[-1])
    dx = float(f["cx"][b, colour] - f["cx"][a, colour])
    dy = float(f["cy"][b, colour] - f["cy"][a, colour])
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _letter_for(answer: str, options: Sequence[str]) -> str:
    """The letter of the option equal to `answer`; option A when nothing matches."""
    for i, option in enumerate(options):
        if option.strip().lower() == answer:
            return LETTERS[i]
    return LETTERS[0]


@register_model("reference")
def build_reference() -> ReferenceModel:
    return ReferenceModel()
