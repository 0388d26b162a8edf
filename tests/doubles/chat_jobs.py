"""Chat jobs for the API tests (a module of its own: `conftest` names clash across test folders)."""

from __future__ import annotations

from evalcore.api import ChatJob


def text_jobs(n: int, prefix: str = "q") -> list[ChatJob]:
    return [ChatJob(f"{prefix}{i}", f"prompt {prefix}{i}", f"key-{prefix}{i}") for i in range(n)]
