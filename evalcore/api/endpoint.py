"""What an `openai-compatible` model is: an endpoint, generation parameters, request limits.

These are the `params` of a `kind: openai-compatible` model in the config, validated when
the config is read. The API key is never one of them: the config names an environment
variable (`api_key_env`) or a Prefect Secret block (`api_key_secret`), and the key itself
is resolved at run time by the Prefect task and travels as a `SecretStr`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_KEY_LIKE = re.compile(r"^(sk-|sk_|AIza|gsk_|xai-|hf_)")  # common API key prefixes

Media = Literal["images", "video_frames", "video_file"]


class EndpointSpec(BaseModel):
    """An OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, Gemini, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        description="API root up to and including `/v1`, e.g. `http://127.0.0.1:8000/v1`."
    )
    model: str = Field(min_length=1, description="Model id the endpoint serves (`model` field).")
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the API key (not the key).",
    )
    api_key_secret: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the API key."
    )
    max_tokens: int = Field(default=64, ge=1, description="Completion token limit.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, description="Nucleus sampling.")
    seed: int | None = Field(
        default=None,
        description="Sampling seed; the run's seed and trial t are added. Sent (and keyed) "
        "only when temperature > 0.",
    )
    system_prompt: str | None = Field(default=None, description="Optional system message.")
    cache_namespace: str | None = Field(
        default=None,
        description="Response-cache identity shared by endpoints that serve the same "
        "weights (replicas behind several URLs); default: the base_url itself.",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra JSON fields merged into each request (e.g. vLLM's `top_k`).",
    )
    media: Media = Field(
        default="images",
        description=(
            "images: one JPEG data URL per sampled frame (any vision endpoint); "
            "video_frames: the sampled frames as one `data:video/jpeg` video_url (vLLM); "
            "video_file: the whole source video as a `data:video/mp4` video_url."
        ),
    )
    image_max_side: int | None = Field(
        default=None,
        ge=16,
        description="Downscale frames so their longer side fits; default: as cached.",
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds per attempt.")
    max_response_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest response body accepted; a larger one is a `ResponseTooLarge` "
        "failure (never logged, cached or scored). An answer of 64 tokens is ~1 KB.",
    )
    max_attempts: int = Field(default=5, ge=1, description="Attempts per sample per run.")
    backoff_initial: float = Field(
        default=1.0, ge=0, description="First retry waits up to this many seconds (full jitter)."
    )
    backoff_max: float = Field(default=60.0, ge=0, description="Cap of the exponential backoff.")
    retry_after_max: float = Field(
        default=120.0, ge=0, description="Longest server-requested wait (Retry-After) honoured."
    )
    max_in_flight: int | Literal["auto"] = Field(
        default=32,
        description="Requests in flight to this endpoint across all workers; `auto`: found "
        "at run time (grows while latency is flat, backs off on 429/503 and rising latency).",
    )
    auto_max_in_flight: int = Field(
        default=512, ge=1, description="The most `max_in_flight: auto` may reach."
    )
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Optional request rate limit across all workers."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_config(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError(
                "api_key: the key never goes in the config; name an environment variable "
                "in api_key_env or a Prefect Secret in api_key_secret"
            )
        return data

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8000/v1")
        if "@" in urlsplit(url).netloc:  # never echo it: it holds a password or a key
            raise ValueError(
                "holds credentials (user:password@host); put the key in the environment "
                "variable named by api_key_env, or in a Prefect Secret (api_key_secret)"
            )
        return url.rstrip("/")

    # The key-name validators never echo the value: it might be the key pasted by mistake.
    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and (not ENV_NAME.match(name) or _KEY_LIKE.match(name)):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key"
            )
        return name

    @field_validator("api_key_secret")
    @classmethod
    def _block_name(cls, name: str | None) -> str | None:
        if name is not None and (not BLOCK_NAME.match(name) or _KEY_LIKE.match(name)):
            raise ValueError(
                "must be the NAME of a Prefect Secret block (lowercase, digits, dashes), "
                "not the key"
            )
        return name

    def generation_params(self) -> dict[str, Any]:
        """Everything besides prompt and media that changes the answer: part of cache keys."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed if self.temperature > 0 else None,
            "system_prompt": self.system_prompt,
            "extra_body": self.extra_body,
            "media": self.media,
            "image_max_side": self.image_max_side,
        }

    @property
    def identity(self) -> str:
        """Which model answers: the endpoint (or its cache namespace), the served model and
        its sampling; never the key, limits or retries. Keys the judge's verdicts."""
        from evalcore.hashing import stable_hash

        endpoint = self.cache_namespace or self.base_url
        return stable_hash([endpoint, self.model, self.generation_params()])

    @property
    def gate_name(self) -> str:
        """Name of the cluster-wide in-flight bound: one per endpoint and limit setting."""
        blob = json.dumps([self.base_url, self.model, self.max_in_flight, self.requests_per_minute])
        return "evalcore-api-" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    @field_validator("max_in_flight", mode="before")
    @classmethod
    def _in_flight(cls, value: Any) -> int | str:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            if value == "auto" or value >= 1:
                return value
        raise ValueError("must be a whole number of at least 1, or auto")

    @property
    def adaptive(self) -> bool:
        return self.max_in_flight == "auto"

    @property
    def in_flight_ceiling(self) -> int:
        """The most requests ever in flight (the HTTP pool's size)."""
        return self.auto_max_in_flight if self.adaptive else int(self.max_in_flight)

    def min_hold(self, limit: int) -> float:
        """The gate's `min_hold` for `limit` slots: it starts leases min_hold / limit apart,
        so the rate cannot exceed limit / min_hold = requests_per_minute / 60."""
        if not self.requests_per_minute:
            return 0.0
        return 60.0 * limit / self.requests_per_minute


def parse_endpoint(params: dict[str, Any]) -> EndpointSpec:
    """Validate model params as every model kind's are (`registry.parse_params`): errors
    name each field as `params.<field>`, never its value."""
    from evalcore.models import parse_params

    return parse_params("openai-compatible", params)
