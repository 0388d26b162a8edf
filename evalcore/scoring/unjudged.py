"""Why a judged benchmark's answer has no judge's score. Such an answer is in no mean: a
cell is scored over its judged answers, and has no score at all (never 0) when its judge
scored none of them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Unjudged(StrEnum):
    """The reason, as reports name it (the JSON's `unjudged_reasons` keys)."""

    NO_JUDGE = "no judge configured"
    JUDGE_FAILED = "judge failed"  # a typed failure (HTTP error, a reply without a score)
    NOT_JUDGED = "not judged yet"  # no verdict under the answer's current key


def describe_unjudged(count: int, reasons: Mapping[str, int]) -> str:
    """`48 unjudged: judge failed`, or with several reasons `3 unjudged: judge failed 2,
    not judged yet 1`; empty when every answer was judged."""
    if not count:
        return ""
    if len(reasons) == 1:
        return f"{count} unjudged: {next(iter(reasons))}"
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"{count} unjudged: {why}" if why else f"{count} unjudged"
