"""API models: OpenAI-compatible endpoints fanned out over Dask, with a response cache.

`EndpointSpec` is a model's params; `ResponseCache` keeps successful answers on disk;
`answer_jobs` answers `ChatJob`s from the cache or through a runner (`dask_runner`,
`local_runner`; the judge, `evalcore.judge`, uses the same path). The per-cell entry point
is `evalcore.inference.api.infer_api_cell` (imported on its own: it pulls in the pipeline).

Importing this package imports none of them: each name is imported from its module on
first use (the HTTP client, aiohttp, is paid for only by a run that calls an endpoint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalcore.lazy import lazy_exports

if TYPE_CHECKING:
    from evalcore.api.answers import AnswerStats, answer_jobs, dask_runner, local_runner
    from evalcore.api.cache import CacheStats, ResponseCache, response_key
    from evalcore.api.client import ChatJob, ChatOutcome, answer_locally
    from evalcore.api.endpoint import EndpointSpec, parse_endpoint
    from evalcore.api.fanout import ClusterSpec, close_dask_clients, dask_client, fan_out
    from evalcore.api.retry import ApiError, Backoff, parse_retry_after

_EXPORTS = {
    "AnswerStats": "evalcore.api.answers",
    "ApiError": "evalcore.api.retry",
    "Backoff": "evalcore.api.retry",
    "CacheStats": "evalcore.api.cache",
    "ChatJob": "evalcore.api.client",
    "ChatOutcome": "evalcore.api.client",
    "ClusterSpec": "evalcore.api.fanout",
    "EndpointSpec": "evalcore.api.endpoint",
    "ResponseCache": "evalcore.api.cache",
    "answer_jobs": "evalcore.api.answers",
    "answer_locally": "evalcore.api.client",
    "close_dask_clients": "evalcore.api.fanout",
    "dask_client": "evalcore.api.fanout",
    "dask_runner": "evalcore.api.answers",
    "fan_out": "evalcore.api.fanout",
    "local_runner": "evalcore.api.answers",
    "parse_endpoint": "evalcore.api.endpoint",
    "parse_retry_after": "evalcore.api.retry",
    "response_key": "evalcore.api.cache",
}

__all__ = [
    "AnswerStats",
    "ApiError",
    "Backoff",
    "CacheStats",
    "ChatJob",
    "ChatOutcome",
    "ClusterSpec",
    "EndpointSpec",
    "ResponseCache",
    "answer_jobs",
    "answer_locally",
    "close_dask_clients",
    "dask_client",
    "dask_runner",
    "fan_out",
    "local_runner",
    "parse_endpoint",
    "parse_retry_after",
    "response_key",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
