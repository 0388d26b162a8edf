"""The `demo` flow: generate the synthetic benchmark, evaluate both built-in models."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from flows.eval import eval_flow
from tasks.data import generate_synthetic


def demo_config(tsv: Path, output_dir: Path, work_dir: Path) -> EvalConfig:
    return EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[
            ModelSpec(name="reference", kind="reference"),
            ModelSpec(name="random", kind="random"),
        ],
        output_dir=output_dir,
        work_dir=work_dir,
    )


@flow(name="demo", log_prints=True)
def demo_flow(
    videos: int = 60,
    seed: int = 0,
    data_dir: Path = Path("data/synthetic"),
    output_dir: Path = Path("outputs"),
    work_dir: Path = Path("work"),
) -> dict:
    tsv = generate_synthetic(Path(data_dir), videos, seed)
    return eval_flow(demo_config(tsv, Path(output_dir), Path(work_dir)))
