"""Which errors are retried and how long the client waits (pure functions, no I/O)."""

from __future__ import annotations

import email.utils
import random

import pytest

from evalcore.api.retry import Backoff, parse_retry_after, status_error


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    assert status_error(status, "x").retryable


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "BadRequest"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "NotFound"),
        (422, "Unprocessable"),
        (413, "PayloadTooLarge"),
        (418, "ClientError"),
    ],
)
def test_client_errors_fail_at_once_with_a_type(status, error_type):
    err = status_error(status, "nope")
    assert not err.retryable
    assert err.error_type == error_type
    assert f"HTTP {status}" in err.message


def test_retry_after_prefers_milliseconds_then_seconds_then_date():
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_is_exponential_with_full_jitter_and_capped():
    rng = random.Random(1)
    b = Backoff(initial=1.0, maximum=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [b.delay(attempt, rng=rng) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= ceiling
        assert max(waits) > 0.8 * ceiling  # spread over the whole range (full jitter)


def test_server_requested_wait_wins_up_to_its_cap():
    b = Backoff(initial=0.01, maximum=0.01, retry_after_max=5.0)
    assert 2.0 <= b.delay(1, retry_after=2.0) <= 2.2
    assert 5.0 <= b.delay(1, retry_after=3600) <= 5.5
