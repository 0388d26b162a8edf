"""API models: OpenAI-compatible endpoints fanned out over Dask, with a response cache.

`EndpointSpec` is a model's params; `ResponseCache` keeps successful answers on disk;
`answer_jobs` answers `ChatJob`s from the cache or through a runner (`dask_runner`,
`local_runner`); `judge` uses the same path for an LLM judge. The per-cell entry point
is `evalcore.api.cell.infer_api_cell` (imported on its own: it pulls in the pipeline).
"""

from evalcore.api.answers import AnswerStats, answer_jobs, dask_runner, local_runner
from evalcore.api.cache import CacheStats, ResponseCache, response_key
from evalcore.api.client import ChatJob, ChatOutcome, answer_locally
from evalcore.api.endpoint import EndpointSpec, parse_endpoint
from evalcore.api.fanout import ClusterSpec, close_dask_clients, dask_client, fan_out
from evalcore.api.judge import JudgeItem, Verdict, judge
from evalcore.api.retry import ApiError, Backoff, parse_retry_after

__all__ = [
    "AnswerStats",
    "ApiError",
    "Backoff",
    "CacheStats",
    "ChatJob",
    "ChatOutcome",
    "ClusterSpec",
    "EndpointSpec",
    "JudgeItem",
    "ResponseCache",
    "Verdict",
    "answer_jobs",
    "answer_locally",
    "close_dask_clients",
    "dask_client",
    "dask_runner",
    "fan_out",
    "judge",
    "local_runner",
    "parse_endpoint",
    "parse_retry_after",
    "response_key",
]
