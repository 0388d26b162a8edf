"""The judge stage: an LLM over the API fan-out, for what a benchmark's rule cannot read."""

from evalcore.judge.readings import JudgeSummary, judge_unreadable

__all__ = ["JudgeSummary", "judge_unreadable"]
