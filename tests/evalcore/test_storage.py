"""Where the work dir and the SQLite files may live: a FUSE object-store mount refused
before any work (one line, exit 2), host-local disk for the SQLite files, and the locks
of a work dir on a bind mount shared by two simulated hosts held across them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evalcore.cell import extract_dataset_frames
from evalcore.config import DatasetSpec, EvalConfig
from evalcore.frames import FrameSettings
from evalcore.storage import StorageError, check_storage, mount_of, read_mounts
from evalcore.workspace import Workspace
from flows.cli.main import build_parser
from tests.doubles.hosts import simulated_cluster

ROOT_LINE = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw"


def mountinfo(tmp_path: Path, *mounts: tuple[str, str, str]) -> Path:
    """A mountinfo file: / on ext4, then each (mount point, fstype, source) in order."""
    lines = [ROOT_LINE]
    for n, (point, fstype, source) in enumerate(mounts, start=30):
        point = point.replace(" ", "\\040")
        lines.append(f"{n} 22 0:{n} / {point} rw,nosuid shared:{n} - {fstype} {source} rw")
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


def config(work_dir: Path, local_dir: Path | None = None) -> EvalConfig:
    """A config with only the directories set (all `check_storage` reads)."""
    return EvalConfig.model_construct(work_dir=work_dir, local_dir=local_dir)


def test_the_deepest_and_latest_mount_holds_a_path_even_one_not_made_yet(tmp_path):
    info = mountinfo(
        tmp_path,
        ("/mnt/shared", "nfs4", "filer:/export"),
        ("/mnt/shared/my bucket", "fuse.s3fs", "s3fs"),  # a space, escaped as \040
        ("/mnt/shared", "tmpfs", "tmpfs"),  # mounted over the first
    )
    mounts = read_mounts(info)
    assert mounts[2].point == Path("/mnt/shared/my bucket")
    assert mount_of(Path("/mnt/shared/my bucket/work/new"), mounts).fstype == "fuse.s3fs"
    assert mount_of(Path("/mnt/shared/other"), mounts).fstype == "tmpfs"
    assert mount_of(Path("/mnt/sharedness"), mounts).fstype == "ext4"
    assert read_mounts(tmp_path / "absent") == []  # not Linux: nothing to check


@pytest.mark.parametrize(
    ("fstype", "source"),
    [
        ("fuse.s3fs", "s3fs"),
        ("fuse", "s3fs"),
        ("fuse.goofys", "bucket"),
        ("fuse.gcsfuse", "bucket"),
        ("fuse.rclone", "s3:bucket"),
        ("fuse.mountpoint-s3", "mountpoint-s3"),
        ("fuse.blobfuse2", "blobfuse2"),
    ],
)
def test_a_work_dir_on_an_object_store_mount_is_refused_naming_the_mount(tmp_path, fstype, source):
    info = mountinfo(tmp_path, ("/mnt/bucket", fstype, source))
    with pytest.raises(StorageError) as refused:
        check_storage(config(Path("/mnt/bucket/work")), info)
    message = str(refused.value)
    assert f"{fstype} at /mnt/bucket" in message and "flock" in message
    assert "append" in message and "\n" not in message


@pytest.mark.parametrize("fstype", ["nfs4", "lustre", "ceph", "fuse.juicefs", "ext4", "xfs"])
def test_filesystems_whose_locks_hold_are_accepted_for_the_work_dir(tmp_path, fstype):
    info = mountinfo(tmp_path, ("/shared", fstype, "server:/x"), ("/var/tmp", "ext4", "/dev/x"))
    check_storage(config(Path("/shared/work"), Path("/var/tmp/evalcore")), info)


def test_local_dir_on_a_filesystem_of_several_machines_is_refused(tmp_path):
    info = mountinfo(tmp_path, ("/shared", "nfs4", "filer:/export"))
    with pytest.raises(StorageError, match="local_dir /shared/local is on nfs4 at /shared"):
        check_storage(config(Path("/shared/work"), Path("/shared/local")), info)


def test_the_sqlite_files_go_to_local_dir_and_stay_under_the_work_dir_by_default(tmp_path):
    default = Workspace(tmp_path / "work", tmp_path / "out")
    assert default.fingerprint_memo_path == tmp_path / "work" / "frames" / "fingerprints.sqlite"
    assert default.response_cache_path == tmp_path / "work/api-cache/responses.sqlite3"
    here = Workspace.of(config(tmp_path / "work", tmp_path / "local"))
    assert here.fingerprint_memo_path == tmp_path / "local" / "fingerprints.sqlite"
    assert here.response_cache_path == tmp_path / "local/api-cache/responses.sqlite3"
    assert here.frame_cache_dir == default.frame_cache_dir  # the rest stays shared


def test_extraction_keeps_its_fingerprint_memo_in_local_dir(small_bench, tmp_path):
    ws = Workspace(tmp_path / "work", tmp_path / "out", tmp_path / "local")
    summary = extract_dataset_frames(DatasetSpec(tsv=small_bench, limit=4), FrameSettings(), ws)
    assert summary.failed == 0 and any(ws.frame_cache_dir.iterdir())
    assert ws.fingerprint_memo_path.is_file()
    assert not list((tmp_path / "work").rglob("*.sqlite*"))  # no SQLite in the shared dir


def test_evalcore_run_refuses_a_work_dir_on_s3fs_with_one_line_and_exit_2(
    tmp_path, monkeypatch, capsys
):
    bucket = tmp_path / "bucket"
    info = mountinfo(tmp_path, (str(bucket), "fuse.s3fs", "s3fs"))
    monkeypatch.setattr("evalcore.storage.MOUNTINFO", info)
    tsv = tmp_path / "bench.tsv"
    header, row = "index\tvideo\tquestion\tanswer\tcandidates", "0\tv0\tColour?\tA\t['r', 'b']"
    tsv.write_text(f"{header}\n{row}\n")  # no video v0: storage is checked first
    path = tmp_path / "run.yaml"
    raw = {
        "datasets": [{"tsv": str(tsv)}],
        "models": [{"name": "r", "kind": "random"}],
        "work_dir": str(bucket / "work"),
    }
    path.write_text(yaml.safe_dump(raw))
    args = build_parser().parse_args(["run", str(path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: work_dir {bucket}/work is on")
    assert f"fuse.s3fs at {bucket}" in err and "flock" in err
    assert not bucket.exists()  # no work began


@pytest.fixture
def cluster(tmp_path):
    with simulated_cluster(tmp_path / "cluster") as cluster:
        yield cluster


HOLD = """
import sys
from pathlib import Path
from evalcore.predictions.lock import UnitLock
lock = UnitLock(Path(sys.argv[1]), "cell", label="shard 0")
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""
TAKE = """
import sys
from pathlib import Path
from evalcore.predictions.lock import UnitLock
try:
    UnitLock(Path(sys.argv[1]), "cell", timeout_s=0).acquire()
except TimeoutError as exc:
    print("busy:", exc)
else:
    print("taken")
"""
CHECK = """
import sys
from pathlib import Path
from evalcore.config import EvalConfig
from evalcore.storage import check_storage
check_storage(EvalConfig.model_construct(work_dir=Path(sys.argv[1]), local_dir=Path(sys.argv[2])))
print("accepted")
"""


def test_a_lock_in_a_work_dir_shared_by_bind_mount_holds_across_hosts_until_its_host_dies(
    cluster,
):
    a, b = cluster.add_host("a"), cluster.add_host("b")
    logs = cluster.shared / "work" / "predictions"
    logs.mkdir(parents=True)
    checked = b.python(CHECK, str(cluster.shared / "work"), str(cluster.local))
    assert checked.stdout.strip() == "accepted", checked.stderr
    holder = a.popen(
        [sys.executable, "-c", HOLD, str(logs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    busy = b.python(TAKE, str(logs)).stdout
    assert "busy:" in busy and f"on {a.hostname}" in busy  # b sees a's lock, and who holds it
    a.kill()  # the host dies: the kernel drops its locks
    holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while (taken := b.python(TAKE, str(logs)).stdout.strip()) != "taken":
        assert time.monotonic() < deadline, taken
        time.sleep(0.1)
