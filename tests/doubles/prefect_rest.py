"""The Prefect server's REST API as tests read it: JSON in, JSON out, over urllib (no
client of Prefect's: what a test checks is what the server says)."""

from __future__ import annotations

import json
import urllib.request


class PrefectRest:
    def __init__(self, api: str, timeout: float = 30.0) -> None:
        self.api = api  # http://host:port/api
        self.timeout = timeout

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.api}/{path}", timeout=self.timeout) as resp:
            return json.load(resp)

    def post(self, path: str, body: dict):
        request = urllib.request.Request(
            f"{self.api}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as resp:
            return json.load(resp)
