"""Real H.264 videos whose pixels say which frame they are.

Tests and the benchmark need videos they can make on the spot (no downloads) and a way
to check that a decoder returned the *right* frames, not just some frames. Each frame
carries its number as a row of black/white bars (one bar per bit, most significant
first) across the top quarter; the rest is a moving texture so the encoder does real
motion-compensated work. Bars survive compression and downscaling, so
`read_frame_number` works on decoded, resized JPEG frames too.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 16  # frame numbers up to 65535: a 300 s clip at 60 fps fits
_BLACK, _WHITE = 16, 235  # limited-range luma extremes, so no clipping after YUV round trips


def frame_pattern(
    number: int,
    width: int,
    height: int,
    *,
    texture: np.ndarray | None = None,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """RGB uint8 frame (height, width, 3) encoding `number` in its top band.

    `texture` (from `moving_texture`) slides 4 px per frame; `noise` (int16, same shape
    as the frame) imitates sensor grain so the bitrate and decode cost are realistic.
    """
    if texture is None:
        img = np.full((height, width, 3), 128, np.uint8)
        # a slow horizontal gradient that shifts per frame: cheap, still not static
        ramp = (np.arange(width, dtype=np.int32) * 2 + number * 3) % 200 + 28
        img[:, :, 1] = ramp.astype(np.uint8)[None, :]
    else:
        shift = (number * 4) % (texture.shape[1] - width)
        img = texture[:height, shift : shift + width].copy()
    if noise is not None:
        img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    band = max(4, height // 4)
    edges = np.linspace(0, width, BITS + 1).astype(int)
    for bit in range(BITS):
        on = (number >> (BITS - 1 - bit)) & 1
        img[:band, edges[bit] : edges[bit + 1]] = _WHITE if on else _BLACK
    return img


def read_frame_number(rgb: np.ndarray) -> int:
    """Inverse of `frame_pattern`: the frame number from a decoded (maybe resized) frame."""
    height, width = rgb.shape[:2]
    band = max(4, height // 4)
    edges = np.linspace(0, width, BITS + 1)
    luma = rgb[: max(1, band * 3 // 4), :, :].mean(axis=2)
    number = 0
    for bit in range(BITS):
        # the middle half of each bar: away from edges blurred by scaling and chroma
        lo = int(edges[bit] + (edges[bit + 1] - edges[bit]) / 4)
        hi = max(lo + 1, int(edges[bit + 1] - (edges[bit + 1] - edges[bit]) / 4))
        number = (number << 1) | int(luma[:, lo:hi].mean() > 128)
    return number


def moving_texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture wider than the frame; sliding it makes realistic motion."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 2, (width * 2) // 8 + 2, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1).astype(np.int16)
    noise = rng.integers(-12, 13, big.shape, dtype=np.int16)
    return np.clip(big + noise, 0, 255).astype(np.uint8)


def write_video(
    path: Path,
    *,
    n_frames: int,
    fps: int = 15,
    width: int = 160,
    height: int = 120,
    gop: int = 250,
    preset: str = "veryfast",
    crf: int = 18,
    container: str | None = None,
    frame_times: Sequence[float] | None = None,
    textured: bool = False,
    keyframes: Sequence[int] = (),
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode an H.264 video with libx264; frame i shows the number i.

    `gop` is the keyframe interval (x264's default keyint is 250); presets other than
    ultrafast use B-frames, so presentation and decode order differ as in real files.
    `frame_times` (seconds, increasing) makes a variable-frame-rate file; `container`
    forces a muxer (e.g. "mpegts") when the suffix is not enough. `textured` adds a
    moving texture and grain (about 8 Mbit/s at 720p with ultrafast, crf 23), which the
    benchmark needs so that decoding costs what it costs on real footage. `keyframes`
    forces keyframes at those frame numbers (besides every `gop` frames at most), to
    imitate the irregular keyframes that scene cuts give real videos. `pix_fmt`
    yuv444p allows odd widths and heights (4:2:0 needs even ones).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    texture = moving_texture(width, height) if textured else None
    forced = set(keyframes)
    rng = np.random.default_rng(1)
    grain = [rng.integers(-10, 11, (height, width, 3), dtype=np.int16) for _ in range(8 * textured)]
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        stream.options = {
            "preset": preset,
            "crf": str(crf),
            "x264-params": f"keyint={gop}:min-keyint={min(gop, 25)}:scenecut=0",
        }
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(
                frame_pattern(
                    i, width, height, texture=texture, noise=grain[i % 8] if textured else None
                ),
                format="rgb24",
            )
            if i in forced:
                frame.pict_type = av.video.frame.PictureType.I
            if frame_times is not None:
                frame.pts = round(frame_times[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
