"""API keys and endpoint tags for API cells.

The API key is resolved in the API inference task, and only there, from the environment
variable or Prefect Secret block the model's params name; it reaches evalcore as a
`SecretStr` and is never a task parameter, a result or a log line.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pydantic import SecretStr

from evalcore.api.endpoint import EndpointSpec, parse_endpoint
from evalcore.api.redaction import remember

# What the Dask graph carries instead of the key: each worker calls this itself.
KEY_RESOLVER = "tasks.secrets:resolve_api_key"


class ApiKeyMissing(RuntimeError):
    """The config names a key source that holds no key."""


def resolve_api_key(spec: EndpointSpec) -> SecretStr | None:
    """The key from `api_key_env` or the `api_key_secret` block; None if neither is set
    (local vLLM/SGLang servers usually need none)."""
    if spec.api_key_env:
        value = os.environ.get(spec.api_key_env)
        if not value:
            raise ApiKeyMissing(f"environment variable {spec.api_key_env} is not set or empty")
        return _remembered(SecretStr(value))
    if spec.api_key_secret:
        from prefect.blocks.system import Secret

        try:
            # _sync: inside a running event loop (a Dask worker's) `load` would otherwise
            # return a coroutine (Prefect's sync/async dispatch)
            value = Secret.load(spec.api_key_secret, _sync=True).get()
        except ValueError as exc:  # no such block
            raise ApiKeyMissing(f"no Prefect Secret block named {spec.api_key_secret}") from exc
        return _remembered(SecretStr(str(value)))
    return None


def _remembered(key: SecretStr) -> SecretStr:
    remember(key)  # no log line of this process shows it, whoever logs it
    return key


def endpoint_tag(model) -> str:
    """`api-<host>[-<port>]`: a Prefect concurrency limit on it bounds the cells that use
    one endpoint across flow runs (docs/operations.md)."""
    url = urlsplit(parse_endpoint(model.params).base_url)
    return f"api-{url.hostname}" + (f"-{url.port}" if url.port else "")
