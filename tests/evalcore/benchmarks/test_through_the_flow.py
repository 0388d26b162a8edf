"""Every adapter through the whole `eval` flow in one run: its layout loads, its videos
(mp4, gif, webm, frame folders) give frames, its prompt reaches the model, and the cell
report carries its breakdowns and the reproducibility card."""

from __future__ import annotations

import json

from evalcore.benchmarks import adapter_of, load_samples
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from flows.eval import eval_flow
from tests.doubles.benchmarks.mlvu_tempcompass import build_mlvu, build_tempcompass
from tests.doubles.benchmarks.mvbench import build_mvbench


def test_every_benchmark_through_one_eval_run(
    prefect_harness, tmp_path, videomme_root, longvideobench_root
):
    datasets = [
        DatasetSpec(tsv=videomme_root / "Video-MME.tsv", benchmark="videomme", subtitles=True),
        DatasetSpec(tsv=longvideobench_root / "LongVideoBench.tsv", benchmark="longvideobench"),
        DatasetSpec(tsv=build_mvbench(tmp_path / "mvbench"), benchmark="mvbench"),
        DatasetSpec(tsv=build_mlvu(tmp_path / "mlvu"), benchmark="mlvu"),
        DatasetSpec(tsv=build_tempcompass(tmp_path / "tempcompass"), benchmark="tempcompass"),
    ]
    config = EvalConfig(
        datasets=datasets,
        models=[ModelSpec(name="random", kind="random")],
        frames={"nframe": 4},
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
    )
    outcome = eval_flow(config)
    rows = {r["dataset"]: r for r in outcome["leaderboard"]}
    assert len(rows) == 5
    for dataset in datasets:
        row = rows[dataset.dataset_name]
        assert row["failed"] == 0 and row["n"] == len(load_samples(dataset)), row
        report = json.loads(
            (tmp_path / "out" / "random" / f"random_{dataset.dataset_name}.json").read_text()
        )
        adapter = adapter_of(dataset)
        assert set(report["breakdowns"]) == set(adapter.breakdowns), dataset.benchmark
        card = report["settings"]["card"]
        assert card["benchmark"] == dataset.benchmark
        assert card["prompt_template"] == adapter.template
        assert card["extraction_rule"] == adapter.rule
