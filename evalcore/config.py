"""One typed configuration per run, validated once at the edge (CLI, flow parameters).

The same `EvalConfig` is the `eval` flow's parameter (the Prefect UI renders it as a
form) and the YAML file of `evalcore run`. A bad value fails here, naming the field,
before any video is decoded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalcore.api.endpoint import EndpointSpec
from evalcore.frames.plan import FramePlan
from evalcore.frames.settings import FrameSettings
from evalcore.models import GenerationConfig
from evalcore.protocols.resolution import Protocol

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # names end up in file names

# Prefect refuses a flow run whose parameters pass this many bytes as compact JSON (its
# server setting `server.api.max_parameter_size`), with HTTP 422 once the run has begun;
# the eval flow's one parameter is the whole config.
PREFECT_MAX_PARAMETER_BYTES = 524_288


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
    benchmark: str = Field(
        default="generic",
        description="The layout, prompt, answer rule and report (`evalcore benchmarks`); "
        "VLMEvalKit's names are accepted as they are (`Video-MME_64frame`, `MVBench_8frame`, "
        "`MLVU_MCQ`, ...) and set what they imply (frames, subtitles, pack).",
    )
    reference_name: str | None = Field(
        default=None,
        description="The VLMEvalKit name given as `benchmark` (set from it; for reports).",
    )
    frames: dict[str, Any] | None = Field(
        default=None,
        description="This dataset's frame count over the run's, as VLMEvalKit's dataset "
        "setting: `{nframe: 64}` or `{fps: 1.0}` (a VLMEvalKit name sets it). A model's own "
        "frames.nframe / fps wins over it.",
    )
    pack: bool = Field(
        default=False,
        description="Ask all questions about one clip in one request, numbered, and parse "
        "the answers back (API and local models); an answer not found is asked again alone.",
    )
    subtitles: bool = Field(
        default=False,
        description="Put the subtitles of the sampled frames' times in the prompt "
        "(benchmarks that have them: Video-MME, LongVideoBench).",
    )

    @property
    def dataset_name(self) -> str:
        return self.name or self.tsv.stem

    @model_validator(mode="before")
    @classmethod
    def _reference_name(cls, data: Any) -> Any:
        """`benchmark: Video-MME_64frame` -> our adapter, with the frames (and subtitles,
        pack) the name implies; a conflicting explicit value is an error on its field."""
        from evalcore.benchmarks.vlmevalkit_names import REFERENCE_NAMES

        if not isinstance(data, dict) or data.get("benchmark") not in REFERENCE_NAMES:
            return data
        name = data["benchmark"]
        implied = REFERENCE_NAMES[name]
        out = {**data, "benchmark": implied.benchmark, "reference_name": name}
        for field, value in (("frames", implied.frames or None), *implied.fields.items()):
            if value is None:
                continue
            given = data.get(field)
            if given is not None and given != value:
                raise ValueError(
                    f"{field}: {given!r} contradicts benchmark {name}, which sets {value!r}"
                )
            out[field] = value
        return out

    @field_validator("frames")
    @classmethod
    def _frame_count_only(cls, frames: dict[str, Any] | None) -> dict[str, Any] | None:
        if frames is None:
            return None
        unknown = sorted(set(frames) - {"nframe", "fps"})
        if unknown:
            raise ValueError(f"{unknown[0]}: a dataset sets only its frame count (nframe or fps)")
        if len(frames) != 1:
            raise ValueError("set exactly one of nframe and fps")
        FramePlan.model_validate({**frames, **({"nframe": None} if "fps" in frames else {})})
        return frames

    @field_validator("tsv")
    @classmethod
    def _tsv_exists(cls, tsv: Path) -> Path:
        if not tsv.is_file():
            raise ValueError(f"dataset file not found: {tsv}")
        return tsv

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: Path | None) -> Path | None:
        if root is not None and not root.is_dir():
            raise ValueError(f"root folder not found: {root}")
        return root

    @field_validator("benchmark")
    @classmethod
    def _benchmark_known(cls, name: str) -> str:
        from evalcore.benchmarks import BENCHMARKS, benchmark_names
        from evalcore.benchmarks.vlmevalkit_names import REFERENCE_NAMES, pooled_hint

        if name not in BENCHMARKS:
            hint = pooled_hint(name)
            if hint:
                raise ValueError(hint)
            raise ValueError(
                f"unknown benchmark {name!r}; known: {', '.join(benchmark_names())}, or "
                f"VLMEvalKit's {', '.join(sorted(REFERENCE_NAMES))}"
            )
        return name


class Price(BaseModel):
    """What a model's tokens cost, per million, in one currency (the reports only multiply:
    `cost = (prompt x input + completion x output) / 1e6`). Not part of any key: a price
    change re-prices the next report and asks the model nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0, description="Price of a million prompt tokens.")
    output_per_million: float = Field(ge=0, description="Price of a million completion tokens.")
    currency: str = Field(default="USD", description="Shown next to the cost in reports.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1e6


class ModelSpec(BaseModel):
    """A model to evaluate: a kind (registered, or `package.module:Class`), its typed
    params, its generation settings and, optionally, its own frame sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Name in reports and file names.")
    kind: str = Field(
        description="Model kind: `reference`, `random`, `transformers`, `openai-compatible`, "
        "or `package.module:Class` for your own."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The kind's params (validated against its `Params` when the config is read).",
    )
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig,
        description="Decoding settings (max_new_tokens, temperature, top_p, seed, stop); "
        "API models set theirs in params (max_tokens, temperature, ...).",
    )
    frames: dict[str, Any] | None = Field(
        default=None,
        description="This model's frame sampling, over the run's `frames` (e.g. `{fps: 2, "
        "max_frames: 64, max_side: null}`). Models with equal sampling share cached frames.",
    )
    protocol: Protocol | None = Field(
        default=None,
        description="Whose pipeline to reproduce for this model (docs/reproduce.md): "
        "vlmevalkit, lmms-eval, native (the model authors' usage) or evalcore (ours); "
        "default: the run's `protocol`.",
    )
    batch_size: int = Field(default=8, ge=1, description="Requests per model call.")
    price: Price | None = Field(
        default=None,
        description="Price per million tokens (`{input_per_million: 2.5, "
        "output_per_million: 10}`); reports then show each cell's cost and what the "
        "response cache saved.",
    )

    @field_validator("kind")
    @classmethod
    def _kind_known(cls, kind: str) -> str:
        from evalcore.models import resolve_kind

        try:
            resolve_kind(kind)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from exc
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import model kind {kind!r}: {exc}") from exc
        return kind

    @model_validator(mode="after")
    def _params_valid(self) -> ModelSpec:
        from evalcore.models import parse_params

        parse_params(self.kind, self.params)  # ModelParamsError names params.<field>
        if self.frames is not None:  # a model may override its frame plan, nothing else
            unknown = sorted(set(self.frames) - set(FramePlan.model_fields))
            if unknown:
                raise ValueError(
                    f"frames.{unknown[0]}: not a per-model frame setting "
                    f"(allowed: {', '.join(FramePlan.model_fields)})"
                )
        if self.kind == "openai-compatible" and self.generation != GenerationConfig():
            raise ValueError(
                "generation: API models take their generation settings in params "
                "(max_tokens, temperature, top_p, seed)"
            )
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
        description="CUDA device ids the shards may use, e.g. [0, 1, 2, 3]; empty: CPU only. "
        "Inline, one replica runs on the first (cells take turns on it).",
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
        default=4,
        ge=0,
        description="Clips whose frames are read ahead of the model (inline, and in each rank).",
    )
    preload: bool = Field(
        default=True,
        description="Fork torchrun and its ranks from a process that has imported torch "
        "and the model's modules once (evalcore.inference.torchrun.preload), instead of importing "
        "them in each fresh process; false: plain interpreters.",
    )
    process_group: bool = Field(
        default=False,
        description="Create a torch.distributed process group in each rank (gloo on CPU, "
        "NCCL on GPU; timeout watchdog_s) for models that need one. Evaluation itself "
        "needs none: ranks never wait on each other.",
    )

    placement: Literal["local", "pool"] = Field(
        default="local",
        description="torchrun shards: local runs each on this flow's host; pool runs each "
        "as a flow run of the `eval/shard` deployment on the `gpu` work pool, on whichever "
        "host's worker takes it (docs/cluster.md). With pool, gpus / cpu_groups describe "
        "one host, and `shards` and the run's `local_dir` must be set.",
    )

    @model_validator(mode="after")
    def _pool_needs_shards(self) -> InferenceSettings:
        if self.placement == "pool" and self.launcher != "torchrun":
            raise ValueError("placement: pool places torchrun shards; set launcher: torchrun")
        if self.placement == "pool" and self.shards is None:
            raise ValueError(
                "shards: placement: pool needs the shard count (at least the device groups "
                "of all hosts together: one host's groups are all this config knows)"
            )
        return self

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
        description="Requests per Dask task, at least (a task gets twice its slot's share "
        "of max_in_flight if that is more): a task costs ~2.5 ms to schedule, so requests "
        "go in batches; each answer streams back as it arrives.",
    )
    cache_path: Path | None = Field(
        default=None,
        description="SQLite file of the response cache, shareable between runs and work "
        "dirs (on one host: WAL mode); default: {local_dir or work_dir}/api-cache/"
        "responses.sqlite3.",
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
    protocol: Protocol = Field(
        default="evalcore",
        description="Whose pipeline to reproduce (docs/reproduce.md): vlmevalkit, lmms-eval, "
        "native or evalcore (ours); a model's own `protocol` wins. It fixes frames, size, "
        "time input, prompt additions and the headline's answer rule per model family.",
    )
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    api: ApiSettings = Field(default_factory=ApiSettings, description="API model fan-out.")
    judge: EndpointSpec | None = Field(
        default=None,
        description="An OpenAI-compatible endpoint that reads the answers a benchmark's "
        "rule cannot (VLMEvalKit's choice extraction); none: those stay unreadable.",
    )
    trials: int = Field(default=1, ge=1, description="Repeats with seeds seed..seed+trials-1.")
    seed: int = Field(default=0, description="Base seed of the trials.")
    output_dir: Path = Field(default=Path("outputs"), description="Reports and leaderboard.")
    work_dir: Path = Field(
        default=Path("work"),
        description="Frame cache, prediction logs and persisted Prefect results. Shared by "
        "hosts: a POSIX filesystem whose locks hold across them (docs/cluster.md).",
    )
    local_dir: Path | None = Field(
        default=None,
        description="Host-local disk for the SQLite files (the fingerprint memo, the API "
        "response cache): their WAL mode works only among one machine's processes, so set "
        "it where work_dir is shared by hosts; default: none, both stay under work_dir.",
    )
    results_storage: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="A Prefect storage block (`block-type/name`, e.g. "
        "`s3-bucket/evalcore-results`) for the inference units' persisted results, read by "
        "every host; default: work_dir/prefect-results (docs/cluster.md).",
    )

    def device_class(self, model: ModelSpec) -> str:
        """Where the model's answers come from: `api`, `cuda` (on `inference.gpus`, with
        either launcher) or `cpu`."""
        if model.kind == "openai-compatible":
            return "api"
        return "cuda" if self.inference.gpus else "cpu"

    @model_validator(mode="after")
    def _protocols_apply(self) -> EvalConfig:
        """Every model's frames and protocol apply to every dataset (`cells_of` applies
        them the same way)."""
        from evalcore.protocols import ProtocolError
        from evalcore.protocols.apply import apply_protocol

        for i, model in enumerate(self.models):
            for dataset in self.datasets:
                try:
                    apply_protocol(self, model, dataset)
                except ValidationError as exc:
                    err = exc.errors()[0]
                    where = ".".join(str(p) for p in err["loc"]) or "(frames)"
                    raise ValueError(f"models.{i}.frames.{where}: {err['msg']}") from None
                except ProtocolError as exc:
                    message = str(exc)
                    if not message.startswith("frames."):
                        message = f"protocol: {message}"
                    raise ValueError(
                        f"models.{i}.{message} (dataset {dataset.dataset_name})"
                    ) from None
        return self

    @model_validator(mode="after")
    def _pool_needs_local_dir(self) -> EvalConfig:
        if self.inference.placement == "pool" and self.local_dir is None:
            raise ValueError(
                "local_dir: inference.placement: pool runs shards on other hosts, which "
                "need host-local disk for the SQLite files and their device-group locks"
            )
        return self

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
    """Read a YAML config; relative paths in it are relative to the working directory.
    Errors name the file, the line and the field: `run.yaml line 7: models.0.params.x: ...`.
    Aliases that would expand past a bound, and a config too big to be a Prefect flow
    run's parameters, are errors too."""
    from evalcore.yaml_lines import AliasExpansionError, safe_load

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    try:
        raw = safe_load(text)
    except AliasExpansionError as exc:
        raise ConfigError(f"{path} line {exc.line}: {exc.field}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from exc
    return parse_config(raw, source=str(path), text=text)


def parse_config(raw: Any, source: str = "config", text: str | None = None) -> EvalConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config is a YAML mapping (datasets:, models:, ...)")
    try:
        config = EvalConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, source, text)) from exc
    _check_parameter_size(config, source, text)
    return config


def flow_parameters(config: EvalConfig) -> dict[str, Any]:
    """The eval flow's parameters as Prefect sends them when it creates the flow run
    (`Flow.serialize_parameters`: FastAPI's `jsonable_encoder`, a JSON dump by alias)."""
    return {"config": config.model_dump(mode="json", by_alias=True)}


def _check_parameter_size(config: EvalConfig, source: str, text: str | None) -> None:
    """Refuse a config Prefect would refuse as flow parameters, naming the field that
    makes up most of it (`models.0.params.extra_body`)."""
    from evalcore.yaml_lines import yaml_line

    try:
        parameters = flow_parameters(config)
    except ValueError:  # not JSON (Prefect stores a placeholder): nothing to measure
        return
    size = _json_size(parameters)
    if size <= PREFECT_MAX_PARAMETER_BYTES:
        return
    loc, part = _biggest_part(parameters["config"])
    line = yaml_line(text, loc) if text and loc else None
    where = ".".join(str(p) for p in loc) or "(root)"
    raise ConfigError(
        f"{source}{f' line {line}' if line else ''}: {where}: {part:,} bytes as JSON; the "
        f"whole config is {size:,} bytes as the eval flow's parameters, over Prefect's "
        f"limit of {PREFECT_MAX_PARAMETER_BYTES:,} for a flow run: make it smaller"
    )


def _json_size(value: Any) -> int:
    """Bytes of `value` as Prefect measures parameters: compact, ASCII-escaped JSON."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def _biggest_part(data: Any) -> tuple[tuple[str | int, ...], int]:
    """The location and size of the deepest part of `data` that holds more than half
    of it: the field to shrink."""
    loc: list[str | int] = []
    size = _json_size(data)
    while isinstance(data, (dict, list)) and data:
        items = data.items() if isinstance(data, dict) else enumerate(data)
        child_size, key, child = max(
            ((_json_size(value), key, value) for key, value in items), key=lambda t: t[0]
        )
        if 2 * child_size <= size:
            break
        loc.append(key)
        data, size = child, child_size
    return tuple(loc), size


_NESTED_FIELD = re.compile(r"^((?:params|frames|models|datasets)(?:\.[\w-]+)+): (.*)$", re.S)


def describe_errors(exc: ValidationError, source: str, text: str | None = None) -> str:
    """One line per error naming the file, the YAML line when the config's text is at
    hand, and the dotted field path: `run.yaml line 7: frames.nframe: ...`. A field
    named inside a validator's message (`params.bogus: ...` of `models.0`) is joined
    to the path."""
    from evalcore.yaml_lines import yaml_line

    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        nested = _NESTED_FIELD.match(msg)
        if nested:
            inner = nested.group(1).split(".")
            if inner[0] in ("models", "datasets"):
                loc = inner  # already a full path (from EvalConfig's own validators)
            else:
                loc += inner
            msg = nested.group(2)
        line = yaml_line(text, tuple(int(p) if p.isdigit() else p for p in loc)) if text else None
        where = ".".join(loc) or "(root)"
        lines.append(f"{source}{f' line {line}' if line else ''}: {where}: {msg}")
    return "\n".join(lines)
