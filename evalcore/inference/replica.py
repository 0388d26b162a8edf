"""One model replica in this process: built and loaded on first use, closed at the end.

The launcher decides the `Runtime` (device, dtype, rank); the model kind never does.
A `device_lock` makes replicas take turns on a device: it is taken just before the
model is built and given back when the replica closes.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from evalcore.models import Runtime, VideoModel, build_model

# What the `local` extra installs (pyproject.toml): a model kind that needs one of these
# fails to load in an install without it, with a message that says so.
LOCAL_EXTRA = ("torch", "torchvision", "transformers", "tokenizers", "accelerate", "decord")


class Replica:
    """Callable: returns the loaded model, building it the first time."""

    def __init__(
        self,
        kind: str,
        params: dict[str, Any],
        runtime: Runtime,
        on_ready=None,
        device_lock: threading.Lock | None = None,
    ) -> None:
        self.kind = kind
        self.params = params
        self.runtime = runtime
        self._model: VideoModel | None = None
        self._on_ready = on_ready
        self._device_lock = device_lock
        self._holds_device = False

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def __call__(self) -> VideoModel:
        if self._model is None:
            if self._device_lock is not None and not self._holds_device:
                self._device_lock.acquire()  # another replica on this device: wait for its end
                self._holds_device = True
            model = build_model(self.kind, self.params)
            if self.runtime.device_class == "cpu" and sys.modules.get("torch") is not None:
                import torch

                # measured: >1 thread per process on 2 shared cores ran 7x slower
                torch.set_num_threads(self.runtime.threads)
            try:
                model.load(self.runtime)
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] not in LOCAL_EXTRA:
                    raise
                raise ModuleNotFoundError(
                    f"model kind {self.kind!r} needs {exc.name}, from the `local` extra: "
                    "pip install 'video-evalcore[local]'",
                    name=exc.name,
                ) from exc
            self._model = model
            if self._on_ready is not None:
                self._on_ready()
        return self._model

    def close(self) -> None:
        try:
            if self._model is not None:
                self._model.close()
                self._model = None
        finally:
            if self._holds_device:
                self._holds_device = False
                self._device_lock.release()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
