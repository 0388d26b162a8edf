"""`results_storage`: the inference units' results on a Prefect storage block. A block
the server does not have fails the run before any work (a `StorageError`: exit 2); a
block that exists holds the results, and a unit's cache-hit check reads it there. The
S3 block over simulated hosts: tests/flows/test_pool_hosts.py."""

from __future__ import annotations

import pytest

from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.storage import StorageError
from tasks.inference import _Persisted, check_results_storage


def config(tmp_path, small_bench, results_storage=None) -> EvalConfig:
    return EvalConfig(
        datasets=[DatasetSpec(tsv=small_bench)],
        models=[ModelSpec(name="r", kind="random")],
        work_dir=tmp_path / "work",
        output_dir=tmp_path / "out",
        results_storage=results_storage,
    )


def test_a_block_the_server_does_not_have_fails_before_any_work(
    prefect_harness, tmp_path, small_bench
):
    check_results_storage(config(tmp_path, small_bench))  # none named: nothing to check
    for missing in ("local-file-system/nowhere", "no-such-type/results"):
        with pytest.raises(StorageError, match=f"results_storage: no block '{missing}'"):
            check_results_storage(config(tmp_path, small_bench, missing))
    assert not (tmp_path / "work").exists()


def test_a_unit_is_a_cache_hit_only_when_its_record_is_in_the_block(
    prefect_harness, tmp_path, small_bench
):
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore

    from evalcore.cell import cells_of, extract_dataset_frames
    from evalcore.inference import infer_inline
    from evalcore.models import Runtime
    from evalcore.workspace import Workspace

    LocalFileSystem(basepath=str(tmp_path / "bucket")).save("results", overwrite=True)
    run = config(tmp_path, small_bench, "local-file-system/results")
    check_results_storage(run)
    persisted = _Persisted(run.results_storage)
    cell, ws = cells_of(run)[0], Workspace.of(run)
    extract_dataset_frames(cell.dataset, cell.frames, ws)  # what a unit's key is made of
    infer_inline(cell, ws, Runtime(device="cpu"))  # its logs: complete (else never a hit)
    options, cached = persisted.options(cell, ws, "infer")
    assert options["result_storage"] == "local-file-system/results" and not cached

    key = options["cache_key_fn"](None, {})
    ResultStore(result_storage=persisted.store.result_storage).persist_result_record(
        persisted.store.create_result_record({"answered": 1}, key=key)
    )
    assert (tmp_path / "bucket" / key).exists()
    assert persisted.options(cell, ws, "infer")[1]  # read through the block: a hit
    (tmp_path / "bucket" / key).write_text("not a result record")
    assert not persisted.options(cell, ws, "infer")[1]  # damaged: a miss, never trusted
