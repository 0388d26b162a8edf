"""A config too big to be the eval flow's parameters is a config error, measured as
Prefect measures it: refused where Prefect would refuse it, accepted where it would not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from prefect._internal.schemas.validators import validate_parameter_size

from evalcore.config import (
    PREFECT_MAX_PARAMETER_BYTES,
    ConfigError,
    EvalConfig,
    flow_parameters,
    load_config,
    parse_config,
)
from flows.eval import eval_flow


def raw_config(tmp_path: Path, blob: str = "") -> dict:
    tsv = tmp_path / "bench.tsv"
    tsv.write_text("index\tvideo\tquestion\tanswer\tcandidates\n0\tv0\tQ?\tA\t['a', 'b']\n")
    return {
        "datasets": [{"tsv": str(tsv)}],
        "models": [
            {
                "name": "api",
                "kind": "openai-compatible",
                "params": {
                    "base_url": "http://127.0.0.1:9/v1",
                    "model": "m",
                    "extra_body": {"blob": blob, "ünïcode": "é"},  # escaped as Prefect does
                },
            }
        ],
    }


def test_the_parameters_are_those_prefect_sends(tmp_path):
    config = parse_config(raw_config(tmp_path, "x"))
    assert flow_parameters(config) == eval_flow.serialize_parameters({"config": config})


def test_the_limit_is_prefects_to_the_byte(tmp_path):
    def size(config) -> int:
        return len(json.dumps(flow_parameters(config), separators=(",", ":")).encode())

    base = size(parse_config(raw_config(tmp_path)))
    fits = PREFECT_MAX_PARAMETER_BYTES - base
    config = parse_config(raw_config(tmp_path, "x" * fits))
    validate_parameter_size(flow_parameters(config), PREFECT_MAX_PARAMETER_BYTES)  # accepted

    over = raw_config(tmp_path, "x" * (fits + 1))
    parameters = eval_flow.serialize_parameters({"config": EvalConfig.model_validate(over)})
    with pytest.raises(ValueError, match="must be less than 524,288 bytes"):
        validate_parameter_size(parameters, 524_288)
    with pytest.raises(ConfigError, match=r"models\.0\.params\.extra_body\.blob: "):
        parse_config(over)


def test_the_error_names_the_biggest_field_and_its_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path, "x" * 600_000), sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{path} line 10: models.0.params.extra_body.blob: 600,002 bytes")
    assert "over Prefect's limit of 524,288" in line
