"""What a benchmark adapter is: it reads one layout into `Sample`s and owns the
benchmark's prompt, its answer rule and the breakdowns its report has.

An adapter is a class registered by name (`datasets[].benchmark: NAME`); one instance
serves every dataset of that layout. Its `template` (the prompt's version) goes into
every answer key, and its `rule` (the extraction rule's version) into every report, so
a changed prompt never reuses old answers and a changed rule is visible.

Facts about each layout, prompt and rule come from VLMEvalKit's vlmeval/dataset/*.py
(read there; reproduced here in our own code); each adapter's docstring says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from evalcore.dataset.sample import LETTERS, Sample
from evalcore.models import ChatMessage

if TYPE_CHECKING:
    from evalcore.benchmarks.source import DatasetSource


@dataclass(frozen=True)
class Extraction:
    """What the benchmark's rule read from a prediction: the answer in the sample's own
    terms (an option letter, `yes`/`no`, ...), or None when it reads nothing."""

    answer: str | None
    rule: str  # the rule's name and version, e.g. "videomme-letter-v1"


class Benchmark:
    """Base adapter: override `load`, `messages`, `extract`; set the class fields."""

    name: ClassVar[str] = ""
    template: ClassVar[str] = ""  # prompt version: part of every answer key
    rule: ClassVar[str] = ""  # extraction rule version: recorded in reports
    breakdowns: ClassVar[tuple[str, ...]] = ()  # TSV columns (or derived fields) reported by
    layout: ClassVar[str] = ""  # what files it expects (for `evalcore benchmarks`)
    # Open-ended benchmarks are scored by the `judge:` (see evalcore.judge.scores):
    judged: ClassVar[bool] = False
    metric: ClassVar[str] = "accuracy"  # what the headline number is
    judge_version: ClassVar[str] = ""  # the judge prompt's version: part of verdict keys
    # VLMEvalKit's dataset that pools several files of this layout into one report (e.g.
    # TempCompass): each file's cell report also carries the pooled table (`pooled_rating`)
    pool: ClassVar[str] = ""

    columns: ClassVar[tuple[str, ...]] = ()  # the TSV columns a row-by-row layout requires
    # the answer rule set `extract` reads letters under (`evalcore.scoring.rule_sets`);
    # the registry sets it per instance from the cell's protocol
    rule_set: str = "evalcore"

    def load(self, spec: DatasetSource) -> list[Sample]:
        """Every sample of the dataset, or `DatasetError` naming file and line. By
        default row by row: the file, `index` and `columns` checked, then
        `sample_from_row` for each row."""
        from evalcore.dataset.tsv import check_root, read_rows

        rows = read_rows(spec.tsv, self.columns)
        if spec.root is not None:
            check_root(spec.root)
        root = self.videos_under(spec)
        name = spec.dataset_name
        return [self.sample_from_row(name, sid, row, where, root) for where, sid, row in rows]

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        """One row's sample (`where` names file and line for a `DatasetError`), built by
        `evalcore.dataset.tsv.row_sample` as every adapter's is."""
        raise NotImplementedError

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        """The chat the model sees for `sample` (frames go in the turn marked `video`);
        `timestamps` are the sampled frames' times, for subtitles."""
        raise NotImplementedError

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        """The benchmark's own rule; `answer=None` when it reads nothing (the judge, if
        configured, is asked then)."""
        raise NotImplementedError

    def is_correct(self, sample: Sample, answer: str | None) -> bool:
        return answer is not None and answer == sample.answer

    def judge_messages(self, sample: Sample, prediction: str) -> tuple[ChatMessage, ...]:
        """Judged benchmarks: the judge's chat about one answer (the benchmark's prompt)."""
        raise NotImplementedError(f"{self.name} is not a judged benchmark")

    def parse_judgement(self, sample: Sample, reply: str) -> float | None:
        """Judged benchmarks: the score in the judge's reply; None when it holds none."""
        raise NotImplementedError(f"{self.name} is not a judged benchmark")

    def judge_choices(self, sample: Sample) -> tuple[str, ...]:
        """The choices an LLM judge matches an unreadable answer against (empty: this
        sample is never judged)."""
        return sample.options

    def from_choice(self, sample: Sample, index: int) -> str:
        """The answer, in the sample's terms, for the judge's choice `index`."""
        return LETTERS[index]

    def pooled_rating(
        self, files: Mapping[str, Iterable[tuple[Mapping[str, str], float | None]]]
    ) -> tuple[list[str], list[dict]]:
        """Pooling benchmarks (`pool`): VLMEvalKit's pooled table over the files (dataset
        name -> (breakdown values, value) per question): the files pooled, in its order,
        and the table's rows; ValueError when the files cannot be pooled."""
        raise NotImplementedError(f"{self.name} pools no files")

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        """The sample's value for each breakdown (a missing column is "")."""
        return {b: str(sample.row.get(b, "") or "") for b in self.breakdowns}

    def videos_under(self, spec: DatasetSource) -> Path:
        """Where video paths resolve (the dataset root)."""
        return Path(spec.root) if spec.root is not None else Path(spec.tsv).parent
