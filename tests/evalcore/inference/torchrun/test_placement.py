"""Shards placed on other hosts (`inference.placement: pool`), the parts that need no
cluster: the config's rules (named by file, line and field), the `ShardOrder` that
travels as a flow-run parameter and is rebuilt on the host, and a host's device-group
locks. The whole path over simulated hosts: tests/flows/test_pool_hosts.py."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from evalcore.cell import cells_of
from evalcore.config import ConfigError, EvalConfig, load_config
from evalcore.inference.torchrun.placement import (
    OrderMismatch,
    ShardOrder,
    device_lock_dir,
    host_device_groups,
    take_device_group,
)
from evalcore.inference.torchrun.plan import DeviceGroup, dataset_videos, plan_shards
from evalcore.predictions.lock import UnitLock
from evalcore.workspace import Workspace

POOL = {"launcher": "torchrun", "placement": "pool", "shards": 4, "cpu_groups": 2}


def write(tmp_path: Path, bench: Path, **changes) -> Path:
    raw = {
        "datasets": [{"tsv": str(bench)}],
        "models": [{"name": "r", "kind": "random"}, {"name": "ref", "kind": "reference"}],
        "inference": dict(POOL),
        "work_dir": str(tmp_path / "work"),
        "local_dir": str(tmp_path / "local"),
        **changes,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"local_dir": None}, r"local_dir: inference\.placement: pool runs shards on other hosts"),
        ({"inference": {**POOL, "shards": None}}, r"inference: .*shards: placement: pool needs"),
        (
            {"inference": {**POOL, "launcher": "inline"}},
            r"inference: .*placement: pool places torchrun shards",
        ),
        ({"inference": {**POOL, "placement": "cluster"}}, r"inference\.placement: Input should be"),
        ({"results_storage": "my bucket"}, r"results_storage: String should match pattern"),
    ],
)
def test_a_pool_config_is_checked_before_any_work(tmp_path, small_bench, changes, expected):
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(write(tmp_path, small_bench, **changes))
    assert str(error.value).startswith(f"{tmp_path / 'run.yaml'} line ")


def test_an_order_travels_as_json_and_rebuilds_its_cell_and_shard(
    tmp_path, small_bench, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(small_bench.parent, tmp_path / "bench")
    relative = Path("bench") / small_bench.name  # as a config in the project dir says
    config = load_config(write(tmp_path, relative, results_storage="s3-bucket/results"))
    cell = [c for c in cells_of(config) if c.model.name == "ref"][0]
    plan = plan_shards(dataset_videos(cell.dataset), [DeviceGroup(0)], 4)
    order = ShardOrder.of(config, cell, plan[1], run="run-1")

    # what the server stores and the host's flow run validates
    travelled = ShardOrder.model_validate(json.loads(json.dumps(order.model_dump(mode="json"))))
    assert travelled == order
    assert [m.name for m in travelled.config.models] == ["ref"]  # the cell's model only
    assert travelled.config.datasets[0].tsv.is_absolute()  # another cwd on the host
    assert travelled.config.work_dir == tmp_path / "work"
    assert travelled.config.local_dir == config.local_dir  # each host's own: as written

    monkeypatch.chdir("/")  # the host's worker runs elsewhere
    rebuilt, shard, ws = travelled.resolve()
    assert rebuilt.key == cell.key and rebuilt.trial == cell.trial
    assert (shard.index, shard.count, shard.ids) == (plan[1].index, plan[1].count, plan[1].ids)
    assert ws.work_dir == tmp_path / "work"
    assert travelled.label == f"ref x {cell.dataset.dataset_name} t0 {plan[1].label}"

    # a key that differs per attempt of the task, and per flow run of the parent
    keys = {order.idempotency_key(run, attempt) for run in "ab" for attempt in (1, 2)}
    assert len(keys) == 4


def test_an_order_whose_dataset_changed_on_the_way_is_refused(tmp_path, small_bench):
    shutil.copytree(small_bench.parent, tmp_path / "bench")
    tsv = tmp_path / "bench" / small_bench.name
    config = load_config(write(tmp_path, tsv))
    cell = cells_of(config)[0]
    shard = plan_shards(dataset_videos(cell.dataset), [DeviceGroup(0)], 4)[0]
    order = ShardOrder.of(config, cell, shard, run="r")
    rows = tsv.read_text().splitlines()
    tsv.write_text("\n".join(rows[:1] + rows[3:]) + "\n")  # two rows gone before the host ran
    with pytest.raises(OrderMismatch, match="other samples than the flow's host gave it"):
        order.resolve()


def test_a_host_runs_one_shard_per_device_group_and_waits_while_all_are_held(tmp_path):
    config = EvalConfig.model_construct(local_dir=tmp_path / "local")
    config = config.model_copy(
        update={"inference": config.inference.model_copy(update={"cpu_groups": 2})}
    )
    groups = host_device_groups(config)
    assert [g.index for g in groups] == [0, 1]
    lock_dir = device_lock_dir(Workspace(tmp_path / "work", tmp_path / "out", tmp_path / "local"))
    assert lock_dir == tmp_path / "local" / "device-groups"

    with take_device_group(groups, lock_dir, "shard A") as first:
        with take_device_group(groups, lock_dir, "shard B") as second:
            assert (first.index, second.index) == (0, 1)
            holder = UnitLock(lock_dir, "device-group-1").holder()
            assert f"on {socket.gethostname()}" in holder and holder.endswith("shard B")
    assert first.index == 0

    # both groups held by other shards (other processes' locks exclude this one's too)
    held = [UnitLock(lock_dir, f"device-group-{i}", label="another shard") for i in (0, 1)]
    for lock in held:
        lock.acquire()
    told, slept = [], []

    def sleep(seconds: float) -> None:  # while the third shard waits, group 1 ends
        slept.append(seconds)
        held[1].release()

    with take_device_group(groups, lock_dir, "shard C", on_wait=told.append, sleep=sleep) as g:
        assert g.index == 1
        assert UnitLock(lock_dir, "device-group-1").holder().endswith("shard C")
    assert len(slept) == 1 and len(told) == 1 and "all 2 device group(s)" in told[0]
    held[0].release()
