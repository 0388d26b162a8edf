"""Which API errors are worth another attempt, and how long to wait before it.

Transient: 408, 409, 429, 5xx, timeouts, connection errors, unparsable bodies. Final at
once: 400, 401, 403, 404, 422 and any other 4xx (the same request will fail the same way).
Waits are exponential with full jitter, except that a server's `retry-after-ms` or
`Retry-After` (seconds or an HTTP date) is honoured, up to a cap.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from evalcore.predictions.failures import FailureKind

# HTTP status -> error type recorded on the failure (typed, never a magic answer string)
STATUS_TYPES = {
    400: FailureKind.BadRequest,
    401: FailureKind.Unauthorized,
    403: FailureKind.Forbidden,
    404: FailureKind.NotFound,
    408: FailureKind.RequestTimeout,
    409: FailureKind.Conflict,
    413: FailureKind.PayloadTooLarge,
    422: FailureKind.Unprocessable,
    429: FailureKind.RateLimited,
}
RETRYABLE_STATUS = frozenset({408, 409, 429})


class ApiError(Exception):
    """One failed attempt. `error_type` names the class of failure in records and reports."""

    def __init__(
        self,
        error_type: FailureKind,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.throttled = False  # the server said: too many (429, 503)


def status_error(status: int, message: str, retry_after: float | None = None) -> ApiError:
    """The error of a non-2xx answer; a server's Retry-After is kept on every status
    (a 503 with `Retry-After: 1` means: come back in a second)."""
    if status >= 500:
        error = ApiError(
            FailureKind.ServerError,
            f"HTTP {status}: {message}",
            retryable=True,
            retry_after=retry_after,
        )
    else:
        error = ApiError(
            STATUS_TYPES.get(status, FailureKind.ClientError),
            f"HTTP {status}: {message}",
            retryable=status in RETRYABLE_STATUS,
            retry_after=retry_after,
        )
    error.throttled = status in (429, 503)
    return error


def parse_retry_after(headers, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms` (OpenAI) first, then
    `Retry-After` as seconds or an HTTP date. None when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter; a server-requested wait takes precedence."""

    initial: float = 1.0
    maximum: float = 60.0
    retry_after_max: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None, rng=random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            # a little jitter on top, so clients told the same time do not return together
            wait = min(retry_after, self.retry_after_max)
            return wait + rng.uniform(0, min(0.1 * wait, 1.0))
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)
