"""Inference of one API model x dataset x trial, fanned out over Dask from this task.

One Prefect task per cell (never per request): the requests go to a plain
`distributed.Client` in batches. The API key is resolved here, and only here, from the
environment variable or Prefect Secret block the model's params name; it reaches
evalcore as a `SecretStr` and is never a task parameter, a result or a log line.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from urllib.parse import urlsplit

from prefect import get_run_logger, task
from pydantic import SecretStr

from evalcore.api.cell import infer_api_cell
from evalcore.api.endpoint import EndpointSpec
from evalcore.api.model import endpoint_for
from tasks.inference import infer_cache_key


class ApiKeyMissing(RuntimeError):
    """The config names a key source that holds no key."""


def resolve_api_key(spec: EndpointSpec) -> SecretStr | None:
    """The key from `api_key_env` or the `api_key_secret` block; None if neither is set
    (local vLLM/SGLang servers usually need none)."""
    if spec.api_key_env:
        value = os.environ.get(spec.api_key_env)
        if not value:
            raise ApiKeyMissing(f"environment variable {spec.api_key_env} is not set or empty")
        return SecretStr(value)
    if spec.api_key_secret:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(spec.api_key_secret).get()
        except ValueError as exc:  # no such block
            raise ApiKeyMissing(f"no Prefect Secret block named {spec.api_key_secret}") from exc
        return SecretStr(str(value))
    return None


def endpoint_tag(model) -> str:
    """`api-<host>[-<port>]`: a Prefect concurrency limit on it bounds the cells that use
    one endpoint across flow runs (docs/operations.md)."""
    url = urlsplit(endpoint_for(model.params).base_url)
    return f"api-{url.hostname}" + (f"-{url.port}" if url.port else "")


# Same cache key as local inference (model spec, data, frames, trial, failure digest): a
# clean finished cell is a cache hit; a cell with failures runs again and retries them.
@task(name="infer-api", cache_key_fn=infer_cache_key, persist_result=True)
def infer_api(model, dataset, trial: int, config_seed: int, frames, ws, api) -> dict:
    api_key = resolve_api_key(endpoint_for(model.params))
    summary = infer_api_cell(model, dataset, trial, config_seed, frames, ws, api, api_key)
    get_run_logger().info(
        "%s on %s, trial %d: %s", model.name, dataset.dataset_name, trial, summary.describe()
    )
    return asdict(summary)
