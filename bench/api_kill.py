"""What a `kill -9` of `evalcore run` costs an API model: the issue's scenario.

An endpoint at 1 s latency (the loopback test server, in this process), `max_in_flight:
4`, the 48 questions of a 12-video synthetic benchmark. `evalcore run` is killed with
SIGKILL once the endpoint has answered `--kill-after` requests, then run again to the
end. Printed: what the endpoint had answered at the kill, how many of those answers the
logs held afterwards, and what the re-run sent again: at most the requests on the wire
is the goal (the code before answers streamed: 0 of 20 kept, all 48 sent again).

    .venv/bin/python bench/api_kill.py                    # about a minute
    .venv/bin/python bench/api_kill.py --latency 0.5 --kill-after 10 30
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the loopback server is a test double: tests.doubles
from tests.doubles.openai_server import Behaviour, OpenAIServer  # noqa: E402


def evalcore_run(config: Path, root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(root / "prefect")}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "run", str(config)],
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "run.log", "ab"),  # noqa: SIM115
    )


def logged_answers(work: Path) -> int:
    from evalcore.predictions import iter_records

    ids = {
        r.sample_id for p in work.rglob("predictions/**/*.jsonl") for r in iter_records(p) if r.ok
    }
    return len(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--kill-after", type=int, nargs="+", default=[20])
    args = parser.parse_args()

    from evalcore.dataset.synthetic import generate_benchmark

    root = Path(tempfile.mkdtemp(prefix="bench-api-kill-"))
    tsv = generate_benchmark(
        root / "data", n_videos=12, seed=7, name="Kill", min_seconds=2, max_seconds=5
    )
    load = os.getloadavg()[0]
    print(
        f"endpoint latency {args.latency} s, max_in_flight {args.in_flight}, 48 questions; "
        f"load {load:.1f} on {os.cpu_count()} cores"
    )
    print(
        "| kill after (answers in all) | in the logs after the kill | sent again: unanswered "
        "at the kill | sent again: answered in its last 0.25 s | sent again: answered earlier |"
    )
    print("|---|---|---|---|---|")
    with OpenAIServer(Behaviour(latency=args.latency)) as server:
        raw = {
            "datasets": [{"tsv": str(tsv)}],
            "models": [
                {
                    "name": "api",
                    "kind": "openai-compatible",
                    "params": {
                        "base_url": server.url,
                        "model": "test-model",
                        "max_in_flight": args.in_flight,
                        "timeout": 30,
                    },
                }
            ],
            "api": {"progress": False, "requests_per_task": 4},
            "work_dir": str(root / "work"),
            "output_dir": str(root / "outputs"),
        }
        config = root / "run.yaml"
        config.write_text(yaml.safe_dump(raw))
        kills = []  # (threshold, when, answers in the logs after it)
        for threshold in args.kill_after:
            proc = evalcore_run(config, root)
            while len(server.answered_requests) < threshold:
                if proc.poll() is not None:
                    print((root / "run.log").read_text()[-2000:])
                    return 1
                time.sleep(0.005)
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            proc.wait()
            time.sleep(1.0)  # the workers' parent-death signal
            kills.append((threshold, killed_at, logged_answers(root / "work")))
        started = time.monotonic()
        proc = evalcore_run(config, root)
        code = proc.wait()
        final_s = time.monotonic() - started
    answered = {(d, arrived): at for d, arrived, at in server.answered_requests}
    for k, (threshold, killed, logged) in enumerate(kills):
        since = kills[k - 1][1] if k else float("-inf")
        mine = [s for s in server.seen if since < s.at < killed]  # the killed run's requests
        later = {s.digest for s in server.seen if s.at > killed}
        again = [answered.get((s.digest, s.at), killed) for s in mine if s.digest in later]
        unanswered = sum(1 for at in again if at >= killed)
        transit = sum(1 for at in again if killed - 0.25 <= at < killed)
        earlier = len(again) - unanswered - transit
        print(f"| {threshold} | {logged} | {unanswered} | {transit} | {earlier} |")
    print(
        f"final run: exit {code}, {final_s:.1f} s; requests in all: {len(server.seen)} for 48 "
        f"questions ({len(server.seen) - 48} more than once)"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
