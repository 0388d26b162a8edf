"""What this project installs on the Dask workers of the LocalCluster it starts."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin


class DieWithParent(WorkerPlugin):
    """Each worker process gets SIGKILL when the process that started the cluster dies,
    so a `kill -9` of a run leaves no worker still sending requests whose answers nobody
    will record. The nanny starts workers from the cluster's event-loop thread, which
    lives as long as the cluster (the signal follows the parent thread). A worker the
    nanny restarts gets it too."""

    def setup(self, worker) -> None:
        from evalcore.processes import die_with_parent_now

        die_with_parent_now()
