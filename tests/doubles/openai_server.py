"""A loopback server speaking OpenAI's chat-completions protocol, with programmable faults.

Real HTTP/1.1 with keep-alive on 127.0.0.1, written on asyncio streams rather than an ASGI
framework because the faults need the socket itself: a connection reset is an RST
(SO_LINGER 0), a timeout is a request the server never answers in time, a malformed body
is a 200 whose JSON is cut short. Used by the tests (in a thread, `OpenAIServer`) and by
`bench/api.py` (in its own process: `python openai_server.py --latency 0.1`).

Faults, by name: "429" (with Retry-After), any other status code ("500", "503", "400",
...), "timeout" (stalls `hang` seconds), "malformed" (200 with cut JSON), "empty" (200
without choices), "blank" (200 whose content is ""), "reset" (TCP RST after reading the
request), "302" (a redirect to a GET route that answers a completion, as a misconfigured
proxy might), "huge" (a 200 of `huge_bytes`, with Content-Length) and "huge-stream" (the
same without Content-Length, until the connection closes).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

REASONS = {
    200: "OK",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
RANDOM_FAULTS = ("429", "500", "503", "timeout", "malformed", "reset")


@dataclass
class Behaviour:
    """What the server does. Mutable between requests (tests change it mid-run)."""

    latency: float = 0.0  # seconds before every response
    api_key: str | None = None  # required bearer token; None accepts anything
    echo_key_on_401: bool = True  # like careless real servers: the 401 body quotes the key
    fault_rate: float = 0.0  # share of requests failing with a fault from `faults`
    faults: tuple[str, ...] = RANDOM_FAULTS
    seed: int = 0
    retry_after: str = "0"  # Retry-After header value sent with these statuses:
    retry_after_statuses: frozenset[int] = frozenset({429})
    retry_after_ms: int | None = 20  # OpenAI's `retry-after-ms`; None: not sent
    hang: float = 3.0  # how long a "timeout" stalls before answering
    # prompt substring or request digest (`content_digest`) -> outcome per successive
    # request ("ok", "429", "reset", ...); the last item repeats. Checked before fault_rate.
    scripted: dict[str, list[str]] = field(default_factory=dict)
    answer: Callable[[str, str], str] = lambda prompt, digest: "A"  # noqa: E731  -> reply
    # a requests-per-minute limit as a token bucket (a second's worth of burst): a request
    # without a token gets 429 with the wait until the next one (retry-after-ms, Retry-After)
    requests_per_minute: float | None = None
    echo_key_in_answer: bool = False  # a careless server: the answer quotes the bearer token
    huge_bytes: int = 1 << 20  # the size of a "huge" answer


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    prompt: str
    digest: str  # content_digest of the user message: which sample (prompt and frames)
    outcome: str
    images: int
    videos: int
    model: str
    body: dict
    at: float = 0.0  # time.monotonic() when the request arrived


class OpenAIServer:
    """Run in a background thread: `with OpenAIServer(Behaviour(...)) as server: server.url`."""

    def __init__(
        self, behaviour: Behaviour | None = None, port: int = 0, record: bool = True
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.port = port
        self.record = record  # keep every request in `seen` (the bench turns it off)
        self.seen: list[Seen] = []
        self.answered: list[tuple[str, float]] = []  # (prompt, monotonic time) per 200 answer
        # (content_digest, arrived, answered) of each 200 answer, monotonic times, in order
        self.answered_requests: list[tuple[str, float, float]] = []
        self.connections = 0
        self.in_flight = 0  # requests read and not yet answered
        self.max_in_flight = 0
        self._unanswered: set[asyncio.StreamWriter] = set()
        self._per_prompt: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()  # fault_rate draws, by content digest
        self._tokens: float | None = None
        self._refilled = time.monotonic()
        self.rate_limited = 0  # requests refused by the requests_per_minute bucket
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._run, name="openai-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        if self._loop:
            self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(self.listen())
        self._ready.set()
        self._loop.run_forever()

    async def listen(self) -> asyncio.base_events.Server:
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        return server

    # -- inspection ------------------------------------------------------------------
    def prompts(self) -> list[str]:
        with self._lock:
            return [s.prompt for s in self.seen]

    def outcomes(self) -> Counter[str]:
        with self._lock:
            return Counter(s.outcome for s in self.seen)

    def reset_log(self) -> None:
        with self._lock:
            self.seen.clear()
            self.answered.clear()
            self.answered_requests.clear()
            self._per_prompt.clear()
            self.max_in_flight = 0

    # -- HTTP ------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self._unanswered.add(writer)
                try:
                    keep_open = await self._respond(method, path, headers, body, writer)
                finally:
                    self._answered(writer)
                if not keep_open:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # server shutting down
            pass
        finally:
            writer.close()

    def _answered(self, writer) -> None:
        # counted before the response is written: the client may send its next request
        # the moment it reads this one, before this coroutine runs again
        if writer in self._unanswered:
            self._unanswered.discard(writer)
            self.in_flight -= 1

    async def _send(
        self, writer, status: int, payload: bytes, extra: dict | None = None, length=True
    ):
        self._answered(writer)
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
        head += ["Content-Type: application/json"]
        head += [f"Content-Length: {len(payload)}"] if length else ["Connection: close"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()

    async def _respond(self, method, path, headers, body, writer) -> bool:
        b = self.behaviour
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await self._send(writer, 200, json.dumps({"data": [{"id": "test-model"}]}).encode())
            return True
        if method == "GET" and path.rstrip("/").endswith("/redirected"):  # where "302" points
            reply = _completion({"model": "test-model"}, "B")
            await self._send(writer, 200, json.dumps(reply).encode())
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._send(writer, 404, b'{"error": {"message": "no such route"}}')
            return True
        try:
            request = json.loads(body)
            prompt, images, videos = _read_messages(request["messages"])
        except (ValueError, KeyError, TypeError) as exc:
            await self._send(writer, 400, json.dumps({"error": {"message": str(exc)}}).encode())
            return True
        digest = content_digest(request["messages"][-1]["content"]) if self.record else ""
        outcome = self._decide(prompt, digest)
        arrived = time.monotonic()
        presented = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if b.api_key is not None and presented != b.api_key:
            outcome = "401"
        if self.record:
            with self._lock:
                self.seen.append(
                    Seen(
                        prompt,
                        digest,
                        outcome,
                        images,
                        videos,
                        str(request.get("model")),
                        request,
                        arrived,
                    )
                )
        if outcome == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._answered(writer)
            writer.transport.abort()
            return False
        if outcome == "timeout":
            await asyncio.sleep(b.hang)
            outcome = "ok"
        if b.latency:
            await asyncio.sleep(b.latency)
        if outcome == "ok":
            text = b.answer(prompt, digest)
            if b.echo_key_in_answer:
                text = f"{text} (you sent me {presented})"
            reply = _completion(request, text)
            if self.record:  # stamped as it leaves, before the write (no await between):
                with self._lock:  # a stamp after `drain` came late on a loaded machine,
                    now = time.monotonic()  # after the client had read the answer
                    self.answered.append((prompt, now))
                    self.answered_requests.append((digest, arrived, now))
            await self._send(writer, 200, json.dumps(reply).encode())
        elif outcome in ("huge", "huge-stream"):
            reply = json.dumps(_completion(request, "A" * b.huge_bytes)).encode()
            await self._send(writer, 200, reply, length=outcome == "huge")
            return outcome == "huge"
        elif outcome == "malformed":
            await self._send(writer, 200, b'{"id": "chatcmpl-x", "choices": [{"mess')
        elif outcome == "blank":  # a completion whose content is ""
            await self._send(writer, 200, json.dumps(_completion(request, "")).encode())
        elif outcome.startswith("rate:"):
            wait = float(outcome.removeprefix("rate:"))
            extra = {"retry-after-ms": str(max(1, round(wait * 1000))), "Retry-After": "1"}
            error = {"error": {"message": "rate limit reached", "code": 429}}
            await self._send(writer, 429, json.dumps(error).encode(), extra)
        elif outcome == "empty":
            await self._send(writer, 200, b'{"id": "chatcmpl-x", "object": "chat.completion"}')
        else:
            status = int(outcome)
            message = f"simulated {status}"
            if status == 401:
                message = (
                    f"Incorrect API key provided: {presented}" if b.echo_key_on_401 else "bad key"
                )
            extra = {}
            if 300 <= status < 400:
                extra["Location"] = f"{self.url}/redirected"
            if status in b.retry_after_statuses:
                extra["Retry-After"] = b.retry_after
                if b.retry_after_ms is not None:
                    extra["retry-after-ms"] = str(b.retry_after_ms)
            error = {"error": {"message": message, "type": "simulated", "code": status}}
            await self._send(writer, status, json.dumps(error).encode(), extra)
        return True

    def _take_token(self) -> float | None:
        """None when the request may go on; else seconds until a token is available."""
        rate = self.behaviour.requests_per_minute / 60.0
        now = time.monotonic()
        if self._tokens is None:
            self._tokens = rate
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        self.rate_limited += 1
        return (1.0 - self._tokens) / rate

    def _decide(self, prompt: str, digest: str) -> str:
        b = self.behaviour
        with self._lock:
            if b.requests_per_minute and (wait := self._take_token()) is not None:
                return f"rate:{wait:.3f}"
            for marker, plan in b.scripted.items():
                if marker == digest or marker in prompt:
                    n = self._per_prompt[marker]
                    self._per_prompt[marker] += 1
                    return plan[min(n, len(plan) - 1)]
            if b.fault_rate:
                # drawn per (prompt, attempt), not in arrival order: the same requests
                # fail whatever order the concurrent requests arrive in
                attempt = self._attempts[digest]
                self._attempts[digest] += 1
                rng = random.Random(f"{b.seed}:{digest}:{attempt}")
                if rng.random() < b.fault_rate:
                    return rng.choice(b.faults)
        return "ok"


def content_digest(content: str | list[dict]) -> str:
    """Identifies a request's user message (prompt and media), as tests compute it too."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def _read_messages(messages: list[dict]) -> tuple[str, int, int]:
    """Text of every message joined, and the number of image and video parts."""
    texts, images, videos = [], 0, 0
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content:
            kind = part["type"]
            if kind == "text":
                texts.append(part["text"])
            elif kind == "image_url":
                if not part["image_url"]["url"].startswith("data:image/jpeg;base64,"):
                    raise ValueError("image_url is not a JPEG data URL")
                images += 1
            elif kind == "video_url":
                videos += 1
            else:
                raise ValueError(f"unknown content part {kind!r}")
    return "\n".join(texts), images, videos


def _usage(request: dict, text: str) -> dict:
    """Tokens as whitespace-separated words: the text parts of the messages, the reply."""
    words = 0
    for message in request.get("messages", []):
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        words += sum(len(str(p.get("text", "")).split()) for p in parts if p.get("type") == "text")
    reply = len(text.split())
    return {"prompt_tokens": words, "completion_tokens": reply, "total_tokens": words + reply}


def _completion(request: dict, text: str) -> dict:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(request, text),
    }


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground (the bench runs it as a separate process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=None, help="requests-per-minute limit")
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        latency=args.latency, fault_rate=args.fault_rate, requests_per_minute=args.rpm
    )
    server = OpenAIServer(behaviour, args.port, record=False)

    async def serve() -> None:
        listener = await server.listen()
        print(f"ready {server.url}", flush=True)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
