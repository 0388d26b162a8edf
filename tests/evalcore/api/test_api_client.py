"""Requests over real HTTP on loopback: faults, retries, typed failures, media encoding."""

from __future__ import annotations

import base64
import io

import pytest
from pydantic import SecretStr

from evalcore.api import ChatJob, EndpointSpec, answer_locally
from evalcore.models import GenerationConfig, ModelError, ModelOutput, VideoRequest, build_model
from tests.doubles.chat_jobs import text_jobs


def spec_for(server, **overrides) -> EndpointSpec:
    params = dict(
        base_url=server.url,
        model="test-model",
        timeout=0.5,
        max_attempts=4,
        backoff_initial=0.01,
        backoff_max=0.05,
    )
    return EndpointSpec(**{**params, **overrides})


@pytest.mark.parametrize("fault", ["429", "500", "503", "408", "timeout", "malformed", "reset"])
def test_transient_fault_is_retried_until_answered(server, fault):
    server.behaviour.hang = 2.0
    server.behaviour.scripted = {"prompt q0": [fault, fault, "ok"]}
    [outcome] = answer_locally(text_jobs(1), spec_for(server), None)
    assert outcome.ok and outcome.text == "A"
    assert outcome.attempts == 3
    assert [s.outcome for s in server.seen] == [fault, fault, "ok"]


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("404", "NotFound"),
        ("422", "Unprocessable"),
        ("empty", "MalformedResponse"),
    ],
)
def test_final_or_exhausted_faults_become_typed_failures(server, fault, error_type):
    server.behaviour.scripted = {"prompt q0": [fault]}
    [outcome] = answer_locally(text_jobs(1), spec_for(server), None)
    assert not outcome.ok and outcome.text is None
    assert outcome.error_type == error_type
    retried = fault == "empty"  # an unparsable answer is worth another attempt
    assert outcome.attempts == (4 if retried else 1) == len(server.seen)


def test_out_of_attempts_records_the_last_error(server):
    server.behaviour.scripted = {"prompt q0": ["500", "reset", "503"]}
    [outcome] = answer_locally(text_jobs(1), spec_for(server, max_attempts=3), None)
    assert outcome.error_type == "ServerError"
    assert "HTTP 503" in outcome.error and "gave up after 3 attempts" in outcome.error


def test_retry_after_in_seconds_is_honoured(server):
    server.behaviour.retry_after = "1"
    server.behaviour.retry_after_ms = None
    server.behaviour.scripted = {"prompt q0": ["429", "ok"]}
    [outcome] = answer_locally(text_jobs(1), spec_for(server), None)
    assert outcome.ok and outcome.attempts == 2
    first, second = server.seen
    # 1 s and its jitter (<= 0.1 s) as the server saw it; backoff alone would wait <= 0.01 s,
    # and the bound above is slack for a loaded machine, far below retry_after_max (120 s)
    assert 1.0 <= second.at - first.at < 30.0


def test_key_is_sent_as_bearer_and_redacted_from_errors(server):
    key = "sk-test-PLANTED-0123456789"
    server.behaviour.api_key = key
    [good] = answer_locally(text_jobs(1), spec_for(server), SecretStr(key))
    assert good.ok
    [bad] = answer_locally(text_jobs(1, "w"), spec_for(server), SecretStr(key + "-wrong"))
    assert bad.error_type == "Unauthorized" and bad.attempts == 1
    assert key not in bad.error and "[redacted]" in bad.error  # the server echoed it


def test_frames_go_as_the_cached_jpeg_bytes(server, jpeg_frames):
    job = ChatJob("s1", "What is shown?", "k", frames=jpeg_frames)
    [outcome] = answer_locally([job], spec_for(server), None)
    assert outcome.ok
    [seen] = server.seen
    assert seen.images == 3 and seen.prompt == "What is shown?"
    parts = seen.body["messages"][0]["content"]
    sent = [base64.b64decode(p["image_url"]["url"].split(",", 1)[1]) for p in parts[:3]]
    assert sent == jpeg_frames.jpeg_bytes()  # no re-encoding
    assert parts[-1] == {"type": "text", "text": "What is shown?"}


def test_resize_and_video_modes(server, jpeg_frames, tmp_path):
    from PIL import Image

    job = ChatJob("s1", "p", "k", frames=jpeg_frames)
    answer_locally([job], spec_for(server, image_max_side=64), None)
    url = server.seen[-1].body["messages"][0]["content"][0]["image_url"]["url"]
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
        assert max(img.size) == 64

    answer_locally([job], spec_for(server, media="video_frames"), None)
    [part, _] = server.seen[-1].body["messages"][0]["content"]
    assert part["video_url"]["url"].startswith("data:video/jpeg;base64,")
    assert part["video_url"]["url"].count(",") == 3  # one base64 JPEG per frame

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42 fake")
    vjob = ChatJob("s2", "p", "k2", video_path=str(video))
    answer_locally([vjob], spec_for(server, media="video_file"), None)
    [part, _] = server.seen[-1].body["messages"][0]["content"]
    assert (
        part["video_url"]["url"]
        == "data:video/mp4;base64," + base64.b64encode(video.read_bytes()).decode()
    )


def test_generation_params_reach_the_server(server):
    spec = spec_for(
        server,
        max_tokens=7,
        temperature=0.7,
        seed=3,
        system_prompt="Be brief.",
        extra_body={"top_k": 5},
    )
    answer_locally(text_jobs(1), spec, None)
    body = server.seen[0].body
    assert body["model"] == "test-model" and body["max_tokens"] == 7
    assert body["temperature"] == 0.7 and body["seed"] == 3 and body["top_k"] == 5
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_video_model_adapter_answers_and_fails_a_request_alone(server, jpeg_frames):
    params = {"base_url": server.url, "model": "test-model", "timeout": 0.5}
    model = build_model("openai-compatible", params)
    request = VideoRequest("s1", "prompt q0", "q", ("a", "b"), jpeg_frames)
    (answer,) = model.generate([request], GenerationConfig())
    assert isinstance(answer, ModelOutput) and answer.text == "A"
    server.behaviour.scripted = {"prompt q0": ["400"]}
    (failure,) = model.generate([request], GenerationConfig())  # failed alone, as a value
    assert isinstance(failure, ModelError) and failure.error_type == "BadRequest"


def test_retry_after_is_honoured_on_5xx_too(server):
    """A 503 with `Retry-After: 1`: the next attempt comes a second later (server-side
    timing), not after the short exponential backoff."""
    server.behaviour.retry_after = "1"
    server.behaviour.retry_after_ms = None
    server.behaviour.retry_after_statuses = frozenset({429, 503})
    server.behaviour.scripted = {"prompt q0": ["503", "ok"]}
    (outcome,) = answer_locally(text_jobs(1), spec_for(server), None)
    assert outcome.ok and outcome.attempts == 2
    first, second = server.seen
    assert second.at - first.at >= 1.0


def test_blank_completion_is_a_typed_retryable_failure_never_an_answer(server):
    server.behaviour.scripted = {"prompt q0": ["blank"]}
    (outcome,) = answer_locally(text_jobs(1), spec_for(server, max_attempts=2), None)
    assert not outcome.ok and outcome.error_type == "EmptyResponse" and outcome.text is None
    assert outcome.attempts == 2  # retried, then given up as a failure
    server.behaviour.scripted = {"prompt q0": ["blank", "ok"]}
    server.reset_log()
    (outcome,) = answer_locally(text_jobs(1), spec_for(server, max_attempts=2), None)
    assert outcome.ok and outcome.text == "A"


def test_credentials_in_base_url_are_rejected_without_echoing_them():
    from evalcore.models import ModelParamsError, parse_params

    params = {"base_url": "https://user:sk-Secret123@api.example.com/v1", "model": "m"}
    with pytest.raises(ModelParamsError) as info:
        parse_params("openai-compatible", params)
    assert "params.base_url: holds credentials" in str(info.value)
    assert "sk-Secret123" not in str(info.value)
