"""Where every durable artefact lives; the one place that knows the directory layout.

work_dir/
  frames/                        content-addressed frame cache (shared by models and runs)
  frames/fingerprints.sqlite     video fingerprints by path and stat (default place;
                                 config local_dir)
  frame-index/{dataset}-{h}.jsonl  per TSV file and frame plan: every sample's video
                                 fingerprint, then its clip's frame cache key (or failure)
                                 as extraction finishes it (a journal, `frames.index`)
  predictions/{model}/{dataset}/{cell key}/trial-{t}/*.jsonl   one append-only log per
                                 writer; every record carries its sample's answer key
  shards/{model}/{dataset}/{cell key}/trial-{t}/   torchrun launch files and crash marks
  judgements/{model}/{dataset}/{cell key}/trial-{t}/judge-{judge}.jsonl   verdicts of the
                                 judge on the answers of judged (open-ended) benchmarks
  prefect-results/               persisted Prefect task results (small summaries)
  api-cache/responses.sqlite3    API response cache (default place; config local_dir,
                                 api.cache_path)
local_dir/ (config local_dir: host-local disk, where work_dir is shared by hosts)
  fingerprints.sqlite            the fingerprint memo
  api-cache/responses.sqlite3    the API response cache (unless api.cache_path)
output_dir/
  {model}/{model}_{dataset}.xlsx and .json   one cell's answers and metrics (VLMEvalKit's
                                 layout: the model folder keeps "a_b" x "c" apart from "a" x "b_c")
  results.json, leaderboard.*
  leaderboard.png                accuracy over time with 95% intervals, from the snapshots
  leaderboard-categories.png     the current score per category, with 95% intervals
  .leaderboard-digest            what the leaderboard files show: unchanged, not rewritten
  history/leaderboard-{UTC time}.json   dated leaderboard snapshots (nightly runs)
  history/samples/{hash}.json.gz        per-sample outcomes the snapshots refer to
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalcore.config import EvalConfig


@dataclass(frozen=True)
class Workspace:
    """`local_dir`: where the SQLite files go (WAL mode: their users must share one
    machine's memory), when `work_dir` is shared by hosts; None: under `work_dir`."""

    work_dir: Path
    output_dir: Path
    local_dir: Path | None = None

    @classmethod
    def of(cls, config: EvalConfig) -> Workspace:
        """The workspace of a run's config."""
        return cls(config.work_dir, config.output_dir, config.local_dir)

    @property
    def frame_cache_dir(self) -> Path:
        return self.work_dir / "frames"

    @property
    def fingerprint_memo_path(self) -> Path:
        """The frame cache's memo of video fingerprints (`FrameCache(..., memo=)`)."""
        return (self.local_dir or self.frame_cache_dir) / "fingerprints.sqlite"

    @property
    def frame_index_dir(self) -> Path:
        return self.work_dir / "frame-index"

    def frame_index_path(self, dataset: str, settings_hash: str) -> Path:
        return self.frame_index_dir / f"{dataset}-{settings_hash}.jsonl"

    def predictions_dir(self, model: str, dataset: str, cell_key: str, trial: int) -> Path:
        """Logs of one cell trial (see `evalcore.cell.Cell.log_dir`)."""
        return self.work_dir / "predictions" / model / dataset / cell_key / f"trial-{trial}"

    def shards_dir(self, model: str, dataset: str, cell_key: str, trial: int) -> Path:
        """torchrun launch files and in-flight marks of one cell trial's shards."""
        return self.shards_root / model / dataset / cell_key / f"trial-{trial}"

    @property
    def shards_root(self) -> Path:
        return self.work_dir / "shards"

    def judgements_dir(self, model: str, dataset: str, cell_key: str, trial: int) -> Path:
        """The judge's durable verdicts on one cell trial's answers (judged benchmarks)."""
        return self.work_dir / "judgements" / model / dataset / cell_key / f"trial-{trial}"

    @property
    def predictions_root(self) -> Path:
        return self.work_dir / "predictions"

    @property
    def response_cache_path(self) -> Path:
        """The API response cache, unless the config names one (`api.cache_path`)."""
        return (self.local_dir or self.work_dir) / "api-cache" / "responses.sqlite3"

    @property
    def prefect_results_dir(self) -> Path:
        return self.work_dir / "prefect-results"

    def cell_xlsx(self, model: str, dataset: str) -> Path:
        return self.output_dir / model / f"{model}_{dataset}.xlsx"

    def cell_json(self, model: str, dataset: str) -> Path:
        return self.output_dir / model / f"{model}_{dataset}.json"

    def cell_jsons(self) -> list[Path]:
        """Every cell report under the output folder."""
        return sorted(
            p for p in self.output_dir.glob("*/*.json") if p.stem.startswith(p.parent.name + "_")
        )

    @property
    def history_dir(self) -> Path:
        return self.output_dir / "history"

    @property
    def leaderboard_chart(self) -> Path:
        return self.output_dir / "leaderboard.png"

    @property
    def category_chart(self) -> Path:
        return self.output_dir / "leaderboard-categories.png"

    @property
    def leaderboard_digest(self) -> Path:
        """What the published leaderboard files show (rows and snapshots), hashed."""
        return self.output_dir / ".leaderboard-digest"
