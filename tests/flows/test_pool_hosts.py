"""One deployment over several hosts (`inference.placement: pool`), with real processes on
simulated hosts (tests/doubles/hosts.py):

- `srv`: the Prefect server (SQLite: PostgreSQL is what docs/cluster.md recommends for
  several hosts; not installable from the package registry here) and an S3 endpoint
  (`moto[server]`) holding the results-storage block's bucket;
- `flow`: a worker of the `evalcore` pool, running the eval flow run;
- `g1`, `g2`: workers of the `gpu` pool (`--limit 1`: one CPU device group each),
  running the `eval/shard` flow runs;
- the project (data, work dir, outputs) on the shared directory; each host's
  `local_dir` (SQLite files, device-group locks) on its own tmpfs.

Then, in order:
1. four shards land on both GPU hosts; `g2` is killed (its PID 1: the whole host) in
   the middle of a shard: the zombie automation marks its shard run Crashed, the shard
   task retries, `g1` resumes the shard from the shared logs; every sample is answered
   exactly once and at most the sample in flight on `g2` is asked twice;
2. the flow's host is killed mid-run: the flow run is marked Crashed, a worker on a
   new host takes the flow-run retry, and the shards finished before the kill are cache
   hits read through the S3 block.

About 4 minutes: marked slow (`make test-quick` skips it).
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

import pytest

from evalcore.predictions import iter_records
from tests.doubles.hosts import Cluster, Host, simulated_cluster
from tests.doubles.prefect_home import prefect_home
from tests.doubles.scripted_model import FAKE_KIND, read_calls

pytestmark = pytest.mark.slow

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

    # -- the API ------------------------------------------------------------------------

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.api}/{path}", timeout=30) as resp:
            return json.load(resp)

    def post(self, path: str, body: dict):
        request = urllib.request.Request(
            f"{self.api}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.load(resp)

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
        pytest.fail(f"{what}: not within {timeout} s\n{self.diagnosis()}")

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


def config(world: World, model: str, calls: Path, delay_s: float) -> dict:
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
            "placement": "pool",
            "shards": 4,
            "cpu_groups": 1,
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


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    with simulated_cluster(root / "cluster") as cluster:
        w = World(cluster)
        w.project.mkdir()
        subprocess.run(
            [str(BIN / "evalcore"), "synth", "--out", "data/synthetic", "--videos", str(VIDEOS)],
            cwd=w.project,
            check=True,
            capture_output=True,
        )
        try:
            w.start_server()
            w.configure()
            for name, pool in (("flow", "evalcore"), ("g1", "gpu"), ("g2", "gpu")):
                w.start_worker(name, pool)
            yield w
        finally:
            cluster.close()  # its hosts first, then their files
            for step in w.cleanup:
                step()


def test_a_killed_gpu_host_loses_and_repeats_nothing(world):
    with world.explained():
        calls = world.cluster.shared / "calls-1.jsonl"
        run_id = world.run_eval(config(world, "slow", calls, delay_s=0.4))
        g1, g2 = world.workers["g1"], world.workers["g2"]

        def g2_mid_shard():
            """Shards hold their locks on both hosts, and the one running on g2 has answered
            two samples (more are to come: a shard holds 8 to 28)."""
            holders = lock_holders(world, "slow")
            if g1.hostname not in holders or g2.hostname not in holders:
                return None
            for r in world.shard_runs(run_id):
                if r["state_type"] == "RUNNING" and worker_host(r) == g2.hostname:
                    shard = r["parameters"]["order"]["shard"]
                    if records(world, "slow", f"shard{shard}-rank0.jsonl") >= 2:
                        return r, holders
            return None

        victim, holders = world._until(g2_mid_shard, 180, "a shard running on g2")
        asked_before = Counter(i for c in read_calls(calls) for i in c["ids"])
        killed_at = time.monotonic()
        g2.kill()
        assert g2.processes() == []  # nothing of the host is left
        assert g1.hostname in holders and g2.hostname in holders  # the shard locks name both

        run = world.wait_final(run_id)
        recovered_s = time.monotonic() - killed_at
        assert run["state_type"] == "COMPLETED", run["state"]["message"]
        crashed = world.get(f"flow_runs/{victim['id']}")
        assert crashed["state_type"] == "CRASHED" and "no heartbeat" in crashed["state"]["message"]

        # every sample answered exactly once, in the merged results
        total = 4 * VIDEOS
        counts = answers(world, "slow")
        assert len(counts) == total and set(counts.values()) == {1}
        report = world.project / "outputs" / "slow" / "slow_SyntheticVQA.json"
        samples = json.loads(report.read_text())["samples"]  # what the user reads
        assert len(samples) == total and {s["status"] for s in samples} == {"ok"}
        # asked twice: at most what was in flight on g2 (one rank, batch 1)
        asked = Counter(i for c in read_calls(calls) for i in c["ids"])
        twice = {i: n for i, n in asked.items() if n > 1}
        assert len(asked) == total and len(twice) <= 1, twice
        assert all(asked_before[i] == 1 for i in twice)  # asked on g2 before the kill
        runs = world.shard_runs(run_id)
        per_host = Counter(worker_host(r) for r in runs)
        print(
            f"\nshard runs per host {dict(per_host)}; recovered in {recovered_s:.0f} s "
            f"after the kill; asked twice: {len(twice)}"
        )


def test_a_killed_flow_host_is_retried_with_finished_shards_cached(world):
    with world.explained():
        calls = world.cluster.shared / "calls-2.jsonl"
        earlier = world.bucket_keys()  # the first run's results
        run_id = world.run_eval(config(world, "slow2", calls, delay_s=0.3))

        def some_shards_persisted():
            """Shard results in the bucket (Prefect writes one just after its task's
            Completed state), while other shards still run."""
            new = world.bucket_keys() - earlier
            return new if 0 < len(new) < 4 else None

        persisted = world._until(some_shards_persisted, 180, "a shard's result in the bucket")
        world.workers["flow"].kill()
        killed_at = time.monotonic()
        at_kill = world.bucket_keys() - earlier  # what the dead host wrote, all of it
        crashed = world.wait_final(run_id, timeout=SILENCE_S + 60)
        assert crashed["state_type"] == "CRASHED"
        crashed_s = time.monotonic() - killed_at

        world.start_worker("flow2", "evalcore")
        world._run([str(BIN / "prefect"), "flow-run", "retry", run_id])
        run = world.wait_final(run_id, attempt=2)
        assert run["state_type"] == "COMPLETED", run["state"]["message"]

        # the retry's shard tasks: those whose result the dead host stored are cache
        # hits, read through the S3 block; the others ran (and resumed)
        retried = [
            t
            for t in world.task_runs(run_id)
            if t["name"].startswith("infer ") and t["flow_run_run_count"] == 2
        ]
        cached = [t for t in retried if t["state_name"] == "Cached"]
        assert len(retried) == 4 and len(persisted) <= len(cached) <= len(at_kill), retried
        print(
            f"\nflow host killed: Crashed {crashed_s:.0f} s later, the retry done "
            f"{time.monotonic() - killed_at:.0f} s after the kill, {len(cached)} of 4 shards "
            f"cache hits from the bucket (server on {world.database})"
        )
        counts = answers(world, "slow2")
        assert len(counts) == 4 * VIDEOS and set(counts.values()) == {1}
        asked = Counter(i for c in read_calls(calls) for i in c["ids"])
        assert set(asked.values()) == {1}  # the GPU hosts lived: nothing asked twice
        # the unit results are in the bucket, not in the work dir
        assert not (world.project / "work" / "prefect-results").exists() or not any(
            (world.project / "work" / "prefect-results").iterdir()
        )
