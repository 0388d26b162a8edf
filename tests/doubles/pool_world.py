"""A cluster of simulated hosts running the project as several machines would
(tests/doubles/hosts.py): a server host with the Prefect server (on PostgreSQL where its
programs are installed, else SQLite) and an S3 endpoint (`moto[server]`) with the results
bucket and its `s3-bucket` block; workers of the `evalcore` and `gpu` pools on hosts of
their own; the project (data, work dir, outputs) on the shared directory, each host's
`local_dir` on its own tmpfs. Used by tests/flows/test_pool_hosts.py and bench/pool.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from evalcore.predictions import iter_records
from tests.doubles.hosts import Cluster, Host, simulated_cluster
from tests.doubles.prefect_home import prefect_home
from tests.doubles.prefect_rest import PrefectRest
from tests.doubles.scripted_model import FAKE_KIND

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SILENCE_S = 45  # the zombie automation's: heartbeats come every 30 s (Prefect's minimum)
BUCKET = "evalcore-results"
BLOCK = f"s3-bucket/{BUCKET}"
VIDEOS = 16  # 64 questions; 4 shards of 8 to 28


class World:
    """The simulated cluster with its server, workers and project."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.project = cluster.shared / "project"
        self.logs = cluster.shared / "logs"
        self.logs.mkdir(parents=True)
        self.srv = cluster.add_host("srv")
        self.api = f"http://{self.srv.address}:4200/api"
        self.s3 = f"http://{self.srv.address}:5000"
        self.rest = PrefectRest(self.api)
        self.env = {
            **os.environ,
            "PREFECT_API_URL": self.api,
            "PREFECT_HOME": str(cluster.local / "prefect"),  # each host's own
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        self.env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        self.workers: dict[str, Host] = {}
        self.cleanup: list = []

    def start_server(self) -> None:
        """The Prefect server on PostgreSQL where its programs are installed (what
        docs/cluster.md recommends: SQLite logs "database is locked" under several hosts'
        heartbeats), else on SQLite; and the S3 endpoint."""
        home = prefect_home(self.cluster.shared / "srv-home")  # its SQLite migrated
        env = {**self.env, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
        env.pop("PREFECT_API_URL")
        if database := self._postgres():
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = database
        self.database = "postgresql" if database else "sqlite"
        server = [str(BIN / "prefect"), "server", "start", "--host", "0.0.0.0", "--port", "4200"]
        self._spawn(self.srv, "server", server, env)
        s3 = [sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]
        self._spawn(self.srv, "s3", s3, env)
        self._until(lambda: self._healthy(f"{self.api}/health"), 120, "the Prefect server")
        self._until(lambda: self._healthy(self.s3), 60, "the S3 endpoint")

    def _postgres(self) -> str | None:
        """Start PostgreSQL on the server host's loopback; its URL, or None if it is not
        installed (or there is no `postgres` user to run it)."""
        initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None
        if not initdb or not postgres:
            return None
        # where the postgres user can reach it (pytest's folders are root's alone)
        data = Path(tempfile.mkdtemp(prefix="evalcore-test-pg-"))
        self.cleanup.append(lambda: shutil.rmtree(data, ignore_errors=True))
        shutil.chown(data, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
        init = [*as_pg, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres"]
        done = self.srv.run([*init, "--no-sync"], cwd="/", timeout=120)
        assert done.returncode == 0, f"initdb failed: {done.stderr}"
        fast = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        argv = [*as_pg, postgres, "-D", str(data / "db"), "-k", str(data), "-h", "127.0.0.1"]
        self._spawn(self.srv, "postgres", [*argv, *fast], self.env, cwd="/")
        ready = ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]
        self._until(lambda: self.srv.run(ready).returncode == 0, 60, "PostgreSQL")
        return "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

    def configure(self) -> None:
        """Pools, the `gpu` limit (both hosts' groups), the zombie automation with a short
        silence, the bucket and its block, the deployments."""
        code = f"""
import boto3
from flows.cli.serve import configure_server
from flows.cli.zombies import create_zombie_automation
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters
configure_server(2)
create_zombie_automation(silence_s={SILENCE_S})
keys = dict(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
boto3.client("s3", endpoint_url="{self.s3}", **keys).create_bucket(Bucket="{BUCKET}")
credentials = AwsCredentials(**keys, aws_client_parameters=AwsClientParameters(
    endpoint_url="{self.s3}"))
S3Bucket(bucket_name="{BUCKET}", credentials=credentials, bucket_folder="results").save(
    "{BUCKET}", overwrite=True)
"""
        self._run([sys.executable, "-c", code])
        self._run(
            [
                str(BIN / "prefect"),
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                "deployments/prefect.yaml",
            ],
            extra={"EVALCORE_PROJECT_DIR": str(self.project)},
            cwd=REPO_ROOT,
        )

    def start_worker(self, name: str, pool: str) -> Host:
        host = self.cluster.add_host(name)
        argv = [str(BIN / "evalcore"), "worker", "--pool", pool, "--limit", "1"]
        self._spawn(host, f"worker-{name}", argv, self.env, cwd=self.project)
        self.workers[name] = host
        return host

    @staticmethod
    def cmdline(pid: int) -> str:
        """A process's command line ("" once it is gone)."""
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return ""

    # -- the API ------------------------------------------------------------------------

    def get(self, path: str):
        return self.rest.get(path)

    def post(self, path: str, body: dict):
        return self.rest.post(path, body)

    def shard_runs(self, parent: str) -> list[dict]:
        """The `eval/shard` flow runs of eval flow run `parent` (their label says)."""
        body = {"flow_runs": {"tags": {"all_": ["shard"]}}, "limit": 200}
        runs = self.post("flow_runs/filter", body)
        return [r for r in runs if r["labels"].get("evalcore.eval-run") == parent]

    def bucket_keys(self) -> set[str]:
        """The result keys in the results bucket (what the storage block holds)."""
        import boto3

        keys = dict(aws_access_key_id="test", aws_secret_access_key="test")
        s3 = boto3.client("s3", endpoint_url=self.s3, region_name="us-east-1", **keys)
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="results/").get("Contents", [])
        return {o["Key"].removeprefix("results/") for o in listed}

    def task_runs(self, flow_run: str) -> list[dict]:
        return self.post(
            "task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run]}}, "limit": 200}
        )

    def wait_final(self, run_id: str, attempt: int = 1, timeout: float = 240) -> dict:
        def final():
            run = self.get(f"flow_runs/{run_id}")
            done = run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
            return run if done and run["run_count"] >= attempt else None

        return self._until(final, timeout, f"flow run {run_id} attempt {attempt}")

    def run_eval(self, config: dict) -> str:
        out = self._run(
            [
                str(BIN / "prefect"),
                "deployment",
                "run",
                "eval/video",
                "--params",
                json.dumps({"config": config}),
            ]
        )
        return re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)

    # -- plumbing ------------------------------------------------------------------------

    def _spawn(self, host: Host, name: str, argv, env, cwd=None) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 -- the child holds it
        with log:
            host.popen(
                argv, env=env, cwd=cwd or self.cluster.shared, stdout=log, stderr=subprocess.STDOUT
            )

    def _run(self, argv, extra=None, cwd=None) -> str:
        done = subprocess.run(
            argv,
            env={**self.env, **(extra or {})},
            cwd=cwd or self.project,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    def _until(self, check, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = check()
            except OSError:
                found = None
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"{what}: not within {timeout} s\n{self.diagnosis()}")

    @contextlib.contextmanager
    def explained(self):
        """A failed assertion in the block carries the diagnosis."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """The processes' logs and the flow runs' own (what a failure needs)."""
        parts = [f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs.glob("*.log")]
        try:
            for run in self.post("flow_runs/filter", {"limit": 50}):
                if run["state_type"] == "SCHEDULED":
                    continue  # the nightly's
                lines = self.post(
                    "logs/filter",
                    {
                        "logs": {"flow_run_id": {"any_": [run["id"]]}},
                        "sort": "TIMESTAMP_ASC",
                        "limit": 200,
                    },
                )
                text = "\n".join(f"{x['timestamp'][11:23]} {x['message'][:300]}" for x in lines)
                tasks = "\n".join(
                    f"task {t['name']}: {t['state_name']} {(t['start_time'] or '')[11:23]} - "
                    f"{(t['end_time'] or '')[11:23]}"
                    for t in self.task_runs(run["id"])
                )
                parts.append(
                    f"--- flow run {run['name']} {run['state_type']}\n{text[-4000:]}\n{tasks}"
                )
        except OSError as exc:
            parts.append(f"(no flow-run logs: {exc})")
        return "\n".join(parts)


def config(
    world: World,
    model: str,
    calls: Path,
    delay_s: float,
    placement: str = "pool",
    cpu_groups: int = 1,
) -> dict:
    """A run of the scripted model (`delay_s` per answer, every call logged to `calls`)
    over the synthetic benchmark in 4 shards, results in the bucket."""
    return {
        "datasets": [{"tsv": "data/synthetic/SyntheticVQA.tsv"}],
        "models": [
            {
                "name": model,
                "kind": FAKE_KIND,
                "batch_size": 1,
                "params": {"calls_file": str(calls), "delay_s": delay_s},
            }
        ],
        "inference": {
            "launcher": "torchrun",
            "placement": placement,
            "shards": 4,
            "cpu_groups": cpu_groups,
            "watchdog_s": 60,
            "grace_s": 2,
            "retries": 2,
        },
        "work_dir": "work",
        "output_dir": "outputs",
        "local_dir": str(world.cluster.local / "evalcore"),
        "results_storage": BLOCK,
    }


def answers(world: World, model: str) -> Counter:
    """Answered records per sample id, over every log of the model's cells."""
    logs = (world.project / "work" / "predictions" / model).rglob("*.jsonl")
    return Counter(r.sample_id for p in logs for r in iter_records(p) if r.ok)


def worker_host(run: dict) -> str:
    """The host of the worker that took a flow run (`evalcore worker` is `{pool}-{host}`)."""
    return run["labels"].get("prefect.worker.name", "").partition("-")[2]


def records(world: World, model: str, log: str) -> int:
    logs = (world.project / "work" / "predictions" / model).rglob(log)
    return sum(1 for p in logs for _ in iter_records(p))


def lock_holders(world: World, model: str) -> str:
    """What the shards' unit locks say of their (last) holders: pid, host, shard."""
    locks = (world.project / "work" / "predictions" / model).rglob(".lock-shard*")
    return " ".join(p.read_text() for p in locks)


@contextlib.contextmanager
def pool_world(root: Path, pools=(("flow", "evalcore"), ("g1", "gpu"), ("g2", "gpu"))):
    """A `World` under `root` with its server, bucket, deployments and workers (`pools`:
    host name, pool), torn down on exit; skips where hosts cannot be made."""
    with simulated_cluster(root / "cluster") as cluster:
        world = World(cluster)
        world.project.mkdir()
        subprocess.run(
            [str(BIN / "evalcore"), "synth", "--out", "data/synthetic", "--videos", str(VIDEOS)],
            cwd=world.project,
            check=True,
            capture_output=True,
        )
        try:
            world.start_server()
            world.configure()
            for name, pool in pools:
                world.start_worker(name, pool)
            yield world
        finally:
            cluster.close()  # its hosts first, then their files
            for step in world.cleanup:
                step()
