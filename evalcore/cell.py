"""The Cell: one model x dataset x trial under the settings that change its answers.

Every key and path of a unit of work is derived here and nowhere else: the prediction
log folder, the frame index (its frame plan's, `FramePlan.index_path`), each sample's
answer key, the Prefect cache key of an inference unit, the settings a cell report
records (and the nightly compares), and the context of the API response-cache key.

Two levels of identity:
- `Cell.key`: what changes every answer of the cell (the model's identity, generation
  settings with the trial's seed, the device class, the frame plan, the prompt
  template). It names the log folder.
- `Cell.answer_key(sample, video)`: `Cell.key` plus the sample's own inputs (question,
  options, clip bounds, the content fingerprint of its video, and its subtitles and
  prompt text when it has them: `Sample.ANSWER_FIELDS`). A record counts for a
  sample only while its answer key is the sample's current one, so replacing one video
  re-asks exactly that video's questions and editing one TSV row re-asks that row.

Settings that cannot change an answer (decoder, workers, timeouts, batch size, limit,
launcher, dataset root as such) are in no key.

`CellTrials` is one model x dataset with its trials; its `current_records` is the one
query of which records still count, for inference, judging, scoring and the reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalcore.benchmarks import adapter_of, load_samples
from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
from evalcore.dataset import Sample
from evalcore.frames import FrameCache, FramePlan, FrameSettings
from evalcore.frames.index import FramesSummary, prepare_frames, read_index_videos
from evalcore.hashing import stable_hash
from evalcore.models import GenerationConfig, model_identity
from evalcore.predictions import PredictionRecord, merge_records, read_records
from evalcore.prompts import PACK_VERSION
from evalcore.protocols import Resolution
from evalcore.workspace import Workspace

if TYPE_CHECKING:
    from evalcore.benchmarks import Benchmark

PIPELINE_VERSION = "2"  # bump when a change must invalidate persisted Prefect results


@dataclass(frozen=True)
class Cell:
    """One model x dataset x trial. Build with `cells_of(config)`."""

    model: ModelSpec
    dataset: DatasetSpec
    trial: int
    seed: int  # the run's base seed
    frames: FrameSettings  # effective: the run's, the dataset's, the model's, the protocol's
    device_class: str = "cpu"  # cpu | cuda | api
    # the protocol applied (`evalcore.protocols`); derived from the fields above
    resolution: Resolution = field(
        default_factory=lambda: Resolution("evalcore", "", ""), compare=False, hash=False
    )

    @property
    def rule_set(self) -> str:
        """The answer rule set of the headline: the protocol's."""
        return self.resolution.rule_set

    @property
    def label(self) -> str:
        return f"{self.model.name} x {self.dataset.dataset_name} t{self.trial}"

    @property
    def plan(self) -> FramePlan:
        """How this cell's model gets its frames (cells with equal plans share them)."""
        return self.frames.plan

    @cached_property
    def template(self) -> str:
        """The prompt's version: the benchmark's, marked when questions are packed."""
        base = adapter_of(self.dataset).template
        return base + (f"+{PACK_VERSION}" if self.dataset.pack else "")

    @property
    def generation(self) -> GenerationConfig:
        """The model's generation settings with this trial's seed."""
        gen = self.model.generation
        return gen.model_copy(update={"seed": gen.seed + self.seed + self.trial})

    @cached_property
    def identity(self) -> dict[str, Any]:
        """Everything cell-wide that an answer depends on (recorded in reports)."""
        return {
            "model": model_identity(self.model.kind, self.model.params),
            "generation": self.generation.model_dump(mode="json"),
            "device_class": self.device_class,
            "frames": self.plan.identity,
            "template": self.template,
        }

    @cached_property
    def key(self) -> str:
        return stable_hash([PIPELINE_VERSION, self.identity])

    def answer_key(self, sample: Sample, video: str) -> str:
        """`key` plus the sample's own inputs (`Sample.answer_inputs`); `video` is its
        video's content fingerprint (or the state of a video that cannot be read, see
        `frames.index`)."""
        return stable_hash([self.key, sample.answer_inputs(video)], length=24)

    def answer_keys(self, samples: Iterable[Sample], videos: Mapping[str, str]) -> dict[str, str]:
        """Sample id -> answer key, `videos` mapping sample id -> video fingerprint."""
        return {s.sample_id: self.answer_key(s, videos[s.sample_id]) for s in samples}

    # --- paths ------------------------------------------------------------------------

    def log_dir(self, ws: Workspace) -> Path:
        return ws.predictions_dir(self.model.name, self.dataset.dataset_name, self.key, self.trial)

    def judgements_dir(self, ws: Workspace) -> Path:
        return ws.judgements_dir(self.model.name, self.dataset.dataset_name, self.key, self.trial)

    def shard_dir(self, ws: Workspace) -> Path:
        return ws.shards_dir(self.model.name, self.dataset.dataset_name, self.key, self.trial)

    def frame_index_path(self, ws: Workspace) -> Path:
        return self.plan.index_path(self.dataset, ws)

    # --- keys of derived things -------------------------------------------------------

    def unit_key(self, stage: str, answer_keys: Sequence[str], transient: str) -> str:
        """The Prefect cache key of an inference unit (a cell, or a shard of one): what it
        computes (its samples' answer keys) and the transient failures among them, so a
        unit with retryable failures runs again while a finished one is a cache hit."""
        return f"{stage}-v{PIPELINE_VERSION}-" + stable_hash(
            [self.key, sorted(answer_keys), transient]
        )

    @property
    def response_context(self) -> str:
        """What an API response-cache key shares with every request of this cell."""
        return stable_hash([self.identity["model"], self.identity["generation"], self.template])

    def card(self, judge: str | None = None) -> dict[str, Any]:
        """The reproducibility card: every setting that decides this cell's number, in
        the terms a reader compares with another run (or with VLMEvalKit's): benchmark,
        sampler, frames per clip, frame size, prompt template, extraction rule, judge."""
        return {
            "benchmark": self.dataset.benchmark,
            "subtitles": self.dataset.subtitles,
            "model": self.identity["model"],
            "generation": self.identity["generation"],
            "device_class": self.device_class,
            **self.plan.card(),  # sampler, frames per clip, frame size, JPEG quality
            "prompt_template": self.template,
            "extraction_rule": adapter_of(self.dataset, self.rule_set).rule,
            "answer_rule_set": self.rule_set,
            **self.resolution.card(),  # protocol, family, what it does not reproduce
            **self._reference_name(),
            "judge": judge or "none",
        }

    def _reference_name(self) -> dict[str, str]:
        name = self.dataset.reference_name
        return {"reference_name": name} if name else {}

    def settings(self) -> dict[str, Any]:
        """What a cell report records: the identity and its key (the nightly compares
        answer keys sample by sample; this is for people reading the report)."""
        return {"cell_key": self.key, **self.identity, "trial": self.trial, "seed": self.seed}


def extract_dataset_frames(
    dataset: DatasetSpec, frames: FrameSettings, ws: Workspace, on_done=None, run: str = ""
) -> FramesSummary:
    """Frames of every clip of a dataset under a frame plan, and its frame index (written
    as clips finish; `run` marks its head, see `frames.index`)."""
    index = frames.index_path(dataset, ws)
    cache = FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    return prepare_frames(load_samples(dataset), frames, cache, index, on_done, run)


def cells_of(config: EvalConfig) -> list[Cell]:
    """Every cell of a config, dataset by dataset, in config order, under its protocol
    (`evalcore.protocols.apply`: the model's video input, frames and answer rule)."""
    from evalcore.protocols.apply import apply_protocol

    cells = []
    for d in config.datasets:
        for m in config.models:
            applied = apply_protocol(config, m, d)
            cells.extend(
                Cell(
                    model=applied.model,
                    dataset=d,
                    trial=t,
                    seed=config.seed,
                    frames=applied.frames,
                    device_class=config.device_class(m),
                    resolution=applied.resolution,
                )
                for t in range(config.trials)
            )
    return cells


def find_cell(
    config: EvalConfig, model: str | None = None, dataset: str | None = None, trial: int = 0
) -> Cell:
    """The cell of `model` x `dataset` (default: the first of each) at `trial`."""
    for cell in cells_of(config):
        if (
            (model is None or cell.model.name == model)
            and (dataset is None or cell.dataset.dataset_name == dataset)
            and cell.trial == trial
        ):
            return cell
    raise KeyError(f"no cell {model} x {dataset} t{trial} in the config")


def frame_plans(cells: Sequence[Cell]) -> list[tuple[DatasetSpec, FrameSettings]]:
    """Distinct (dataset, frame plan) pairs of a grid, in its order: models with equal
    plans share frames."""
    seen: dict[tuple[str, FramePlan], tuple[DatasetSpec, FrameSettings]] = {}
    for cell in cells:
        seen.setdefault((cell.dataset.dataset_name, cell.frames.plan), (cell.dataset, cell.frames))
    return list(seen.values())


@dataclass(frozen=True)
class TrialRecords:
    """One trial's samples against its logs: each sample's current answer key, and the
    record that counts for it (a sample without one is pending)."""

    cell: Cell
    answer_keys: dict[str, str]  # sample id -> current answer key
    records: dict[str, PredictionRecord]  # sample id -> the record that counts


@dataclass(frozen=True)
class CellTrials:
    """One model x dataset with its trials: what is judged, scored and reported as one,
    and the one place that says which records still count (`current_records`).

    Light to hand on (to a Prefect task): its samples and benchmark are read on first
    use. `CellTrials.group(cells)` groups a config's cells; `CellTrials.of(cells)` takes
    the trials of one pair (an inference unit: the one trial it answers, and the
    samples it has read already).
    """

    trials: tuple[Cell, ...]

    def __post_init__(self) -> None:
        trials = tuple(self.trials)
        object.__setattr__(self, "trials", trials)
        if not trials:
            raise ValueError("CellTrials needs at least one trial")
        pairs = {(c.model.name, c.dataset.dataset_name) for c in trials}
        if len(pairs) > 1:
            raise ValueError(f"trials of more than one model x dataset: {sorted(pairs)}")

    @classmethod
    def of(cls, cells: Iterable[Cell], samples: Sequence[Sample] | None = None) -> CellTrials:
        """The trials `cells` of one model x dataset; `samples`: those to consider, when
        the caller has read them (default: the dataset's, read on first use)."""
        trials = cls(tuple(cells))
        if samples is not None:
            trials.__dict__["samples"] = list(samples)  # what `samples` would otherwise read
        return trials

    @classmethod
    def group(cls, cells: Iterable[Cell]) -> list[CellTrials]:
        """`cells` by model x dataset, in the order each pair first appears."""
        pairs: dict[tuple[str, str], list[Cell]] = {}
        for cell in cells:
            pairs.setdefault((cell.model.name, cell.dataset.dataset_name), []).append(cell)
        return [cls(tuple(trials)) for trials in pairs.values()]

    # What the trials share (the first stands for them: they differ in trial and seed).

    @property
    def model(self) -> ModelSpec:
        return self.trials[0].model

    @property
    def dataset(self) -> DatasetSpec:
        return self.trials[0].dataset

    @property
    def label(self) -> str:
        return f"{self.model.name} x {self.dataset.dataset_name}"

    @cached_property
    def samples(self) -> list[Sample]:
        return load_samples(self.dataset)

    @cached_property
    def benchmark(self) -> Benchmark:
        """The adapter, reading answers under the protocol's rule set."""
        return adapter_of(self.dataset, self.trials[0].rule_set)

    def frame_index_path(self, ws: Workspace) -> Path:
        return self.trials[0].frame_index_path(ws)

    def card(self, judge: str | None = None) -> dict[str, Any]:
        """The reproducibility card (`Cell.card`), with the first trial's seed."""
        return self.trials[0].card(judge)

    def settings(self) -> dict[str, Any]:
        """What the cell report records (`Cell.settings`), with the first trial's key."""
        return self.trials[0].settings()

    # --- what counts ------------------------------------------------------------------

    def videos(self, ws: Workspace) -> dict[str, str]:
        """Sample id -> video fingerprint, from the head of the frame index (written as
        soon as extraction begins; FileNotFoundError before)."""
        return read_index_videos(self.frame_index_path(ws))

    def current_records(
        self, ws: Workspace, videos: Mapping[str, str] | None = None
    ) -> dict[int, TrialRecords]:
        """Per trial (in order), the records that count: one per sample among those
        made under the sample's current answer key, the first success, else the
        most-attempted failure. Others are kept on disk, never counted (`evalcore gc`
        removes them). `videos`: sample id -> video fingerprint (default: `videos(ws)`;
        a caller that runs before extraction passes `frames.index.video_fingerprints`)."""
        videos = self.videos(ws) if videos is None else videos
        current = {}
        for cell in self.trials:
            keys = cell.answer_keys(self.samples, videos)
            counted = merge_records(
                r for r in read_records(cell.log_dir(ws)) if keys.get(r.sample_id) == r.answer_key
            )
            current[cell.trial] = TrialRecords(cell, keys, counted)
        return current
