"""`benchmark: generic`: VLMEvalKit's common video TSV layout (index, video, question,
answer as letter or option text, candidates), our lettered prompt, and VLMEvalKit's
generic multiple-choice reading of the answer (`can_infer`: see
`evalcore.scoring.letters`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.dataset import Sample
from evalcore.dataset.tsv import REQUIRED_COLUMNS, tsv_row_sample
from evalcore.models import ChatMessage
from evalcore.prompts import TEMPLATE_VERSION, chat_messages, render_mcq_prompt
from evalcore.scoring.rule_sets import read_letter


class GenericMCQ(Benchmark):
    name = "generic"
    template = TEMPLATE_VERSION
    rule = "letter-can-infer-v2"
    breakdowns = ("category",)
    layout = (
        "a TSV with index, video, question, answer (letter or option text), candidates "
        "(a Python list), optional category/task_type, video_path or prefix, start/end"
    )

    columns = REQUIRED_COLUMNS

    def sample_from_row(
        self, name: str, sample_id: str, row: dict, where: str, root: Path
    ) -> Sample:
        return tsv_row_sample(name, sample_id, row, where, root)

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return chat_messages(render_mcq_prompt(sample.question, sample.options))

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(
            read_letter(self.name, self.rule_set, prediction, sample.options), self.rule
        )

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        return {"category": sample.category}
