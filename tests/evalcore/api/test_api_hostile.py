"""What a hostile or broken endpoint sends back: redirects, oversized bodies, the key
echoed inside an answer. Each is a typed failure or a scrubbed answer, never stored as
it came."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr
from test_api_client import spec_for

from evalcore.api import ResponseCache, answer_jobs, answer_locally, local_runner
from evalcore.api.redaction import REDACTED, remember
from tests.doubles.chat_jobs import text_jobs


@pytest.mark.parametrize("status", ["302", "307"])
def test_a_redirect_is_a_typed_failure_not_a_get_whose_reply_is_the_answer(server, status):
    server.behaviour.scripted = {"prompt q0": [status]}
    [outcome] = answer_locally(text_jobs(1), spec_for(server), None)
    assert not outcome.ok and outcome.text is None  # not the "B" the GET route answers
    assert outcome.error_type == "Redirected"
    assert "/redirected" in outcome.error and "base_url" in outcome.error
    assert outcome.attempts == 1 and len(server.seen) == 1  # final: a redirect repeats


@pytest.mark.parametrize("fault", ["huge", "huge-stream"])
def test_a_response_over_max_response_bytes_is_refused(server, fault, tmp_path):
    server.behaviour.huge_bytes = 64 * 1024
    server.behaviour.scripted = {"prompt q0": [fault]}
    spec = spec_for(server, max_response_bytes=16 * 1024)
    outcomes: list = []
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        stats = answer_jobs(text_jobs(2), spec, cache, local_runner(spec, None), outcomes.append)
        assert cache.stats().entries == 1  # the normal answer only
    by_id = {o.job_id: o for o in outcomes}
    assert by_id["q1"].ok and by_id["q1"].text == "A"
    refused = by_id["q0"]
    assert not refused.ok and refused.error_type == "ResponseTooLarge"
    assert "16,384" in refused.error and refused.attempts == 1
    assert stats.failures == {"ResponseTooLarge": 1}


def test_a_body_within_the_limit_is_read_whole(server):
    server.behaviour.huge_bytes = 8 * 1024
    server.behaviour.scripted = {"prompt q0": ["huge-stream"]}
    [outcome] = answer_locally(text_jobs(1), spec_for(server, max_response_bytes=64 * 1024), None)
    assert outcome.ok and outcome.text == "A" * 8 * 1024


def test_an_echoed_key_is_scrubbed_from_the_answer_before_it_is_cached(server, tmp_path):
    key = "sk-echoed-0123456789abcdef"
    server.behaviour.api_key = key
    server.behaviour.echo_key_in_answer = True
    spec = spec_for(server)
    outcomes: list = []
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        runner = local_runner(spec, SecretStr(key))
        answer_jobs(text_jobs(3), spec, cache, runner, outcomes.append)
    assert all(o.ok and key not in o.text and REDACTED in o.text for o in outcomes)
    assert key.encode() not in (tmp_path / "c.sqlite3").read_bytes()
    for wal in tmp_path.glob("c.sqlite3-*"):
        assert key.encode() not in wal.read_bytes()


def test_a_remembered_key_is_scrubbed_from_every_log_record(caplog):
    key = "sk-logged-0123456789abcdef"
    remember(SecretStr(key))
    caplog.set_level(logging.INFO)
    log = logging.getLogger("some.library")
    log.info("request with Authorization: Bearer %s", key)
    try:
        raise RuntimeError(f"server said: bad key {key}")
    except RuntimeError:
        log.exception("failed")
    assert key not in caplog.text
    assert caplog.text.count(REDACTED) >= 2
    short = "abc"  # too short to scrub without erasing answers: left alone
    remember(SecretStr(short))
    log.info("abc stays")
    assert "abc stays" in caplog.text
