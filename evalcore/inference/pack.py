"""Pack mode (`datasets[].pack: true`): all pending questions about one clip in one
request, numbered, the answers parsed back per question.

VLMEvalKit packs MMBench-Video only and refuses local models; here every benchmark and
both local and API models can pack. The packed prompt is the benchmark's own prompt
per question, numbered, and asks for a JSON list of answers in order; a reply parses as
that list, a JSON object keyed by number, or numbered lines ("1. B"). A question whose
answer cannot be found in the reply fails alone (`PackUnanswered`, retryable); on the
next run it is asked again *unpacked* (a pack of one), so one stubborn question never
re-asks the others. Packing is part of the prompt template, hence of every answer key:
packed and unpacked answers never mix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from evalcore.dataset import Sample
from evalcore.models import ChatMessage

_NUMBERED = re.compile(r"^\s*(?:Q(?:uestion)?\s*)?(\d+)\s*[.):\]-]\s*(.*\S)\s*$", re.IGNORECASE)


def pack_groups(samples: Sequence[Sample]) -> list[list[Sample]]:
    """Samples grouped by clip (video and bounds), in order of first appearance."""
    groups: dict[tuple, list[Sample]] = {}
    for s in samples:
        groups.setdefault((str(s.video_path), s.start, s.end), []).append(s)
    return list(groups.values())


def pack_messages(per_question: Sequence[tuple[ChatMessage, ...]]) -> tuple[ChatMessage, ...]:
    """One chat for a clip's questions, from each question's own chat (same system turn)."""
    system = next((m for m in per_question[0] if m.role == "system"), None)
    asks = [next(m.text for m in chat if m.video) for chat in per_question]
    n = len(asks)
    body = [
        f"Answer each of the following {n} questions about the video.",
        *(f"Question {i}:\n{text}" for i, text in enumerate(asks, start=1)),
        f"Reply with a JSON list of exactly {n} answers, in the order of the questions, "
        'each answer as you would give it alone (e.g. ["A", "C"]).',
    ]
    user = ChatMessage(role="user", text="\n\n".join(body), video=True)
    return (system, user) if system else (user,)


def unpack_answers(reply: str, n: int) -> list[str | None]:
    """The answers of a packed reply, one per question (None: not found)."""
    parsed = _json_answers(reply, n)
    if parsed is not None:
        return parsed
    found: dict[int, str] = {}
    for line in reply.splitlines():
        m = _NUMBERED.match(line)
        if m and 1 <= int(m.group(1)) <= n and int(m.group(1)) not in found:
            found[int(m.group(1))] = m.group(2)
    return [found.get(i) for i in range(1, n + 1)]


def _json_answers(reply: str, n: int) -> list[str | None] | None:
    for opener, closer in (("[", "]"), ("{", "}")):
        start, end = reply.find(opener), reply.rfind(closer)
        if start < 0 or end <= start:
            continue
        try:
            value = json.loads(reply[start : end + 1])
        except ValueError:
            continue
        if isinstance(value, list):
            items = [_text(v) for v in value[:n]]
            return items + [None] * (n - len(items))
        if isinstance(value, dict):
            return [_text(value.get(str(i), value.get(i))) for i in range(1, n + 1)]
    return None


def _text(value) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None
