"""Build `workdir_v1/`: a work dir and cell reports made by the code of its commit, which
`tests/evalcore/test_old_workdir.py` opens with today's code (every answer must still
count, every frame must still be a cache hit). The data in the repository was made at
commit af023ad (before `CellTrials` and `FramePlan`); keep it: data made by today's code
proves nothing about yesterday's. A new on-disk format gets a new folder (`workdir_v2`).

Run from the repository root: `python tests/evalcore/data/make_workdir_v1.py`. It
builds in a fixed place (the frame index's name hashes the TSV's absolute path; the
test checks that name against the recorded path), then copies what the test needs:
the benchmark (tiny videos), the frame cache without its fingerprint memo, the frame
indexes, the prediction logs and the cell reports (JSON and xlsx).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

BUILD = Path("/tmp/evalcore-workdir-v1")  # recorded in config.json: the test needs it
OUT = Path(__file__).resolve().parent / "workdir_v1"


def main() -> None:
    from evalcore.cell import CellTrials, cells_of, extract_dataset_frames, frame_plans
    from evalcore.config import EvalConfig
    from evalcore.dataset.synthetic import generate_benchmark
    from evalcore.inference import infer_inline
    from evalcore.reports import report_cell
    from evalcore.workspace import Workspace

    shutil.rmtree(BUILD, ignore_errors=True)
    tsv = generate_benchmark(
        BUILD / "bench",
        n_videos=3,
        seed=11,
        name="Old",
        questions_per_video=3,
        width=320,
        height=240,
        fps=10,
        min_seconds=2,
        max_seconds=3,
    )
    raw = {
        "work_dir": str(BUILD / "work"),
        "output_dir": str(BUILD / "output"),
        "trials": 2,
        "frames": {"nframe": 4, "max_side": 32},
        "datasets": [{"tsv": str(tsv)}],
        "models": [
            {"name": "ref", "kind": "reference"},
            {
                "name": "ref-fps",
                "kind": "reference",
                "frames": {"fps": 2, "max_frames": 3, "sampler": "vlmevalkit", "jpeg_quality": 80},
            },
            {"name": "rand", "kind": "random"},
        ],
    }
    config = EvalConfig.model_validate(raw)
    ws = Workspace(config.work_dir, config.output_dir)
    for dataset, frames in frame_plans(cells_of(config)):
        assert extract_dataset_frames(dataset, frames, ws).failed == 0
    cells = cells_of(config)
    for cell in cells:
        assert infer_inline(cell, ws).failed == 0
    for trials in CellTrials.group(cells):
        report_cell(trials, ws)

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    shutil.copytree(BUILD / "bench", OUT / "bench")
    work = BUILD / "work"
    ignore = shutil.ignore_patterns("fingerprints.sqlite*", ".locks", "*.lock")
    for part in ("frames", "frame-index", "predictions"):
        shutil.copytree(work / part, OUT / "work" / part, ignore=ignore)
    for model in config.models:
        shutil.copytree(BUILD / "output" / model.name, OUT / "output" / model.name)
    (OUT / "config.json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
