"""An API model in the `eval` flow through Prefect: one config, a loopback endpoint that
demands a key, a Prefect-cached re-run, the cache CLI, and a planted key found nowhere."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pandas as pd
import pytest

from evalcore.api.endpoint import EndpointSpec
from evalcore.benchmarks import load_samples
from evalcore.config import ApiSettings, DatasetSpec, EvalConfig, ModelSpec
from evalcore.prompts import render_mcq_prompt
from flows.cli.main import main as cli
from flows.eval import eval_flow
from tasks.secrets import ApiKeyMissing, resolve_api_key
from tests.doubles.openai_server import Behaviour, OpenAIServer

FAST = {"timeout": 1.0, "max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05}


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def prefect_log_lines() -> list[str]:
    from prefect.client.orchestration import get_client

    lines: list[str] = []
    with get_client(sync_client=True) as client:
        while page := client.read_logs(limit=200, offset=len(lines)):
            lines += [log.message for log in page]
    return lines


def test_api_model_in_the_eval_flow_keeps_its_key_secret(
    prefect_harness, small_bench, tmp_path, monkeypatch, caplog, capfd
):
    key = f"sk-planted-{uuid.uuid4().hex}"
    wrong = f"sk-wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("EVALCORE_TEST_KEY", key)
    monkeypatch.setenv("EVALCORE_TEST_WRONG_KEY", wrong)
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp and distributed included

    # a careless server: it quotes the key in its 401s and inside every answer
    behaviour = Behaviour(api_key=key, echo_key_on_401=True, echo_key_in_answer=True)
    with OpenAIServer(behaviour) as server:
        dataset = DatasetSpec(tsv=small_bench, limit=12)
        prompts = [render_mcq_prompt(s.question, s.options) for s in load_samples(dataset)]
        doomed = next(p for p in prompts if prompts.count(p) == 1)  # names one sample
        server.behaviour.scripted = {doomed: ["400"]}
        endpoint = {"base_url": server.url, "model": "test-model", **FAST}
        config = EvalConfig(
            datasets=[dataset],
            models=[
                ModelSpec(
                    name="api",
                    kind="openai-compatible",
                    params={**endpoint, "api_key_env": "EVALCORE_TEST_KEY"},
                ),
                ModelSpec(  # the server rejects this key and quotes it back (401)
                    name="api-wrong-key",
                    kind="openai-compatible",
                    params={**endpoint, "max_tokens": 8, "api_key_env": "EVALCORE_TEST_WRONG_KEY"},
                ),
                ModelSpec(name="random", kind="random"),
            ],
            api=ApiSettings(processes=False, workers=1, progress=False, requests_per_task=4),
            output_dir=tmp_path / "outputs",
            work_dir=tmp_path / "work",
        )
        first = eval_flow(config)
        assert server.behaviour.api_key == key and len(server.seen) == 24

        board = {r["model"]: r for r in first["leaderboard"]}
        assert board["api"]["n"] == 12 and board["api"]["failed"] == 1
        assert board["api-wrong-key"]["failed"] == 12 and board["api-wrong-key"]["accuracy"] == 0
        cells = {c.get("answered", -1): c for c in first["inference"] if "cache_hits" in c}
        assert set(cells) == {11, 0}
        assert cells[0]["failures"] == {"Unauthorized": 12}
        sheet = pd.read_excel(tmp_path / "outputs" / "api" / "api_Tiny.xlsx")
        failed = sheet[sheet["status"] == "failed"]
        assert list(failed["error_type"]) == ["BadRequest"] and failed["hit"].sum() == 0

        # the re-run: the clean cell is a Prefect cache hit; the failed ones retry only
        # their failures (none of them reaches the endpoint as an answered sample)
        server.reset_log()
        server.behaviour.scripted = {}
        second = eval_flow(config)
        assert len(server.seen) == 13 and doomed in {s.prompt for s in server.seen}
        assert {r["model"]: r for r in second["leaderboard"]}["api"]["failed"] == 0

    assert cli(["cache", "stats", "--work-dir", str(tmp_path / "work")]) == 0
    assert "test-model: 12" in capfd.readouterr().out

    for secret in (key, wrong):
        needle = secret.encode()
        assert files_containing(tmp_path / "outputs", needle) == []
        assert files_containing(tmp_path / "work", needle) == []  # logs, cache, results
        assert secret not in caplog.text
        assert not any(secret in line for line in prefect_log_lines())
    out, err = capfd.readouterr()
    assert key not in out + err and wrong not in out + err


def test_key_sources(prefect_harness, monkeypatch):
    from prefect.blocks.system import Secret

    base = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    assert resolve_api_key(EndpointSpec(**base)) is None
    monkeypatch.delenv("EVALCORE_UNSET_KEY", raising=False)
    with pytest.raises(ApiKeyMissing, match="EVALCORE_UNSET_KEY"):
        resolve_api_key(EndpointSpec(**base, api_key_env="EVALCORE_UNSET_KEY"))

    Secret(value="sk-from-block").save("evalcore-test-key", overwrite=True)
    key = resolve_api_key(EndpointSpec(**base, api_key_secret="evalcore-test-key"))
    assert key.get_secret_value() == "sk-from-block" and "sk-from-block" not in repr(key)
    with pytest.raises(ApiKeyMissing, match="no-such-block"):
        resolve_api_key(EndpointSpec(**base, api_key_secret="no-such-block"))


def test_a_secret_block_key_works_on_worker_processes(prefect_harness, small_bench, tmp_path):
    """`api_key_secret` on a LocalCluster of worker *processes*: each worker loads the
    block from the real Prefect API itself (inside its batch's event loop, where a plain
    `Secret.load` would return a coroutine) and every request carries the key."""
    from prefect.blocks.system import Secret
    from prefect.settings import get_current_settings

    from evalcore.api import close_dask_clients

    key = f"sk-block-{uuid.uuid4().hex}"
    Secret(value=key).save("evalcore-worker-key", overwrite=True)
    # what `evalcore run` does for the processes it starts (flows/cli/prefect_api.py)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_API_URL", get_current_settings().api.url)
        with OpenAIServer(Behaviour(api_key=key, echo_key_in_answer=True)) as server:
            endpoint = {"base_url": server.url, "model": "test-model", **FAST}
            config = EvalConfig(
                datasets=[DatasetSpec(tsv=small_bench, limit=8)],
                models=[
                    ModelSpec(
                        name="api-block",
                        kind="openai-compatible",
                        params={**endpoint, "api_key_secret": "evalcore-worker-key"},
                    )
                ],
                api=ApiSettings(processes=True, workers=1, task_slots=2, progress=False),
                output_dir=tmp_path / "outputs",
                work_dir=tmp_path / "work",
            )
            try:
                outcome = eval_flow(config)
            finally:
                close_dask_clients()
            assert outcome["leaderboard"][0]["failed"] == 0
            assert outcome["leaderboard"][0]["n"] == 8
            assert outcome["inference"][0]["answered"] == 8
            assert {s.outcome for s in server.seen} == {"ok"} and len(server.seen) == 8
    needle = key.encode()  # the server echoed it in every answer: scrubbed everywhere
    assert files_containing(tmp_path / "outputs", needle) == []
    assert files_containing(tmp_path / "work", needle) == []


def test_a_worker_without_the_key_fails_the_cell_once(small_bench, tmp_path, monkeypatch):
    """A worker that cannot find the key: one `KeyUnavailable` for the whole fan-out,
    naming the endpoint and the reason, and no request sent (not one failure a sample)."""
    from evalcore.api import close_dask_clients
    from evalcore.api.fanout import ClusterSpec, KeyUnavailable, dask_client, fan_out
    from tasks.secrets import KEY_RESOLVER
    from tests.doubles.chat_jobs import text_jobs

    monkeypatch.delenv("EVALCORE_LATE_KEY", raising=False)
    client = dask_client(ClusterSpec(workers=1, task_slots=2, processes=True))
    try:
        # set in this process only, after the workers started: they cannot see it
        monkeypatch.setenv("EVALCORE_LATE_KEY", "sk-late-0123456789")
        with OpenAIServer(Behaviour()) as server:
            spec = EndpointSpec(
                base_url=server.url, model="m", api_key_env="EVALCORE_LATE_KEY", timeout=2
            )
            handed: list = []
            with pytest.raises(KeyUnavailable, match="EVALCORE_LATE_KEY") as info:
                fan_out(client, text_jobs(12), spec, None, 2, handed.extend, KEY_RESOLVER)
            assert server.seen == [] and handed == []
            assert "cannot find the API key of m at" in str(info.value)
    finally:
        close_dask_clients()
