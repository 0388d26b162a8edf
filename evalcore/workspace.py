"""Where every durable artefact lives; the one place that knows the directory layout.

work_dir/
  frames/                        content-addressed frame cache (shared by models and runs)
  frame-index/{dataset}-{h}.json sample id -> frame cache key or failure, per frame settings
  predictions/{model}/{dataset}/{answer key}/trial-{t}/*.jsonl   one append-only log per
                                 writer; the answer key hashes what the answers depend on
  shards/{model}/{dataset}/{answer key}/trial-{t}/   torchrun launch files and crash marks
  prefect-results/               persisted Prefect task results (small summaries)
  api-cache/responses.sqlite3    API response cache (default place; config api.cache_path)
output_dir/
  {model}_{dataset}.xlsx, results/{model}_{dataset}.json, results.json, leaderboard.*
  leaderboard.png                accuracy over time, drawn from the snapshots
  history/leaderboard-{UTC time}.json   dated leaderboard snapshots (nightly runs)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    work_dir: Path
    output_dir: Path

    @property
    def frame_cache_dir(self) -> Path:
        return self.work_dir / "frames"

    def frame_index_path(self, dataset: str, settings_hash: str) -> Path:
        return self.work_dir / "frame-index" / f"{dataset}-{settings_hash}.json"

    def predictions_dir(self, model: str, dataset: str, answer_key: str, trial: int) -> Path:
        """Logs of one cell trial. `answer_key` (see `stages.answer_key`) separates answers
        made with other model params, data or frame settings: they are never reused."""
        return self.work_dir / "predictions" / model / dataset / answer_key / f"trial-{trial}"

    @property
    def response_cache_path(self) -> Path:
        return self.work_dir / "api-cache" / "responses.sqlite3"

    @property
    def prefect_results_dir(self) -> Path:
        return self.work_dir / "prefect-results"

    def cell_xlsx(self, model: str, dataset: str) -> Path:
        return self.output_dir / f"{model}_{dataset}.xlsx"

    @property
    def results_dir(self) -> Path:
        return self.output_dir / "results"

    def cell_json(self, model: str, dataset: str) -> Path:
        return self.results_dir / f"{model}_{dataset}.json"

    @property
    def history_dir(self) -> Path:
        return self.output_dir / "history"

    @property
    def leaderboard_chart(self) -> Path:
        return self.output_dir / "leaderboard.png"
