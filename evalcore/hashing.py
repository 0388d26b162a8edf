"""One stable hash for every key derived from settings (cells, answers, cache contexts)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(value: Any, length: int = 16) -> str:
    """A short, stable hash of JSON-able data (pydantic models are dumped first)."""

    def plain(v: Any) -> Any:
        return v.model_dump(mode="json") if hasattr(v, "model_dump") else str(v)

    blob = json.dumps(value, sort_keys=True, default=plain, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]
