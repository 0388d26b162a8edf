"""`openai-compatible`: the model kind for endpoints speaking OpenAI's chat completions.

The `eval` flow sends these models' cells to the Dask fan-out (`evalcore.inference.api`), not
through `generate`. `generate` here answers a batch from this process alone, for
scripts and small checks; each failed request is a `ModelError` for that request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from evalcore.api.client import ChatJob, answer_locally
from evalcore.api.endpoint import EndpointSpec
from evalcore.models.base import (
    BaseVideoModel,
    GenerationConfig,
    ModelError,
    ModelOutput,
    Usage,
    VideoRequest,
)

KIND = "openai-compatible"


class OpenAICompatibleModel(BaseVideoModel):
    """A `VideoModel` over an endpoint. The key is given by the caller, never a param."""

    Params = EndpointSpec

    def __init__(self, params: EndpointSpec, api_key: SecretStr | None = None) -> None:
        super().__init__(params)
        self.spec = params
        self.api_key = api_key
        self.name = params.model

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel({self.spec.base_url!r}, {self.spec.model!r})"

    @classmethod
    def identity(cls, params: EndpointSpec) -> dict[str, Any]:
        """The served model: endpoint (or an explicit cache namespace shared by replicas
        that really serve the same weights), model id and generation settings. Never
        the key, never limits or retries."""
        return {
            "endpoint": params.cache_namespace or params.base_url,
            "model": params.model,
            "generation": params.generation_params(),
        }

    def with_api_key(self, api_key: SecretStr | None) -> OpenAICompatibleModel:
        return OpenAICompatibleModel(self.spec, api_key)

    def generate(
        self, requests: Sequence[VideoRequest], generation: GenerationConfig
    ) -> list[ModelOutput | ModelError]:
        jobs = [
            ChatJob(job_id=r.sample_id, prompt=r.prompt, cache_key="", frames=r.frames)
            for r in requests
        ]
        outcomes = answer_locally(jobs, self.spec, self.api_key)
        return [
            ModelOutput(o.text, Usage(o.prompt_tokens, o.completion_tokens))
            if o.ok and o.text is not None
            else ModelError(str(o.error), o.error_type)
            for o in outcomes
        ]


def is_api_kind(kind: str) -> bool:
    return kind == KIND
