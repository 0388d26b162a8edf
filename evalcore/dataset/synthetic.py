"""A synthetic video-QA benchmark: real H.264 videos of coloured shapes, questions with
known answers, written in VLMEvalKit's video TSV layout.

It lets the whole pipeline (decode, frame cache, inference, scoring, reports) run on a
laptop with no downloads, and gives the `reference` model something it can answer.

Every question is answerable from the frames a sampler keeps: segment-midpoint uniform
sampling with 4 to 32 frames (`floor((2i+1) * N / (2 * nframe))`) and 1 fps sampling
(frames at 0 s, 1 s, ... or at 0.5 s, 1.5 s, ...). To make that so, shape 0 is on screen
from the first frame, the others appear later but before any of those samplers' last
frame (see `_appearance_frames`), and no shape ever leaves.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evalcore.atomic import atomic_path, atomic_write_text
from evalcore.dataset.sample import LETTERS

# Bump when the output for given parameters changes: an old benchmark is then rebuilt.
GENERATOR_VERSION = 1

# Well-separated colours (RGB); the reference model classifies against the same table.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "magenta": (220, 50, 220),
    "cyan": (40, 220, 220),
    "white": (240, 240, 240),
    "orange": (250, 140, 20),
}
BACKGROUND: tuple[int, int, int] = (18, 18, 26)
SHAPE_TYPES: tuple[str, ...] = ("circle", "square", "triangle")
# The fourth option of a `shape` question: never drawn.
SHAPE_DISTRACTOR = "star"
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}
CATEGORIES: tuple[str, ...] = ("count", "order", "motion", "colour", "shape")
COLUMNS: tuple[str, ...] = (
    "index",
    "video",
    "video_path",
    "question",
    "candidates",
    "answer",
    "category",
    "start",
    "end",
)

_N_OPTIONS = 4
_MAX_QUESTIONS_PER_VIDEO = 5  # count, order, motion, colour, shape
_GAP_PX = 10  # minimum empty space between two shapes' boxes (at 320x240)
_MARGIN_PX = 4  # minimum space between a shape and the frame edge (at 320x240)


@dataclass(frozen=True)
class ShapeSpec:
    """One shape of one video: drawn from frame `appears` to the end, moving rigidly."""

    colour: str
    kind: str  # one of SHAPE_TYPES
    size: int  # side of its bounding box, px
    x: int  # top-left corner of its box at frame 0, px
    y: int
    appears: int  # first frame index it is drawn on


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one video and to ask questions about it."""

    video_id: str
    n_frames: int
    fps: int
    width: int
    height: int
    direction: str  # one of DIRECTIONS
    dx: int  # total displacement over the video, px (same for every shape)
    dy: int
    shapes: tuple[ShapeSpec, ...]  # in order of appearance

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


def generate_benchmark(
    out_dir: Path,
    n_videos: int = 60,
    seed: int = 0,
    name: str = "SyntheticVQA",
    questions_per_video: int = 4,
    width: int = 320,
    height: int = 240,
    fps: int = 15,
    min_seconds: float = 2.0,
    max_seconds: float = 20.0,
) -> Path:
    """Write `out_dir/{name}.tsv` and `out_dir/videos/*.mp4`; return the TSV path.

    Deterministic by `seed`: the same parameters give byte-identical TSV and videos
    (libx264 runs single-threaded). Idempotent: when `out_dir/{name}.json` records the
    same parameters and every file is present, nothing is rewritten. The JSON is written
    last, so an interrupted run is redone rather than trusted.
    """
    _check_parameters(n_videos, questions_per_video, width, height, fps, min_seconds, max_seconds)
    out_dir = Path(out_dir)
    tsv_path = out_dir / f"{name}.tsv"
    manifest_path = out_dir / f"{name}.json"
    params = {
        "generator_version": GENERATOR_VERSION,
        "n_videos": n_videos,
        "seed": seed,
        "name": name,
        "questions_per_video": questions_per_video,
        "width": width,
        "height": height,
        "fps": fps,
        "min_seconds": min_seconds,
        "max_seconds": max_seconds,
    }
    specs = [
        plan_video(i, seed, width, height, fps, min_seconds, max_seconds) for i in range(n_videos)
    ]
    video_paths = [out_dir / "videos" / f"{s.video_id}.mp4" for s in specs]
    if _is_complete(manifest_path, params, [tsv_path, *video_paths]):
        return tsv_path

    for spec, path in zip(specs, video_paths, strict=True):
        with atomic_path(path) as tmp:
            encode_video(spec, tmp)
    import pandas as pd  # only when writing a benchmark (its importers just read constants)

    rows = []
    for spec in specs:
        for question in ask_questions(spec, seed, questions_per_video):
            rows.append({"video": spec.video_id, **question})
    table = pd.DataFrame(rows)
    table.insert(0, "index", range(len(table)))
    # Real datasets give the answer as a letter or as the option text: do both.
    as_text = table["index"] % 5 == 4
    table.loc[as_text, "answer"] = table.loc[as_text, "answer_text"]
    table["start"] = ""
    table["end"] = ""
    with atomic_path(tsv_path) as tmp:
        table[list(COLUMNS)].to_csv(tmp, sep="\t", index=False)
    manifest = {"params": params, "videos": [_spec_record(s) for s in specs]}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return tsv_path


def plan_video(
    video_index: int,
    seed: int,
    width: int = 320,
    height: int = 240,
    fps: int = 15,
    min_seconds: float = 2.0,
    max_seconds: float = 20.0,
) -> VideoSpec:
    """The content of one video, drawn from a generator seeded by (seed, video_index)."""
    rng = np.random.default_rng([seed, video_index])
    scale = min(width / 320, height / 240)
    seconds = float(rng.uniform(min_seconds, max_seconds))
    n_frames = max(2, round(seconds * fps))
    n_shapes = int(rng.integers(2, 5))
    colours = [str(c) for c in rng.choice(list(PALETTE), size=n_shapes, replace=False)]
    kinds = _shape_kinds(rng, n_shapes)
    sizes = [round(int(rng.integers(30, 46)) * scale) for _ in range(n_shapes)]
    direction = str(rng.choice(list(DIRECTIONS)))
    distance = round(int(rng.integers(80, 121)) * scale)
    ux, uy = DIRECTIONS[direction]
    dx, dy = ux * distance, uy * distance
    corners = _place_shapes(rng, sizes, width, height, dx, dy, scale)
    appears = _appearance_frames(n_frames, fps, n_shapes)
    shapes = tuple(
        ShapeSpec(colour=c, kind=k, size=s, x=x, y=y, appears=a)
        for c, k, s, (x, y), a in zip(colours, kinds, sizes, corners, appears, strict=True)
    )
    return VideoSpec(
        video_id=f"vid_{video_index:04d}",
        n_frames=n_frames,
        fps=fps,
        width=width,
        height=height,
        direction=direction,
        dx=dx,
        dy=dy,
        shapes=shapes,
    )


def render_frame(spec: VideoSpec, frame_index: int) -> np.ndarray:
    """The RGB uint8 (H, W, 3) image of one frame."""
    frame = _background(spec.width, spec.height).copy()
    ox, oy = _offset(spec, frame_index)
    for shape in spec.shapes:
        if frame_index < shape.appears:
            continue
        x, y = shape.x + ox, shape.y + oy
        box = frame[y : y + shape.size, x : x + shape.size]
        box[_sprite(shape.kind, shape.size)] = PALETTE[shape.colour]
    return frame


def encode_video(spec: VideoSpec, path: Path) -> None:
    """Encode `spec` as H.264 (yuv420p) in an MP4 at `path`, reproducibly."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=spec.fps,
            options={"preset": "ultrafast", "crf": "18", "threads": "1"},
        )
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1  # several threads make the bytes vary
        for i in range(spec.n_frames):
            frame = av.VideoFrame.from_ndarray(render_frame(spec, i), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def ask_questions(spec: VideoSpec, seed: int, questions_per_video: int = 4) -> list[dict]:
    """Questions about one video as TSV fields (without `index`/`video`).

    The first three are count, order and motion; then colour and shape questions,
    alternating which comes first by video so a 4-question benchmark has both.
    `answer` is the correct letter; `answer_text` the correct option.
    """
    number = int(spec.video_id.rsplit("_", 1)[1])
    rng = np.random.default_rng([seed, number, 1])
    shapes = spec.shapes
    present = [s.colour for s in shapes]
    absent = [c for c in PALETTE if c not in present]

    count = len(shapes)
    low = int(rng.integers(max(1, count - 3), min(count, 2) + 1))
    questions = [
        (
            "count",
            "How many shapes are visible at the end of the video?",
            str(count),
            [str(n) for n in range(low, low + _N_OPTIONS)],
        ),
        (
            "order",
            "Which colour appears first?",
            shapes[0].colour,
            [*present, *_pick(rng, absent, _N_OPTIONS - len(present))],
        ),
        (
            "motion",
            "In which direction do the shapes move?",
            spec.direction,
            list(DIRECTIONS),
        ),
    ]
    kind_counts = {k: sum(s.kind == k for s in shapes) for k in SHAPE_TYPES}
    unique = [s for s in shapes if kind_counts[s.kind] == 1]
    about = unique[int(rng.integers(len(unique)))]
    colour_q = (
        "colour",
        f"What colour is the {about.kind}?",
        about.colour,
        [about.colour, *_pick(rng, [c for c in PALETTE if c != about.colour], 3)],
    )
    target = shapes[int(rng.integers(len(shapes)))]
    shape_q = (
        "shape",
        f"What shape is the {target.colour} object?",
        target.kind,
        [*SHAPE_TYPES, SHAPE_DISTRACTOR],
    )
    questions += [colour_q, shape_q] if number % 2 == 0 else [shape_q, colour_q]

    rows = []
    for category, question, correct, options in questions[:questions_per_video]:
        order = rng.permutation(len(options))
        shuffled = [options[i] for i in order]
        rows.append(
            {
                "video_path": f"videos/{spec.video_id}.mp4",
                "question": question,
                "candidates": str(shuffled),
                "answer": LETTERS[shuffled.index(correct)],
                "answer_text": correct,
                "category": category,
            }
        )
    return rows


def _check_parameters(
    n_videos: int,
    questions_per_video: int,
    width: int,
    height: int,
    fps: int,
    min_seconds: float,
    max_seconds: float,
) -> None:
    if n_videos < 1:
        raise ValueError(f"n_videos must be >= 1, got {n_videos}")
    if not 1 <= questions_per_video <= _MAX_QUESTIONS_PER_VIDEO:
        raise ValueError(
            f"questions_per_video must be 1..{_MAX_QUESTIONS_PER_VIDEO}, got {questions_per_video}"
        )
    if width % 2 or height % 2 or width < 320 or height < 240:
        raise ValueError(f"frame size must be even and at least 320x240, got {width}x{height}")
    if fps < 10:  # fewer frames per second leave no room to stagger shapes in a 2 s video
        raise ValueError(f"fps must be >= 10, got {fps}")
    if not 2.0 <= min_seconds <= max_seconds:
        raise ValueError(f"need 2 <= min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")


def _is_complete(manifest_path: Path, params: dict, files: Sequence[Path]) -> bool:
    try:
        recorded = json.loads(manifest_path.read_text(encoding="utf-8"))["params"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return recorded == params and all(os.path.isfile(f) for f in files)


def _spec_record(spec: VideoSpec) -> dict:
    record = asdict(spec)
    record["duration"] = spec.duration
    return record


def _shape_kinds(rng: np.random.Generator, n_shapes: int) -> list[str]:
    """Random kinds with at least one kind used once, so a colour question exists."""
    while True:
        kinds = [str(k) for k in rng.choice(SHAPE_TYPES, size=n_shapes)]
        if any(kinds.count(k) == 1 for k in kinds):
            return kinds


def _place_shapes(
    rng: np.random.Generator,
    sizes: Sequence[int],
    width: int,
    height: int,
    dx: int,
    dy: int,
    scale: float,
) -> list[tuple[int, int]]:
    """Top-left corners at frame 0 such that every shape stays inside the frame for the
    whole move and no two shapes come closer than the gap (they move together, so the
    start positions decide)."""
    margin = math.ceil(_MARGIN_PX * scale)
    gap = math.ceil(_GAP_PX * scale)
    while True:
        corners: list[tuple[int, int]] = []
        for size in sizes:
            x_lo, x_hi = margin - min(dx, 0), width - margin - size - max(dx, 0)
            y_lo, y_hi = margin - min(dy, 0), height - margin - size - max(dy, 0)
            for _ in range(200):
                x = int(rng.integers(x_lo, x_hi + 1))
                y = int(rng.integers(y_lo, y_hi + 1))
                if all(
                    x + size + gap <= cx
                    or cx + cs + gap <= x
                    or y + size + gap <= cy
                    or cy + cs + gap <= y
                    for (cx, cy), cs in zip(corners, sizes, strict=False)
                ):
                    corners.append((x, y))
                    break
            else:
                break  # no room left for this shape: start the layout again
        if len(corners) == len(sizes):
            return corners


def _appearance_frames(n_frames: int, fps: int, n_shapes: int) -> list[int]:
    """First frame of each shape: 0 for shape 0, then staggered at about 26%, 48% and 70%
    of the video, squeezed where needed into the window that every supported sampler
    sees: after its first sample (which must show shape 0 alone) and no later than its
    last sample (which must show every shape)."""
    first_samples = [
        n_frames // 8,  # segment midpoints, nframe=4 (more frames: earlier)
        int(0.5 * fps),  # 1 fps at segment midpoints
        0,  # 1 fps from 0 s
    ]
    seconds = n_frames // fps
    last_samples = [
        (7 * n_frames) // 8,  # segment midpoints, nframe=4 (more frames: later)
        int((seconds - 1) * fps),  # 1 fps from 0 s: int(i * fps) for i < floor(duration)
        int((seconds - 0.5) * fps),
    ]
    lo = max(max(first_samples) + 2, round(0.26 * n_frames))
    hi = min(min(last_samples) - 1, round(0.70 * n_frames))
    slots = [lo, (lo + hi) // 2, hi]
    return [0, *slots[: n_shapes - 1]]


def _offset(spec: VideoSpec, frame_index: int) -> tuple[int, int]:
    t = frame_index / (spec.n_frames - 1)
    return round(spec.dx * t), round(spec.dy * t)


@functools.cache
def _background(width: int, height: int) -> np.ndarray:
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = BACKGROUND
    frame.flags.writeable = False
    return frame


@functools.cache
def _sprite(kind: str, size: int) -> np.ndarray:
    """Boolean (size, size) mask of a shape filling its box."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if kind == "square":
        mask = np.ones((size, size), bool)
    elif kind == "circle":
        r = size / 2
        mask = (xx - r) ** 2 + (yy - r) ** 2 <= r * r
    elif kind == "triangle":  # apex up, base on the bottom edge
        mask = np.abs(xx - size / 2) <= yy / 2
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    mask.flags.writeable = False
    return mask


def _pick(rng: np.random.Generator, pool: Sequence[str], n: int) -> list[str]:
    if n <= 0:
        return []
    return [str(c) for c in rng.choice(list(pool), size=n, replace=False)]
