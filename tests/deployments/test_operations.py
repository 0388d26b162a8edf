"""End to end on a real Prefect server: `evalcore serve`, `prefect deployment run eval/video`,
an injected shard failure healed by `prefect flow-run retry`, a poison sample asked again
by the retry once fixed, the nightly leaderboard, a run that outlives its killed worker,
a crashed run's task runs ended, and `evalcore stop`. Everything goes through the
commands a user types.

One server for the module (its startup and deploy cost the most); the tests run in order
and build on each other's outputs. Flow-run states are polled through the REST API, never
with `prefect flow-run watch` (after a retry it can replay the old Failed state).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalcore.benchmarks import load_samples
from tests.doubles.prefect_home import prefect_home
from tests.doubles.prefect_rest import PrefectRest
from tests.doubles.shard_faults import executions

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
REPO_ROOT = TESTS.parent
BIN = Path(sys.executable).parent
VIDEOS = 3  # 12 questions: enough to rank two models, small enough for 2 shared cores
RUN_TIMEOUT = 180.0
WORKER_POLL = ("--worker-poll-seconds", "1")  # a new run starts ~2 s sooner than at 5 s
API_TIMEOUT = (
    30.0  # one request to the server; CI's loaded SQLite server stalled one read past 10 s
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Ops:
    """A served project: runs `prefect` / `evalcore` commands against its server."""

    def __init__(self, project: Path, port: int) -> None:
        self.project = project
        self.home = prefect_home(project / ".prefect")  # its database already migrated
        self.port = port
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api,
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # the worker's flow runs import the test-only model kinds (tests/doubles)
            "PYTHONPATH": os.pathsep.join(
                [str(TESTS), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        }

    def cli(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run_deployment(self, name: str, config: dict | None = None) -> str:
        args = ["prefect", "deployment", "run", name]
        if config is not None:
            args += ["--params", json.dumps({"config": config})]
        out = self.cli(*args)
        return re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)

    def get(self, path: str) -> dict:
        return PrefectRest(self.api, API_TIMEOUT).get(path)

    def post(self, path: str, body: dict):
        return PrefectRest(self.api, API_TIMEOUT).post(path, body)

    def flow_run(self, run_id: str) -> dict:
        return self.get(f"flow_runs/{run_id}")

    def wait(self, run_id: str, attempt: int = 1) -> str:
        """Poll until attempt `attempt` of the run is final; return its state type."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                run = self.flow_run(run_id)
            except TimeoutError:
                # a loaded machine's SQLite server can stall one read while a run
                # writes; the deadline, not one slow poll, decides
                continue
            final = run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
            if final and run["run_count"] >= attempt:
                return run["state_type"]
            time.sleep(1.0)
        pytest.fail(f"flow run {run_id} not finished in {RUN_TIMEOUT} s:\n{self.worker_log()}")

    def worker_log(self) -> str:
        log = self.home / "worker.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no worker log)"

    def run_logs(self, run_id: str) -> str:
        """A flow run's log lines (its output goes to the API, not to the worker's log)."""
        logs = self.post("logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
        return "\n".join(line["message"] for line in logs)[-6000:]

    def task_runs(self, run_id: str) -> list[dict]:
        return self.post("task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})

    def artifacts(self) -> dict[str, dict]:
        """Latest version of every keyed artifact, by key (through `prefect artifact ls`)."""
        out = self.cli("prefect", "artifact", "ls", "-o", "json")
        return {a["key"]: a for a in json.loads(out) if a.get("key")}

    def run_summary(self, run_id: str, attempt: int, timeout: float = 60.0) -> dict:
        """The run-summary artifact of that flow-run attempt. Its hook runs after the flow
        run reaches its final state, so the artifact may land a moment after `wait`.
        Polled through the REST API (what `prefect artifact ls` reads, without a new
        interpreter a poll); `artifacts` lists it through the command."""
        deadline = time.monotonic() + timeout
        latest = {"artifacts": {"key": {"any_": ["eval-run-summary"]}}}
        while True:
            summary = next(iter(self.post("artifacts/latest/filter", latest)), None)
            if (
                summary
                and summary["flow_run_id"] == run_id
                and f"(attempt {attempt}," in (summary["data"])
            ):
                return summary
            if time.monotonic() > deadline:
                pytest.fail(f"no run summary for attempt {attempt} of {run_id}: {summary}")
            time.sleep(1.0)


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    port = free_port()
    ops = Ops(project, port)
    try:
        ops.served = ops.cli(
            "evalcore",
            "serve",
            "--port",
            str(port),
            "--videos",
            str(VIDEOS),
            *WORKER_POLL,
            timeout=300,
        )
        yield ops
    finally:  # pass or fail: `evalcore stop` (the worker first, then the server) ...
        subprocess.run(
            [str(BIN / "evalcore"), "stop"], cwd=project, env=ops.env, timeout=120, check=False
        )
        # ... and whatever a failed test left running under our PREFECT_HOME (a flow run
        # cut off by a timeout, its torchrun ranks), stopped by pid.
        leftovers = processes_with_home(ops.home)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert not leftovers, f"still running after `evalcore stop`: {leftovers}"
        assert not (ops.home / "serve.json").exists()


def processes_with_home(home: Path) -> list[int]:
    """Pids of processes started for this test's server: their PREFECT_HOME is ours."""
    mark = f"PREFECT_HOME={home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def test_video_deployment_evaluates_the_demo_benchmark(ops):
    # the README's `source .prefect/env.sh` puts `prefect` on a bare PATH
    found = subprocess.run(
        ["bash", "-c", f"source {ops.home / 'env.sh'} && command -v prefect"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert found.stdout.strip() == str(Path(sys.executable).parent / "prefect"), found.stderr
    # serve said each step as it began
    steps = ("starting the Prefect server", "server up; creating work pool", "deploying")
    for step in (*steps, "starting the worker", "ready"):
        assert re.search(rf"^\[ *\d+\.\d s\] {step}", ops.served, re.M), ops.served
    pool = ops.get("work_pools/evalcore")  # flow runs do not stream output to the worker
    assert pool["base_job_template"]["variables"]["properties"]["stream_output"]["default"] is False
    deployments = json.loads(ops.cli("prefect", "deployment", "ls", "-o", "json"))
    by_name = {d["name"]: d for d in deployments}
    assert {"video", "nightly"} <= set(by_name)
    (schedule,) = by_name["nightly"]["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *" and schedule["schedule"]["timezone"]
    assert schedule["active"]
    gpu = ops.get("concurrency_limits/tag/gpu")  # torchrun shards carry the `gpu` tag
    from flows.cli.serve import default_gpu_slots

    assert gpu["concurrency_limit"] == default_gpu_slots() >= 1  # one per device group

    run_id = ops.run_deployment("eval/video")
    assert ops.wait(run_id) == "COMPLETED", ops.worker_log()

    out = ops.project / "outputs"
    board = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    assert set(board) == {"reference", "random"}
    assert board["reference"]["n"] == 4 * VIDEOS and board["reference"]["failed"] == 0
    assert board["reference"]["accuracy"] > board["random"]["accuracy"]
    assert (out / "reference/reference_SyntheticVQA.xlsx").exists()
    assert (out / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"

    summary = ops.run_summary(run_id, attempt=1)
    assert "attempt 1, Completed" in summary["data"] and "frame-cache hits" in summary["data"]


def test_evalcore_run_in_the_served_project_runs_on_its_server(ops):
    """`evalcore run` from a fresh shell in the project `evalcore serve` runs for: no
    temporary server; the run is on the served server (in its UI), every unit cached."""
    config = ops.project / "demo-run.yaml"
    config.write_text(
        json.dumps(
            {
                "datasets": [{"tsv": "data/synthetic/SyntheticVQA.tsv"}],
                "models": [
                    {"name": "reference", "kind": "reference"},
                    {"name": "random", "kind": "random"},
                ],
            }
        )
    )
    shell = {k: v for k, v in ops.env.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    done = subprocess.run(
        [str(BIN / "evalcore"), "run", str(config)],
        cwd=ops.project,
        env=shell,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert f"using the server of `evalcore serve` at http://127.0.0.1:{ops.port}" in output
    assert "temporary server" not in output and "Cached" in output
    name = re.search(r"Beginning flow run '([^']+)'", output).group(1)
    (run,) = ops.post("flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    assert run["state_type"] == "COMPLETED"


def test_retry_recomputes_only_the_failed_shard(ops):
    runs = {name: ops.project / f"{name}.runs" for name in ("healthy", "broken")}
    marker = ops.project / "break-shard"
    marker.touch()
    config = {
        "datasets": [{"tsv": "data/synthetic/SyntheticVQA.tsv"}],
        "models": [
            {
                "name": name,
                "kind": "tests.doubles.shard_faults:Flaky",
                "params": {
                    "runs_file": str(path),
                    "fail_marker": str(marker) if name == "broken" else "",
                },
            }
            for name, path in runs.items()
        ],
        "output_dir": "outputs-retry",
        "work_dir": "work-retry",
    }
    run_id = ops.run_deployment("eval/video", config)
    assert ops.wait(run_id) == "FAILED"
    assert executions(runs["healthy"]) == 1 and executions(runs["broken"]) == 1

    marker.unlink()  # the cause is fixed; retry the same flow run, as the UI's Retry does
    ops.cli("prefect", "flow-run", "retry", run_id)
    assert ops.wait(run_id, attempt=2) == "COMPLETED", ops.worker_log()
    assert executions(runs["healthy"]) == 1  # restored from its cached result
    assert executions(runs["broken"]) == 2  # only the failed unit ran again

    board = json.loads((ops.project / "outputs-retry/leaderboard.json").read_text())
    assert {r["model"]: r["failed"] for r in board} == {"healthy": 0, "broken": 0}
    summary = ops.run_summary(run_id, attempt=2)["data"]
    assert "attempt 2, Completed" in summary
    infer_row = next(line for line in summary.splitlines() if line.startswith("| infer |"))
    # | infer | task runs | cached | ran | failed | retried shards | wall s |
    assert infer_row.split("|")[2:7] == [" 2 ", " 1 ", " 1 ", " 0 ", " 1 "], summary


def test_retry_relaunches_only_the_failed_torchrun_shard(ops):
    """The same, with the real unit of local inference: two torchrun shards on the CPU;
    a rank of shard 1 crashes once (a fault budget of 1), which fails the shard task
    (no Prefect retries here) and the flow run; the retry relaunches only shard 1."""
    from evalcore.config import DatasetSpec
    from evalcore.dataset.synthetic import generate_benchmark
    from evalcore.inference.torchrun.plan import DeviceGroup, dataset_videos, plan_shards

    inference = {"launcher": "torchrun", "shards": 2, "cpu_groups": 2, "retries": 0}
    inference.update(watchdog_s=60, grace_s=2)
    # shards go by a hash of the video: the demo's 3 videos all land in one shard; of
    # these 5, four go to shard 0 and one to shard 1
    tsv = generate_benchmark(
        ops.project / "data/shards5", n_videos=5, name="Shards5", min_seconds=2, max_seconds=3
    )
    plan = plan_shards(dataset_videos(DatasetSpec(tsv=tsv)), [DeviceGroup(0), DeviceGroup(1)], 2)
    assert len(plan) == 2
    budget = ops.project / "crash-budget"
    budget.write_text("1")
    config = {
        "datasets": [{"tsv": "data/shards5/Shards5.tsv"}],
        "models": [
            {
                "name": "sharded",
                "kind": "tests.doubles.scripted_model:ScriptedModel",
                "params": {
                    "calls_file": str(ops.project / "sharded-calls.jsonl"),
                    "fault": "raise",
                    "fault_ids": [plan[1].ids[0]],
                    "fault_budget_file": str(budget),
                },
                "batch_size": 2,
            }
        ],
        "inference": inference,
        "output_dir": "outputs-shards",
        "work_dir": "work-shards",
    }
    run_id = ops.run_deployment("eval/video", config)
    assert ops.wait(run_id) == "FAILED", ops.worker_log()
    ops.cli("prefect", "flow-run", "retry", run_id)
    assert ops.wait(run_id, attempt=2) == "COMPLETED", ops.worker_log()

    (shards,) = (ops.project / "work-shards/shards/sharded/Shards5").glob("*/trial-0")
    launches = {s.name: len(list(s.glob("launch-*"))) for s in shards.glob("shard*")}
    assert launches == {"shard0-of-2": 1, "shard1-of-2": 2}
    board = json.loads((ops.project / "outputs-shards/leaderboard.json").read_text())
    assert board[0]["failed"] == 0 and board[0]["n"] == 4 * 5
    summary = ops.run_summary(run_id, attempt=2)["data"]
    shard_row = next(line for line in summary.splitlines() if line.startswith("| infer_shard"))
    assert shard_row.split("|")[2:7] == [" 2 ", " 1 ", " 1 ", " 0 ", " 1 "], summary


def test_retry_asks_a_poison_sample_again_once_its_cause_is_fixed(ops):
    """A sample that kills its rank in every launch: with the default retries (2) and
    crash limit (3) its shard fails and so does the run. The cause fixed, the UI's Retry
    (`prefect flow-run retry`) asks it again, and it is answered: no RankCrashed record
    left from the first run, the run green with no failure."""
    from evalcore.config import DatasetSpec

    tsv = "data/synthetic/SyntheticVQA.tsv"
    culprit = load_samples(DatasetSpec(tsv=ops.project / tsv))[5].sample_id
    cause = ops.project / "poison"  # while it holds a count above 0, the culprit kills
    cause.write_text("1000")
    config = {
        "datasets": [{"tsv": tsv}],
        "models": [
            {
                "name": "poisoned",
                "kind": "tests.doubles.scripted_model:ScriptedModel",
                "params": {
                    "calls_file": str(ops.project / "poisoned-calls.jsonl"),
                    "fault": "kill",
                    "fault_ids": [culprit],
                    "fault_budget_file": str(cause),
                },
                "batch_size": 4,
            }
        ],
        "inference": {"launcher": "torchrun", "shards": 1, "watchdog_s": 60, "grace_s": 2},
        "output_dir": "outputs-poison",
        "work_dir": "work-poison",
    }
    run_id = ops.run_deployment("eval/video", config)
    assert ops.wait(run_id) == "FAILED", ops.run_logs(run_id)
    (shard_run,) = [t for t in ops.task_runs(run_id) if t["name"].startswith("infer ")]
    assert shard_run["name"] == "infer poisoned x SyntheticVQA t0 shard0-of-1"
    assert shard_run["run_count"] == 3  # the default retries, each launch killed
    assert "shard0-of-1 on cpu failed" in ops.run_logs(run_id)  # named as its folder

    cause.unlink()  # the cause is fixed: press Retry
    ops.cli("prefect", "flow-run", "retry", run_id)
    assert ops.wait(run_id, attempt=2) == "COMPLETED", ops.run_logs(run_id)
    (row,) = json.loads((ops.project / "outputs-poison/leaderboard.json").read_text())
    assert (row["n"], row["failed"]) == (4 * VIDEOS, 0)
    summary = ops.run_summary(run_id, attempt=2)["data"]
    cell = next(line for line in summary.splitlines() if line.startswith("| poisoned x "))
    # | cell | total | answered now | restored | failed | missing |: the culprit (and the
    # suspects its crashes held back) now, the rest restored from the first attempt
    total, now, restored, failed, missing = (int(c) for c in cell.split("|")[2:7])
    assert (total, failed, missing) == (12, 0, 0) and now >= 1 and now + restored == 12, cell
    assert {t["state_type"] for t in ops.task_runs(run_id)} <= {"COMPLETED", "FAILED"}


def test_nightly_snapshots_and_recomputes_only_changed_cells(ops):
    out = ops.project / "outputs"
    before = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())}

    # Defaults: the same matrix `eval/video` just evaluated -> nothing to recompute.
    assert ops.wait(ops.run_deployment("leaderboard/nightly")) == "COMPLETED", ops.worker_log()
    first = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    assert first["reference"]["evaluated_at"] == before["reference"]["evaluated_at"]
    assert first["random"]["evaluated_at"] == before["random"]["evaluated_at"]
    assert first["random"]["delta"] is None  # no earlier snapshot to compare with

    # A changed setting of one model: only that cell is evaluated again.
    time.sleep(1.0)  # evaluated_at has one-second resolution
    config = {
        "datasets": [{"tsv": "data/synthetic/SyntheticVQA.tsv"}],
        "models": [
            {"name": "reference", "kind": "reference"},
            {"name": "random", "kind": "random", "generation": {"seed": 1}},
        ],
        "output_dir": "outputs",
        "work_dir": "work",
    }
    nightly = ops.run_deployment("leaderboard/nightly", config)
    assert ops.wait(nightly) == "COMPLETED", ops.worker_log()
    second = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    assert second["reference"]["evaluated_at"] == first["reference"]["evaluated_at"]
    assert second["random"]["evaluated_at"] != first["random"]["evaluated_at"]
    assert second["reference"]["delta"] == 0.0
    assert second["random"]["previous_accuracy"] == first["random"]["accuracy"]
    # Answers are kept per settings: random's seed-0 logs are not reused for seed 1.
    logs = ops.project / "work/predictions"
    assert len(list((logs / "random/SyntheticVQA").iterdir())) == 2
    assert len(list((logs / "reference/SyntheticVQA").iterdir())) == 1

    snapshots = sorted((out / "history").glob("leaderboard-*.json"))
    assert len(snapshots) == 2
    markdown = (out / "leaderboard.md").read_text()
    assert "| Δ |" in markdown and "last evaluated" in markdown

    artifacts = ops.artifacts()
    for key in ("video-leaderboard", "video-leaderboard-md", "video-leaderboard-chart"):
        assert artifacts[key]["flow_run_id"] == nightly, key
    assert "attempt" in artifacts["eval-run-summary"]["data"]  # listed by the command too
    assert "data:image/png;base64," in artifacts["video-leaderboard-chart"]["data"]


def test_pack_mode_and_judging_through_the_deployment(ops):
    """`prefect deployment run eval/video` with an open-ended benchmark, pack mode, an API
    model and a judge, all on one loopback server: one request per video, every answer
    judged, the judged metric on the leaderboard."""
    from tests.doubles.benchmarks.open_ended import build_mmbench_video
    from tests.doubles.openai_server import Behaviour, OpenAIServer

    def reply(prompt: str, digest: str) -> str:
        if "Candidate answer" in prompt:  # the judge: 2 for every answer
            return "2"
        n = re.search(r"following (\d+) questions", prompt)
        return json.dumps(["an answer"] * int(n.group(1))) if n else "an answer"

    tsv = build_mmbench_video(ops.project / "mmv")
    fast = {"timeout": 5, "max_attempts": 2, "backoff_initial": 0.01}
    with OpenAIServer(Behaviour(answer=reply)) as server:
        config = {
            "datasets": [{"tsv": str(tsv), "benchmark": "mmbench_video", "pack": True}],
            "models": [
                {
                    "name": "api",
                    "kind": "openai-compatible",
                    "params": {"base_url": server.url, "model": "m", **fast},
                }
            ],
            "judge": {"base_url": server.url, "model": "judge", **fast},
            "api": {"processes": False, "workers": 1, "progress": False},
            "frames": {"nframe": 2},
            "output_dir": "outputs-judged",
            "work_dir": "work-judged",
        }
        run_id = ops.run_deployment("eval/video", config)
        assert ops.wait(run_id) == "COMPLETED", ops.worker_log()
        model_calls = [s for s in server.seen if "Candidate answer" not in s.prompt]
        judge_calls = [s for s in server.seen if "Candidate answer" in s.prompt]
    assert len(model_calls) == 3  # 3 videos, their questions packed
    assert len(judge_calls) == 8  # every answer judged once
    (row,) = json.loads((ops.project / "outputs-judged/leaderboard.json").read_text())
    assert row["metric"] == "mean score (0-3)" and row["accuracy"] == 2.0


def counting_config(name: str, calls: Path, delay_s: float) -> dict:
    """The demo benchmark, one answer at a time, each after `delay_s`, logged to `calls`."""
    return {
        "datasets": [{"tsv": "data/synthetic/SyntheticVQA.tsv"}],
        "models": [
            {
                "name": name,
                "kind": "doubles.models:CountingModel",
                "params": {"calls_file": str(calls), "delay_s": delay_s},
                "batch_size": 1,
            }
        ],
        "output_dir": f"outputs-{name}",
        "work_dir": f"work-{name}",
    }


def answers(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_killed_worker_one_run_outlives_it_one_is_crashed_as_zombie_and_resumed(ops):
    """kill -9 of the worker mid-run, and with it the flow-run process of one of its two
    runs (a lost host for that one), in one world:
    - the other run ("orphan") goes on (its output is no pipe to the dead worker) and
      completes;
    - `evalcore serve` again starts a new worker;
    - the killed run's heartbeats have stopped, so `serve`'s automation marks it Crashed
      (not Running for ever);
    - a new deployment run, picked up by the new worker, finishes the work without
      recomputing what was answered, and ends the crashed run's task runs that were
      still Running as Crashed.

    The automation `serve` made (silence 90 s) is replaced, once the orphan has begun
    (its first heartbeat is past) and before the killed run starts, by one that waits
    ZOMBIE_SILENCE_S: the same trigger, 15 s of slack over Prefect's shortest heartbeat
    interval (30 s). A heartbeat opens its window, so it must exist before the killed
    run's first one; serve's own is restored before the new run starts. The orphan
    answers slowly (4 s each) so that it is still mid-run when the other is killed."""
    orphan_calls = ops.project / "orphan-calls.txt"
    orphan = ops.run_deployment("eval/video", counting_config("orphan", orphan_calls, 4.0))
    deadline = time.monotonic() + 120
    while answers(orphan_calls) < 1:
        assert time.monotonic() < deadline, ops.worker_log()
        time.sleep(0.5)
    set_zombie_automation(ops, ZOMBIE_SILENCE_S)
    calls = ops.project / "slow-calls.txt"
    config = counting_config("slow", calls, 0.5)
    run_id = ops.run_deployment("eval/video", config)
    deadline = time.monotonic() + 120
    while answers(calls) < 3:
        assert time.monotonic() < deadline, ops.worker_log()
        time.sleep(0.5)
    state = json.loads((ops.home / "serve.json").read_text())
    worker = state["worker"]["pid"]
    mark = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    flow_procs = [p for p in processes_with_home(ops.home) if mark in _environ(p)]
    assert flow_procs, "the flow run's process was not found"
    for pid in [worker, *flow_procs]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in [worker, *flow_procs]):
        assert time.monotonic() < deadline, "killed processes still there"
        time.sleep(0.1)
    answered_before = answers(calls)
    assert answers(orphan_calls) < 4 * VIDEOS  # the orphan: killed mid-run
    assert ops.wait(orphan) == "COMPLETED", ops.flow_run(orphan)["state"]
    (row,) = json.loads((ops.project / "outputs-orphan/leaderboard.json").read_text())
    assert (row["n"], row["failed"]) == (4 * VIDEOS, 0)

    out = ops.cli("evalcore", "serve", "--port", str(ops.port), *WORKER_POLL)
    assert "its worker was gone, started a new one" in out
    new_worker = json.loads((ops.home / "serve.json").read_text())["worker"]["pid"]
    assert new_worker != worker and Path(f"/proc/{new_worker}").exists()
    deadline = time.monotonic() + 240  # the silence after its last heartbeat, then the automation
    while ops.flow_run(run_id)["state_type"] != "CRASHED":
        assert time.monotonic() < deadline, f"still {ops.flow_run(run_id)['state_type']}"
        time.sleep(2)
    crashed = ops.flow_run(run_id)["state"]["message"]
    assert f"no heartbeat for {ZOMBIE_SILENCE_S:.0f} s" in crashed, crashed  # the short one
    set_zombie_automation(ops)  # serve's own again: no short silence for a live run
    again = ops.run_deployment("eval/video", config)  # picked up by the new worker
    assert ops.wait(again) == "COMPLETED", ops.worker_log()
    n = 4 * VIDEOS
    assert answered_before < n and answers(calls) <= n + 1  # resumed
    # the crashed run's task runs no longer run on for ever: the new run ended them
    left = {t["name"]: t["state"] for t in ops.task_runs(run_id)}
    assert left["infer slow x SyntheticVQA t0"]["type"] == "CRASHED", left
    assert "its flow run crashed" in left["infer slow x SyntheticVQA t0"]["message"]
    assert {s["type"] for s in left.values()} <= {"COMPLETED", "CRASHED"}, left


ZOMBIE_SILENCE_S = 45.0


def set_zombie_automation(ops: Ops, silence_s: float | None = None) -> None:
    """Replace the served project's zombie automation (by default: serve's own)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli.zombies import create_zombie_automation

    with temporary_settings({PREFECT_API_URL: ops.api}):
        create_zombie_automation(*([] if silence_s is None else [silence_s]))


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []
