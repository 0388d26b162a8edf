"""An open-ended benchmark through the whole flow over loopback HTTP: one server plays
both the model and the judge. Scores equal the hand-computed ones; judge faults (a 5xx,
an unusable reply) leave typed, unjudged answers that the next run judges; a run with
nothing new sends no request at all."""

from __future__ import annotations

import json
import re

import pytest

from evalcore.config import EvalConfig
from flows.eval import eval_flow
from tests.doubles.benchmarks.open_ended import MMBENCH_VIDEO_QUESTIONS, build_mmbench_video
from tests.doubles.openai_server import Behaviour, OpenAIServer

FAST = {"timeout": 2, "max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02}
SCORES = [3, 2, 1, 2, 0, 2, 3, 1]  # what the judge gives answer i (0-3)


@pytest.fixture
def server():
    with OpenAIServer(Behaviour()) as srv:
        yield srv


def test_open_ended_answers_are_judged_once_and_faults_retried(prefect_harness, server, tmp_path):
    questions = [q for _, q, _, _ in MMBENCH_VIDEO_QUESTIONS]
    judge_calls: list[int] = []
    unusable_once = {3}

    def reply(prompt: str, digest: str) -> str:
        m = re.search(r"Candidate answer: answer (\d+)", prompt)
        if m:  # the judge
            i = int(m.group(1))
            judge_calls.append(i)
            if i in unusable_once:
                unusable_once.discard(i)
                return "I would say it is quite good."  # holds no score
            return str(SCORES[i])
        i = next(n for n, q in enumerate(questions) if q in prompt)  # the model
        return f"answer {i}"

    server.behaviour.answer = reply
    server.behaviour.scripted = {"Candidate answer: answer 5": ["500"]}  # on every attempt
    endpoint = {"base_url": server.url, **FAST}
    config = EvalConfig.model_validate(
        {
            "datasets": [
                {"tsv": str(build_mmbench_video(tmp_path / "mmv")), "benchmark": "mmbench_video"}
            ],
            "models": [
                {"name": "api", "kind": "openai-compatible", "params": {**endpoint, "model": "m"}}
            ],
            "judge": {**endpoint, "model": "judge"},
            "api": {"processes": False, "workers": 1, "progress": False},
            "frames": {"nframe": 2},
            "output_dir": str(tmp_path / "out"),
            "work_dir": str(tmp_path / "work"),
        }
    )
    first = eval_flow(config)
    (row,) = first["leaderboard"]
    # q3 (unusable reply) and q5 (HTTP 500 twice) are unjudged: left out, and counted.
    # The others: 3 + 2 + 1 + 0 + 3 + 1 = 10 over 6 answers.
    assert row["metric"] == "mean score (0-3)"
    assert row["accuracy"] == pytest.approx(10 / 6)
    model_requests = sum("Candidate answer" not in s.prompt for s in server.seen)
    assert model_requests == 8
    # the judge's cost is in its durable verdicts: each reply is one word (the score)
    verdicts = [
        json.loads(line)
        for log in (tmp_path / "work" / "judgements").rglob("*.jsonl")
        for line in log.read_text().splitlines()
    ]
    ok = [v for v in verdicts if v["status"] == "ok"]
    assert len(ok) == 6 and sum(v["completion_tokens"] for v in ok) == 6
    assert all(v["prompt_tokens"] > 20 for v in ok)
    assert {v["error_type"] for v in verdicts if v["status"] != "ok"} == {
        "UnusableReply",
        "ServerError",
    }

    server.reset_log()
    server.behaviour.scripted = {}  # the judge's server is back
    second = eval_flow(config)
    asked = [int(m.group(1)) for s in server.seen if (m := re.search(r"answer (\d+)", s.prompt))]
    assert sorted(set(asked)) == [3, 5]  # only the unjudged answers, no model request
    assert all("Candidate answer" in s.prompt for s in server.seen)
    (row,) = second["leaderboard"]
    assert row["accuracy"] == pytest.approx(sum(SCORES) / 8)  # 14 / 8

    server.reset_log()
    eval_flow(config)
    assert server.seen == []  # nothing new: no model call, no judge call
