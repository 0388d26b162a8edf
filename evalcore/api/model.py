"""`openai-compatible`: the model kind for endpoints speaking OpenAI's chat completions.

The `eval` flow sends these models' cells to the Dask fan-out (`evalcore.api.cell`), not
through `generate`. The `VideoModel` adapter here answers a batch from this process
alone, for scripts and small checks; it raises on the first failure, like any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from evalcore.api.client import ChatJob, answer_locally
from evalcore.api.endpoint import EndpointSpec, parse_endpoint
from evalcore.models.base import ModelError, VideoRequest
from evalcore.models.registry import register_model

KIND = "openai-compatible"


class OpenAICompatibleModel:
    """A `VideoModel` over an endpoint. The key is given by the caller, never a param."""

    def __init__(self, spec: EndpointSpec, api_key: SecretStr | None = None) -> None:
        self.spec = spec
        self.api_key = api_key
        self.name = spec.model

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel({self.spec.base_url!r}, {self.spec.model!r})"

    def with_api_key(self, api_key: SecretStr | None) -> OpenAICompatibleModel:
        return OpenAICompatibleModel(self.spec, api_key)

    def generate(self, requests: Sequence[VideoRequest]) -> list[str]:
        jobs = [
            ChatJob(job_id=r.sample_id, prompt=r.prompt, cache_key="", frames=r.frames)
            for r in requests
        ]
        outcomes = answer_locally(jobs, self.spec, self.api_key)
        for o in outcomes:
            if not o.ok:
                raise ModelError(f"{o.job_id}: {o.error_type}: {o.error}")
        return [o.text or "" for o in outcomes]


@register_model(KIND)
def build_openai_compatible(seed: int | None = None, **params: Any) -> OpenAICompatibleModel:
    """Params are `EndpointSpec` fields. `seed` is a parameter so that trials vary it."""
    if seed is not None:
        params["seed"] = seed
    return OpenAICompatibleModel(parse_endpoint(params))


def check_params(params: dict[str, Any]) -> None:
    parse_endpoint(params)


build_openai_compatible.check_params = check_params  # type: ignore[attr-defined]


def is_api_kind(kind: str) -> bool:
    return kind == KIND


def endpoint_for(params: dict[str, Any]) -> EndpointSpec:
    """The endpoint of a model's (trial-adjusted) params, e.g. from `stages.model_params`."""
    return parse_endpoint(params)
