"""One typed configuration per run, validated once at the edge (CLI, flow parameters).

The same `EvalConfig` is the `eval` flow's parameter (the Prefect UI renders it as a
form) and the YAML file of `evalcore run`. A bad value fails here, naming the field,
before any video is decoded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalcore.frames.settings import FrameSettings

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # names end up in file names


class ConfigError(ValueError):
    """An invalid configuration; the message names each offending field."""


class DatasetSpec(BaseModel):
    """A benchmark in VLMEvalKit's video TSV layout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tsv: Path = Field(description="Path of the TSV file (index, video, question, answer, ...).")
    name: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="Report name; default: the TSV's stem."
    )
    root: Path | None = Field(
        default=None, description="Folder video paths resolve under; default: the TSV's folder."
    )
    limit: int | None = Field(
        default=None, ge=1, description="Evaluate only the first N rows (smoke runs)."
    )

    @property
    def dataset_name(self) -> str:
        return self.name or self.tsv.stem

    @field_validator("tsv")
    @classmethod
    def _tsv_exists(cls, tsv: Path) -> Path:
        if not tsv.is_file():
            raise ValueError(f"dataset file not found: {tsv}")
        return tsv


class ModelSpec(BaseModel):
    """A model to evaluate: a registered kind (or `package.module:factory`) plus its params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Name in reports and file names.")
    kind: str = Field(description="Registered model kind, e.g. `reference`, `random`.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the model's factory."
    )
    batch_size: int = Field(default=8, ge=1, description="Requests per model call.")

    @field_validator("kind")
    @classmethod
    def _kind_known(cls, kind: str) -> str:
        from evalcore.models.registry import resolve_factory

        try:
            resolve_factory(kind)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from exc
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import model factory {kind!r}: {exc}") from exc
        return kind

    @model_validator(mode="after")
    def _params_valid(self) -> ModelSpec:
        # kinds that declare a params check (openai-compatible) fail here, naming the field
        from evalcore.models.registry import check_params

        check_params(self.kind, self.params)
        return self


class InferenceSettings(BaseModel):
    """How local models run: in the flow's process, or as torchrun shards (docs/sharding.md).

    With `launcher: torchrun` the GPUs are split into device groups of
    ranks_per_shard x gpus_per_rank; each shard runs on one group, one shard per group
    at a time. Without GPUs a group is ranks_per_shard CPU cores.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    launcher: Literal["inline", "torchrun"] = Field(
        default="inline", description="inline: in the flow process; torchrun: one job per shard."
    )
    gpus: list[int] = Field(
        default_factory=list,
        description="CUDA device ids the shards may use, e.g. [0, 1, 2, 3]; empty: CPU only.",
    )
    gpus_per_rank: int = Field(
        default=1,
        ge=1,
        description="GPUs one model replica (one rank) spans; >1 for a model split over GPUs.",
    )
    ranks_per_shard: int = Field(
        default=1, ge=1, description="torchrun processes (model replicas) per shard."
    )
    shards: int | None = Field(
        default=None,
        ge=1,
        description="Shards per model x dataset x trial; default: one per device group. "
        "Shards beyond the number of groups wait for a free group.",
    )
    cpu_groups: int | None = Field(
        default=None,
        ge=1,
        description="Without GPUs: shards that run at once; default: cores // ranks_per_shard.",
    )
    deadline_s: float = Field(
        default=6 * 3600.0, gt=0, description="Wall-clock limit of one shard launch, seconds."
    )
    startup_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a rank may take to come up (torchrun, Python and torch "
        "imports) before the watchdog counts.",
    )
    watchdog_s: float = Field(
        default=600.0,
        gt=0,
        description="Stop a shard when one of its started ranks has neither written a "
        "record nor changed phase (model loaded) for this long; must exceed a model load.",
    )
    grace_s: float = Field(
        default=10.0, ge=0, description="Seconds between SIGTERM and SIGKILL when stopping."
    )
    retries: int = Field(
        default=2,
        ge=0,
        description="Prefect retries of a failed shard, each a fresh torchrun that resumes "
        "from the logs (never torchrun's --max-restarts).",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Launches a sample may crash or hang its rank in before it is recorded "
        "as a failure (RankCrashed) instead of being tried again.",
    )
    prefetch: int = Field(
        default=4, ge=0, description="Clips whose frames a rank reads ahead of the model."
    )
    process_group: bool = Field(
        default=False,
        description="Create a torch.distributed process group in each rank (gloo on CPU, "
        "NCCL on GPU; timeout watchdog_s) for models that need one. Evaluation itself "
        "needs none: ranks never wait on each other.",
    )

    @model_validator(mode="after")
    def _gpus_split_into_groups(self) -> InferenceSettings:
        if len(set(self.gpus)) != len(self.gpus):
            raise ValueError(f"gpus: duplicate ids in {self.gpus}")
        size = self.ranks_per_shard * self.gpus_per_rank
        if self.gpus and len(self.gpus) % size:
            raise ValueError(
                f"gpus: {len(self.gpus)} GPUs do not split into device groups of "
                f"ranks_per_shard x gpus_per_rank = {size}"
            )
        return self


class ApiSettings(BaseModel):
    """How API models (`kind: openai-compatible`) run: request batches fanned out over a
    Dask cluster, answers kept in a response cache (docs/api-models.md). Per-endpoint
    limits (in-flight bound, rate, retries) are the model's own params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler_address: str | None = Field(
        default=None,
        description="Address of an existing dask.distributed scheduler, e.g. "
        "tcp://10.0.0.5:8786; default: a LocalCluster started by the run.",
    )
    workers: int = Field(default=2, ge=1, description="LocalCluster worker processes.")
    task_slots: int = Field(
        default=4, ge=1, description="Request batches each LocalCluster worker runs at once."
    )
    processes: bool = Field(
        default=True, description="LocalCluster workers as processes (false: threads, tests)."
    )
    requests_per_task: int = Field(
        default=32,
        ge=1,
        description="Requests per Dask task: a task costs ~2.5 ms to schedule, so requests "
        "go in batches; answers stream back a batch at a time.",
    )
    cache_path: Path | None = Field(
        default=None,
        description="SQLite file of the response cache, shareable between runs and work "
        "dirs; default: {work_dir}/api-cache/responses.sqlite3.",
    )
    progress: bool = Field(
        default=True, description="Show a progress bar (done, rate, cache hits, failures)."
    )


class EvalConfig(BaseModel):
    """Everything one evaluation run needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: list[DatasetSpec] = Field(min_length=1, description="Benchmarks to evaluate.")
    models: list[ModelSpec] = Field(min_length=1, description="Models to evaluate.")
    frames: FrameSettings = Field(default_factory=FrameSettings, description="Frame sampling.")
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    api: ApiSettings = Field(default_factory=ApiSettings, description="API model fan-out.")
    trials: int = Field(default=1, ge=1, description="Repeats with seeds seed..seed+trials-1.")
    seed: int = Field(default=0, description="Base seed of the trials.")
    output_dir: Path = Field(default=Path("outputs"), description="Reports and leaderboard.")
    work_dir: Path = Field(
        default=Path("work"),
        description="Frame cache, prediction logs and persisted Prefect results.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> EvalConfig:
        for label, names in (
            ("models", [m.name for m in self.models]),
            ("datasets", [d.dataset_name for d in self.datasets]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label}: duplicate name(s) {', '.join(dupes)}")
        return self


def load_config(path: Path) -> EvalConfig:
    """Read a YAML config; relative paths in it are relative to the working directory."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, source: str = "config") -> EvalConfig:
    try:
        return EvalConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration\n{describe_errors(exc)}") from exc


def describe_errors(exc: ValidationError) -> str:
    """One line per error, each naming the dotted field path, e.g. `frames.nframe`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def settings_hash(*parts: BaseModel | dict | str | int | None) -> str:
    """A stable short hash of typed settings, for cache keys and file names."""

    def plain(p: Any) -> Any:
        return p.model_dump(mode="json") if isinstance(p, BaseModel) else p

    blob = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
