"""What the work dir's filesystem must provide, checked before any work.

Every writer of the work dir takes a `flock` (evalcore.predictions.lock) and appends to
its journal; hosts that share the work dir rely on the filesystem to honour both across
them. A FUSE mount of an object store (s3fs, goofys, gcsfuse, rclone, mountpoint-s3,
blobfuse, ...) does neither: each host's kernel grants the lock locally (two hosts both
held it: measured with s3fs), and an append rewrites the whole object (half the lines
of two hosts appending were lost). Such a mount is refused with one line naming it.
Filesystems that keep locks across clients (NFSv4, Lustre mounted with `flock`, CephFS,
JuiceFS, GlusterFS) pass; docs/cluster.md says what each needs.

The SQLite files (fingerprint memo, response cache) run in WAL mode, which needs its
users on one machine: `local_dir` moves them to host-local disk, and is refused on a
network filesystem or an object store. The mounts are read from /proc/self/mountinfo
(Linux); where it cannot be read nothing is checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evalcore.config import ConfigError

if TYPE_CHECKING:
    from evalcore.config import EvalConfig

MOUNTINFO = Path("/proc/self/mountinfo")

# FUSE filesystems over an object store, by the name FUSE reports (mountinfo's
# `fuse.<name>`, or the source of a plain `fuse` mount): no lock across hosts, appends
# rewrite whole objects. Not here: JuiceFS and ceph-fuse, whose locks do hold.
OBJECT_STORE_FUSE = frozenset(
    {
        "s3fs",  # s3fs-fuse
        "ossfs",  # its forks for Alibaba OSS, Tencent COS, Huawei OBS
        "cosfs",
        "obsfs",
        "goofys",
        "geesefs",  # goofys's fork
        "gcsfuse",  # Cloud Storage FUSE
        "rclone",  # rclone mount: any remote, no lock across hosts
        "mountpoint-s3",
        "blobfuse",  # Azure Blob
        "blobfuse2",
    }
)
# Filesystems of more than one machine: fine for work_dir, not for local_dir (SQLite WAL).
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "lustre", "ceph", "gpfs", "beegfs", "9p", "afs"}
) | {f"fuse.{name}" for name in ("ceph-fuse", "glusterfs", "juicefs", "sshfs", "lizardfs")}


class StorageError(ConfigError):
    """A configured directory on a filesystem that cannot do what it must; one line."""


@dataclass(frozen=True)
class Mount:
    point: Path
    fstype: str  # "ext4", "nfs4", "fuse.s3fs", ...
    source: str

    @property
    def object_store(self) -> str | None:
        """The FUSE object-store filesystem this is (`s3fs`, ...), or None."""
        name = self.fstype.removeprefix("fuse.") if self.fstype.startswith("fuse.") else ""
        if self.fstype in ("fuse", "fuseblk"):
            name = self.source
        return name if name in OBJECT_STORE_FUSE else None

    @property
    def network(self) -> bool:
        return self.fstype in NETWORK_FS or self.object_store is not None

    def describe(self) -> str:
        return f"{self.fstype} at {self.point}"


def read_mounts(mountinfo: Path | None = None) -> list[Mount]:
    """This process's mounts (default: `MOUNTINFO`'s) in mount order; [] if they cannot
    be read."""
    try:
        text = Path(mountinfo or MOUNTINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(Path(_unescape(fields[4])), tail[0], _unescape(tail[1])))
    return mounts


def mount_of(path: Path, mounts: Sequence[Mount]) -> Mount | None:
    """The mount `path` (symlinks resolved; it need not exist yet) is on: the deepest
    mount point above it, the last mounted where several share one point."""
    path = Path(path).resolve()
    best = None
    for mount in mounts:
        if (mount.point == path or mount.point in path.parents) and (
            best is None or len(mount.point.parts) >= len(best.point.parts)
        ):
            best = mount
    return best


def check_storage(config: EvalConfig, mountinfo: Path | None = None) -> None:
    """Raise `StorageError` if work_dir is on a FUSE object-store mount, or local_dir on
    a filesystem shared by machines; call before any work."""
    mounts = read_mounts(mountinfo)
    work = mount_of(config.work_dir, mounts)
    if work is not None and work.object_store:
        raise StorageError(
            f"work_dir {config.work_dir} is on a FUSE object-store mount ({work.describe()}, "
            f"{work.object_store}): it does not honour flock across hosts and rewrites a "
            "whole object on every append, so locks and logs break; put it on a shared POSIX "
            "filesystem with locks (NFSv4, Lustre, CephFS: docs/cluster.md)"
        )
    local = mount_of(config.local_dir, mounts) if config.local_dir is not None else None
    if local is not None and local.network:
        raise StorageError(
            f"local_dir {config.local_dir} is on {local.describe()}, a filesystem shared by "
            "machines: its SQLite files run in WAL mode, which needs host-local disk "
            "(e.g. /var/tmp/evalcore: docs/cluster.md)"
        )


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
