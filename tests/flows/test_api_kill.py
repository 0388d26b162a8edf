"""Real `evalcore run` processes with an API model, killed with SIGKILL while the endpoint
is answering: every answer the endpoint gave before a kill is in the prediction log (or
the response cache) afterwards, so a re-run asks again only what was on the wire."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from test_kill_resume import leftovers, run_cli

from evalcore.cell import find_cell
from evalcore.config import parse_config
from evalcore.predictions import iter_records
from evalcore.workspace import Workspace
from tests.doubles.openai_server import Behaviour, OpenAIServer

IN_FLIGHT = 4
KILL_AFTER = (6, 18, 30)  # answers the endpoint has given (all runs together) at each kill
TRANSIT_S = 0.25  # an answer older than this at a kill was recorded (test-side margin)

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # alone: transit times at a kill


def api_config(bench: Path, root: Path, url: str) -> tuple[Path, dict]:
    raw = {
        "datasets": [{"tsv": str(bench)}],
        "models": [
            {
                "name": "api",
                "kind": "openai-compatible",
                "params": {
                    "base_url": url,
                    "model": "test-model",
                    "max_in_flight": IN_FLIGHT,
                    "timeout": 30,
                    "max_attempts": 2,
                },
            }
        ],
        "api": {"progress": False, "requests_per_task": 4},
        "work_dir": str(root / "work"),
        "output_dir": str(root / "outputs"),
    }
    config = root / "eval.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config, raw


def test_kill_9_while_the_endpoint_answers_loses_no_answer(small_bench, tmp_path):
    home = f"PREFECT_HOME={tmp_path / 'prefect-home'}".encode()
    log = tmp_path / "run-prefect-home.log"
    with OpenAIServer(Behaviour(latency=0.4)) as server:
        config, raw = api_config(small_bench, tmp_path, server.url)
        # when each run started, and when each kill was sent and the killed CLI was dead
        # (monotonic): a run starts once every process of the one before is gone, so the
        # requests that arrive between two starts are the earlier run's, those on the
        # wire at its kill included
        starts: list[float] = []
        kills: list[tuple[float, float]] = []
        for threshold in KILL_AFTER:
            starts.append(time.monotonic())
            proc = run_cli(config, tmp_path)
            deadline = time.monotonic() + 240
            while len(server.answered_requests) < threshold:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the endpoint was never asked"
                time.sleep(0.01)
            signalled = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)  # the CLI alone, as `kill -9 <pid>` does
            proc.wait()
            kills.append((signalled, time.monotonic()))
            deadline = time.monotonic() + 30
            while leftovers(home) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not leftovers(home), "the killed run left processes behind"

        starts.append(time.monotonic())
        proc = run_cli(config, tmp_path)
        assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]

    resent, transit, lost = sent_again(server, starts, kills)
    print(
        f"requests sent again after each kill: {resent} unanswered at the kill, {transit} "
        f"answered in its last {TRANSIT_S} s or as the CLI died (max_in_flight {IN_FLIGHT})"
    )
    assert all(n <= IN_FLIGHT for n in resent), resent
    assert lost == [], f"answers given {lost} s before a kill were asked again"

    parsed = parse_config(raw)
    log_dir = find_cell(parsed).log_dir(Workspace(parsed.work_dir, parsed.output_dir))
    records = [r for p in log_dir.glob("*.jsonl") for r in iter_records(p)]
    oks = Counter(r.sample_id for r in records if r.ok)
    assert sorted(oks, key=int) == [str(i) for i in range(48)]
    assert max(oks.values()) == 1, "a sample was answered twice"


def sent_again(
    server: OpenAIServer, starts: list[float], kills: list[tuple[float, float]]
) -> tuple[list[int], list[int], list[float]]:
    """For each kill, how many of the killed run's requests a later run sent again, not
    counting answers in transit at the kill: written by the endpoint from TRANSIT_S
    before the signal (worker -> scheduler -> client takes milliseconds) until the CLI
    was dead (its workers then die with it). Only the requests on the wire may be: at
    most IN_FLIGHT. And the answers older than that which were asked again anyway: lost
    answers (how long before the kill each was written).

    A run's requests are those that arrived from its start to the next run's, not to its
    kill: a request its worker sent just before the kill can arrive after it."""
    answered = {(d, arrived): at for d, arrived, at in server.answered_requests}
    resent, transit, lost = [], [], []
    for k, (signalled, dead) in enumerate(kills):
        began, next_began = starts[k], starts[k + 1]
        mine = [s for s in server.seen if began <= s.at < next_began]  # the killed run's
        later = {s.digest for s in server.seen if s.at >= next_began}
        again = [s for s in mine if s.digest in later]
        in_transit = [
            s for s in again if signalled - TRANSIT_S <= answered.get((s.digest, s.at), -1) < dead
        ]
        lost += [
            signalled - answered[(s.digest, s.at)]
            for s in again
            if answered.get((s.digest, s.at), signalled) < signalled - TRANSIT_S
        ]
        resent.append(len(again) - len(in_transit))
        transit.append(len(in_transit))
    return resent, transit, lost
