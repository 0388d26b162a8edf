"""One chat-completions request per job, with retries, over a pooled async HTTP client.

A `ChatJob` is what the fan-out ships to a worker: small (prompt text, frame file paths),
so thousands fit in a task graph; the request body with its base64 frames is built on
the worker, only once a lease is held, so memory holds at most the in-flight bodies.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from evalcore.api.endpoint import EndpointSpec
from evalcore.api.gate import LocalGate
from evalcore.api.redaction import redact
from evalcore.api.retry import ApiError, Backoff, parse_retry_after, status_error
from evalcore.predictions.failures import FailureKind

VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
}


@dataclass(frozen=True)
class ChatJob:
    """One request to make: a sample to answer, or a text for the judge."""

    job_id: str
    prompt: str
    cache_key: str
    frames: Any = None  # a frame-cache entry (`.jpeg_bytes()`), or None for text only
    video_path: str | None = None  # media=video_file: the source video
    system: str | None = None  # the benchmark's system turn (else the endpoint's own)


@dataclass(frozen=True)
class ChatOutcome:
    """What became of a job in this run: text, or a typed failure. Never both."""

    job_id: str
    cache_key: str
    text: str | None = None
    error_type: str | None = None
    error: str | None = None
    attempts: int = 0  # HTTP attempts in this run (0: answered from the response cache)
    seconds: float = 0.0
    cached: bool = False
    prompt_tokens: int = 0  # the server's `usage` of the answering attempt (0: unknown,
    completion_tokens: int = 0  # or from the cache: no cost)

    @property
    def ok(self) -> bool:
        return self.text is not None


# -- request bodies ----------------------------------------------------------------------
def _jpegs(frames: Any) -> list[bytes]:
    if hasattr(frames, "jpeg_bytes"):
        return list(frames.jpeg_bytes())
    return [Path(p).read_bytes() for p in frames.paths]


def _resize(jpeg: bytes, max_side: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as img:
        if max(img.size) <= max_side:
            return jpeg
        img = img.convert("RGB")
        img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=90)
        return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def media_parts(spec: EndpointSpec, job: ChatJob) -> list[dict]:
    """The content parts carrying the video, in the form `spec.media` asks for."""
    if spec.media == "video_file":
        if not job.video_path:
            raise ApiError(
                FailureKind.MediaError,
                "media=video_file but the sample has no video",
                retryable=False,
            )
        path = Path(job.video_path)
        kind = VIDEO_TYPES.get(path.suffix.lower(), "video/mp4")
        url = f"data:{kind};base64,{_b64(path.read_bytes())}"
        return [{"type": "video_url", "video_url": {"url": url}}]
    if job.frames is None:
        return []
    jpegs = _jpegs(job.frames)
    if spec.image_max_side:  # re-encode only when asked to resize
        jpegs = [_resize(j, spec.image_max_side) for j in jpegs]
    if spec.media == "video_frames":  # vLLM reads `data:video/jpeg;base64,<f1>,<f2>,...`
        url = "data:video/jpeg;base64," + ",".join(_b64(j) for j in jpegs)
        return [{"type": "video_url", "video_url": {"url": url}}]
    return [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{_b64(j)}"}}
        for j in jpegs
    ]


def build_body(spec: EndpointSpec, job: ChatJob) -> bytes:
    """The JSON body of the request; frames first, then the prompt."""
    parts = media_parts(spec, job)
    content: str | list[dict] = job.prompt
    if parts:
        content = [*parts, {"type": "text", "text": job.prompt}]
    messages = [{"role": "user", "content": content}]
    system = job.system or spec.system_prompt
    if system:
        messages.insert(0, {"role": "system", "content": system})
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": messages,
        "max_tokens": spec.max_tokens,
        "temperature": spec.temperature,
    }
    if spec.top_p is not None:
        body["top_p"] = spec.top_p
    gen = spec.generation_params()
    if gen["seed"] is not None:
        body["seed"] = gen["seed"]
    body.update(spec.extra_body)
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _encode(spec: EndpointSpec, job: ChatJob) -> bytes:
    try:
        return build_body(spec, job)
    except ApiError:
        raise
    except Exception as exc:  # unreadable frame file, bad JPEG, missing video
        raise ApiError(
            FailureKind.MediaError, f"{type(exc).__name__}: {exc}", retryable=False
        ) from exc


# -- one HTTP attempt --------------------------------------------------------------------
async def _read_capped(resp: aiohttp.ClientResponse, limit: int, answer: bool) -> bytes:
    """The body, refused past `limit` bytes (an answer: `ResponseTooLarge`; an error
    body: cut, only its first bytes are read for the message)."""
    if answer and resp.content_length is not None and resp.content_length > limit:
        raise _too_large(resp.content_length, limit)
    raw = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        raw += chunk
        if len(raw) > limit:
            if answer:
                raise _too_large(None, limit)
            break
    return bytes(raw[:limit])


def _too_large(size: int | None, limit: int) -> ApiError:
    said = f"{size:,} bytes" if size is not None else "more"
    return ApiError(
        FailureKind.ResponseTooLarge,
        f"the response is {said}, over max_response_bytes ({limit:,})",
        retryable=False,
    )


def _error_message(body: bytes, reason: str | None) -> str:
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:500]
    except (ValueError, AttributeError):
        pass
    return body[:500].decode("utf-8", "replace") or (reason or "")


def parse_usage(data: Any) -> tuple[int, int]:
    """(prompt, completion) tokens from a completion's `usage`; (0, 0) when absent."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return 0, 0


def parse_completion(data: Any) -> str:
    """The answer text of a chat completion; malformed shapes raise a retryable error."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise ApiError(
            FailureKind.MalformedResponse, "response has no choices[0].message", retryable=True
        ) from None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is None or not str(content).strip():
        # "" or null is no answer: a typed failure, never cached as a success. Retryable:
        # servers return it under load (a content filter says so in finish_reason).
        reason = choice.get("finish_reason")
        shown = "null" if content is None else repr(content)
        raise ApiError(
            FailureKind.EmptyResponse, f"content {shown} (finish_reason={reason})", retryable=True
        )
    return str(content)


async def post_chat(
    http: aiohttp.ClientSession, spec: EndpointSpec, body: bytes, api_key: SecretStr | None
) -> tuple[str, tuple[int, int]]:
    """One attempt, bounded by `spec.timeout` in total (connect, send, wait, read): the
    answer and its (prompt, completion) token usage."""
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    try:
        async with asyncio.timeout(spec.timeout):
            # a redirect is never followed: aiohttp would re-send the POST as a GET and
            # take whatever that returns for the answer
            async with http.post(
                f"{spec.base_url}/chat/completions",
                data=body,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                status, reason = resp.status, resp.reason
                retry_after = parse_retry_after(resp.headers)
                location = resp.headers.get("Location", "")
                raw = await _read_capped(resp, spec.max_response_bytes, status < 300)
    except TimeoutError:  # asyncio's deadline, and aiohttp's own timeouts
        raise ApiError(
            FailureKind.Timeout, f"no response within {spec.timeout:g} s", retryable=True
        ) from None
    except aiohttp.ClientError as exc:  # refused, reset, disconnected, truncated body
        raise ApiError(
            FailureKind.ConnectionError, f"{type(exc).__name__}: {exc}", retryable=True
        ) from None
    if 300 <= status < 400:
        raise ApiError(
            FailureKind.Redirected,
            f"HTTP {status} to {location or '(no Location)'}: redirects are not followed "
            "(a POST would be re-sent as a GET); set base_url to the final address",
            retryable=False,
        )
    if status >= 300:
        raise status_error(status, _error_message(raw, reason), retry_after)
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(
            FailureKind.MalformedResponse, f"unparsable body ({len(raw)} bytes)", retryable=True
        ) from None
    return parse_completion(data), parse_usage(data)


# -- a job with retries ------------------------------------------------------------------
async def answer_job(
    job: ChatJob,
    spec: EndpointSpec,
    api_key: SecretStr | None,
    http: aiohttp.ClientSession,
    gate: LocalGate,
    rng: random.Random | None = None,
    on_attempt: Callable[[Any, float | None, bool], None] | None = None,
) -> ChatOutcome:
    """Up to `spec.max_attempts` attempts; the outcome is an answer or a typed failure.
    `on_attempt(lease, latency or None, throttled)` hears of every attempt (`auto`)."""
    rng = rng or random.Random()
    backoff = Backoff(spec.backoff_initial, spec.backoff_max, spec.retry_after_max)
    started = time.monotonic()
    body: bytes | None = None
    attempts = 0
    last: ApiError | None = None
    while attempts < spec.max_attempts:
        lease = await gate.acquire()
        try:
            if body is None:  # file reads and base64 off the event loop; text inline
                has_media = job.frames is not None or job.video_path is not None
                body = (
                    await asyncio.to_thread(_encode, spec, job) if has_media else _encode(spec, job)
                )
            attempts += 1
            sent = time.monotonic()
            text, (prompt_tokens, completion_tokens) = await post_chat(http, spec, body, api_key)
            if on_attempt is not None:
                on_attempt(lease, time.monotonic() - sent, False)
            elapsed = round(time.monotonic() - started, 4)
            return ChatOutcome(
                job.job_id,
                job.cache_key,
                redact(text, api_key),  # a server may echo the key: never stored
                attempts=attempts,
                seconds=elapsed,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        except ApiError as exc:
            last = exc
            if exc.throttled:  # the endpoint's word: the gate holds back every lease
                retry_after = exc.retry_after and min(exc.retry_after, spec.retry_after_max)
                gate.throttled(lease, retry_after)
            if on_attempt is not None:
                on_attempt(lease, None, exc.throttled)
        finally:
            gate.release(lease)
        if not last.retryable or attempts >= spec.max_attempts:
            break
        await asyncio.sleep(backoff.delay(attempts, last.retry_after, rng))
    assert last is not None
    note = "" if not last.retryable else f" (gave up after {attempts} attempts)"
    return ChatOutcome(
        job.job_id,
        job.cache_key,
        error_type=last.error_type,
        error=redact(last.message + note, api_key),
        attempts=attempts,
        seconds=round(time.monotonic() - started, 4),
    )


def new_session(spec: EndpointSpec) -> aiohttp.ClientSession:
    """A pooled HTTP session; its connection limit is a per-process ceiling (the gate
    decides how many requests are on the wire)."""
    connector = aiohttp.TCPConnector(limit=spec.in_flight_ceiling)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


# One session per event loop and endpoint, reused by every batch a worker runs.
_SESSIONS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple, aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()


def shared_session(spec: EndpointSpec) -> aiohttp.ClientSession:
    sessions = _SESSIONS.setdefault(asyncio.get_running_loop(), {})
    key = (spec.base_url, spec.in_flight_ceiling)
    if key not in sessions or sessions[key].closed:
        sessions[key] = new_session(spec)
    return sessions[key]


async def answer_batch(
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    api_key: SecretStr | None,
    gate=None,
    http: aiohttp.ClientSession | None = None,
    on_outcome: Callable[[ChatOutcome], None] | None = None,
) -> list[ChatOutcome]:
    """Every job of a batch at once; the gate bounds how many are on the wire.
    `on_outcome` hears of each outcome as it is made, before the next request starts."""
    limit = spec.in_flight_ceiling if not spec.adaptive else 32  # alone: no controller
    gate = gate or LocalGate(limit, spec.min_hold(limit))
    http = http or shared_session(spec)
    rng = random.Random()

    async def answer(job: ChatJob) -> ChatOutcome:
        outcome = await answer_job(job, spec, api_key, http, gate, rng)
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    return list(await asyncio.gather(*(answer(j) for j in jobs)))


def answer_locally(
    jobs: Sequence[ChatJob],
    spec: EndpointSpec,
    api_key: SecretStr | None,
    on_outcome: Callable[[ChatOutcome], None] | None = None,
) -> list[ChatOutcome]:
    """Answer jobs from this process alone (no cluster): small runs, the model adapter.
    `on_outcome` is called in this thread, with each outcome as it arrives."""

    async def run() -> list[ChatOutcome]:
        async with new_session(spec) as http:
            return await answer_batch(jobs, spec, api_key, http=http, on_outcome=on_outcome)

    return asyncio.run(run())
