"""The multiple-choice prompt. Its version goes into every answer key: change text, bump it."""

from __future__ import annotations

from evalcore.dataset.sample import LETTERS
from evalcore.models import ChatMessage

TEMPLATE_VERSION = "mcq-v1"
PACK_VERSION = "pack-v1"  # the packed prompt (evalcore.inference.pack): in every answer key


def render_mcq_prompt(question: str, options: tuple[str, ...] | list[str]) -> str:
    """Question, lettered options, and the instruction to answer with a letter."""
    lines = [f"Question: {question.strip()}", "Options:"]
    lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    lines.append("Answer with the option's letter from the given choices directly.")
    return "\n".join(lines)


def chat_messages(prompt: str, system: str | None = None) -> tuple[ChatMessage, ...]:
    """The chat a model sees: an optional system turn, then the clip and the prompt."""
    turns = [ChatMessage(role="system", text=system)] if system else []
    return (*turns, ChatMessage(role="user", text=prompt, video=True))
