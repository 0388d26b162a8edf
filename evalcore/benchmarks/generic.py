"""`benchmark: generic`: VLMEvalKit's common video TSV layout (index, video, question,
answer as letter or option text, candidates), our lettered prompt, the letter rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from evalcore.benchmarks.base import Benchmark, Extraction
from evalcore.dataset import Sample, load_tsv
from evalcore.models.base import ChatMessage
from evalcore.prompts import TEMPLATE_VERSION, chat_messages, render_mcq_prompt
from evalcore.scoring.extract import extract_option_letter

if TYPE_CHECKING:
    from evalcore.config import DatasetSpec


class GenericMCQ(Benchmark):
    name = "generic"
    template = TEMPLATE_VERSION
    rule = "letter-v1"
    breakdowns = ("category",)
    layout = (
        "a TSV with index, video, question, answer (letter or option text), candidates "
        "(a Python list), optional category/task_type, video_path or prefix, start/end"
    )

    def load(self, spec: DatasetSpec) -> list[Sample]:
        return load_tsv(spec.tsv, name=spec.dataset_name, root=spec.root)

    def messages(self, sample: Sample, timestamps: Sequence[float]) -> tuple[ChatMessage, ...]:
        return chat_messages(render_mcq_prompt(sample.question, sample.options))

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(extract_option_letter(prediction, sample.options), self.rule)

    def breakdown_values(self, sample: Sample) -> dict[str, str]:
        return {"category": sample.category}
