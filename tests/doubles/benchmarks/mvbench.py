"""Videos in the forms MVBench ships (MP4, GIF, WebM, folders of JPEG frames) whose
pixels say which frame they are, and a small dataset in MVBench's layout.

Every frame shows its number as `tests.doubles.videos.frame_pattern` draws it, so
a test can check that a decoder returned the right frames, whatever the container.
"""

from __future__ import annotations

from pathlib import Path

import av
import pandas as pd
from PIL import Image

from tests.doubles.videos import frame_pattern, write_video

WIDTH, HEIGHT = 160, 120


def write_gif(path: Path, n_frames: int, duration_ms: int = 100) -> Path:
    """An animated GIF made by PIL, `duration_ms` per frame; frame i shows i."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [Image.fromarray(frame_pattern(i, WIDTH, HEIGHT)) for i in range(n_frames)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path


def webm_codec() -> str | None:
    """A VP9 (else VP8) encoder in this PyAV build, or None."""
    for codec in ("libvpx-vp9", "libvpx"):
        try:
            av.codec.Codec(codec, "w")
        except Exception:
            continue
        return codec
    return None


def write_webm(path: Path, n_frames: int, fps: int = 15, gop: int = 10) -> Path:
    """A WebM (VP9 or VP8) made by PyAV; frame i shows i. Needs `webm_codec()`."""
    codec = webm_codec()
    if codec is None:
        raise RuntimeError("no VP8/VP9 encoder in this PyAV build")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="webm") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, WIDTH, HEIGHT), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_frame_folder(folder: Path, n_frames: int, suffix: str = ".jpg") -> Path:
    """MVBench's frame folders: 00001.jpg, 00002.jpg, ...; the k-th file (from 0) shows k."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_frames):
        image = Image.fromarray(frame_pattern(k, WIDTH, HEIGHT))
        image.save(folder / f"{k + 1:05d}{suffix}", quality=95)
    return folder


# --- a small MVBench ------------------------------------------------------------------
# As VLMEvalKit's MVBench.prepare_dataset writes MVBench.tsv: one row per question with
# task_type, prefix (the task's video folder, relative to the dataset folder), data_type,
# bound, start, end, video (file name with its suffix, or a frame folder's name),
# question, answer (the option's TEXT), candidates (a Python list), then index.

STAR = "video/star/Charades_v1_480/"
SSV2 = "video/ssv2_video/"
TVQA = "video/tvqa/frames_fps3_hq/"
CLEVRER = "video/clevrer/video_validation/"
PERCEPTION = "video/perception/videos/"
SEQUENCE = ["Took the cup.", "Opened the door.", "Sat on the bed.", "Closed the box."]
PUSHING = [
    "Pushing something from left to right.",
    "Pushing something from right to left.",
    "Not sure",
]
WHY = [
    "He lost his keys.",
    "Someone sat in his spot.",
    "The food is cold.",
    "His train is late.",
    "It is raining.",
]
WHERE = ["In the car.", "At work.", "In the apartment.", "In a restaurant.", "Outside."]

# fmt: off
# (task_type, prefix, data_type, bound, start, end, video, question, answer, candidates);
# index = position. Videos: clip.mp4 45 frames at 15 fps (3 s), g.gif 20 frames of
# 100 ms, the TVQA folder 12 JPEGs (4 s at 3 fps), video_10000.mp4 30 frames, order.mp4 20.
ROWS = [
    # Action Sequence: Charades clips with bounds
    ("Action Sequence", STAR, "video", True, 1.0, 2.0, "clip.mp4",
     "What did the person do first?", "Opened the door.", SEQUENCE),
    ("Action Sequence", STAR, "video", True, 0.0, 3.0, "clip.mp4",
     "What did the person do last?", "Closed the box.", SEQUENCE),
    # bound False although start/end are given: the whole video counts
    ("Action Sequence", STAR, "video", False, 1.0, 2.0, "clip.mp4",
     "What did the person take?", "The cup.", ["The cup.", "The book.", "The phone.",
                                               "The towel."]),
    # Action Antonym: a GIF, no bounds
    ("Action Antonym", SSV2, "gif", False, None, None, "g.gif",
     "What is the action performed by the person in the video?",
     "Pushing something from left to right.", PUSHING),
    ("Action Antonym", SSV2, "gif", False, None, None, "g.gif",
     "Which way does the object move?", "Right.", ["Left.", "Right.", "Up."]),
    # Episodic Reasoning: a TVQA folder of frames, with bounds
    ("Episodic Reasoning", TVQA, "frame", True, 1.0, 3.0, "s01e01_seg01_clip_00",
     "Why is Sheldon upset?", "Someone sat in his spot.", WHY),
    ("Episodic Reasoning", TVQA, "frame", True, 0.0, 4.0, "s01e01_seg01_clip_00",
     "Where are they?", "In the apartment.", WHERE),
    # Moving Count: one-character answers; "3" is the TEXT of option B
    ("Moving Count", CLEVRER, "video", False, None, None, "video_10000.mp4",
     "How many metal objects are moving?", "3", ["2", "3", "4"]),
    ("Moving Count", CLEVRER, "video", False, None, None, "video_10000.mp4",
     "How many cubes enter the scene?", "0", ["1", "0", "2"]),
    ("Moving Count", CLEVRER, "video", False, None, None, "video_10000.mp4",
     "How many spheres are there?", "2", ["2", "4", "5"]),
    # Character Order: options that are letters; the answer "a" is the TEXT of option B
    ("Character Order", PERCEPTION, "video", False, None, None, "order.mp4",
     "What letter did the person write first?", "a", ["c", "a", "b"]),
]
WEBM_ROW = ("Fine-grained Action", SSV2, "video", False, None, None, "w.webm",
            "What is happening?", "Folding paper.", ["Folding paper.", "Cutting paper."])
COLUMNS = ["task_type", "prefix", "data_type", "bound", "start", "end", "video", "question",
           "answer", "candidates"]
# fmt: on


def build_mvbench(root: Path, with_webm: bool | None = None) -> Path:
    """MVBench's layout under `root` (videos, frame folder, MVBench.tsv); returns the TSV.

    `with_webm` (default: when this PyAV build can encode one) adds a WebM question.
    """
    write_video(root / STAR / "clip.mp4", n_frames=45, gop=12)
    write_gif(root / SSV2 / "g.gif", n_frames=20)
    write_frame_folder(root / TVQA / "s01e01_seg01_clip_00", n_frames=12)
    write_video(root / CLEVRER / "video_10000.mp4", n_frames=30)
    write_video(root / PERCEPTION / "order.mp4", n_frames=20)
    rows = list(ROWS)
    if with_webm is None:
        with_webm = webm_codec() is not None
    if with_webm:
        write_webm(root / SSV2 / "w.webm", n_frames=30)
        rows.append(WEBM_ROW)
    frame = pd.DataFrame([dict(zip(COLUMNS, row, strict=True)) for row in rows])
    frame["candidates"] = frame["candidates"].map(repr)
    frame = frame.assign(index=range(len(frame)))  # as VLMEvalKit: index is the last column
    tsv = root / "MVBench.tsv"
    frame.to_csv(tsv, sep="\t", index=False)  # bound as True/False, a missing start as ""
    return tsv
