"""Failure kinds: one enum names every failure a record can carry; which are permanent;
records on disk (any version's) read back the same."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from evalcore.api.retry import STATUS_TYPES, status_error
from evalcore.frames.cache import CorruptFramesError
from evalcore.frames.decoders import EmptyClipError, EmptyVideoError, FrameError
from evalcore.frames.reference_samplers import SamplingRefusedError
from evalcore.predictions import FailureKind, PredictionRecord, failed, is_permanent

EVALCORE = Path(__file__).resolve().parents[3] / "evalcore"

# Before the enum: the error types a re-run did not ask again (RankCrashed left out on
# purpose: the next run asks a poison sample again, see evalcore.inference.torchrun.attempts).
PERMANENT_BEFORE = {
    "VideoNotFound",
    "VideoUnreadable",
    "InvalidPath",
    "EmptyVideo",
    "EmptyClip",
    "InvalidClip",
    "DecodeError",
    "UnsupportedClip",
}
# Permanent kinds added since, each on purpose.
PERMANENT_SINCE = {"SamplingRefused"}  # a clip a sampler's peer refuses (frames.reference_samplers)

# Where an error type is passed: (callable's name, positional index); and `error_type=`.
ERROR_TYPE_ARGS = {"FrameFailure": 0, "ApiError": 0, "ModelError": 1, "failed": 1, "failure": 1}


def test_permanent_kinds_are_those_of_before():
    assert {k.value for k in FailureKind if k.permanent} == PERMANENT_BEFORE | PERMANENT_SINCE
    assert not FailureKind.RankCrashed.permanent
    assert all(is_permanent(name) for name in PERMANENT_BEFORE)


def test_a_kind_is_its_name_on_disk_and_in_text():
    for kind in FailureKind:
        assert kind.name == kind.value and FailureKind(kind.value) is kind
        assert kind == kind.value and hash(kind) == hash(kind.value) and f"{kind}" == kind.value
    assert json.dumps({FailureKind.Timeout: FailureKind.Timeout}) == '{"Timeout": "Timeout"}'
    assert FailureKind.of("Timeout") is FailureKind.Timeout
    assert FailureKind.of("KeyError") is None and FailureKind.of(None) is None


@pytest.mark.parametrize(
    ("error_type", "final"),
    [("VideoNotFound", True), ("UnsupportedClip", True), ("RankCrashed", False),
     ("Timeout", False), ("KeyError", False), ("SomeKindFromANewerVersion", False)],
)  # fmt: skip
def test_records_of_old_logs_load_and_only_permanent_ones_are_final(error_type, final):
    line = json.dumps(
        {"sample_id": "1", "status": "failed", "error_type": error_type, "error": "x"}
    )
    record = PredictionRecord.from_line(line)
    assert record.error_type == error_type and type(record.error_type) is str
    assert record.final is final


def test_a_record_made_with_a_kind_round_trips_as_its_name():
    record = failed("1", FailureKind.VideoNotFound, "gone", answer_key="k")
    assert json.loads(record.to_line())["error_type"] == "VideoNotFound"
    back = PredictionRecord.from_line(record.to_line())
    assert back == record and back.final and back.error_type == FailureKind.VideoNotFound


def test_every_producers_types_are_kinds():
    assert all(isinstance(kind, FailureKind) for kind in STATUS_TYPES.values())
    for status in (400, 418, 429, 500, 503):
        assert isinstance(status_error(status, "x").error_type, FailureKind)
    for error in (
        FrameError,
        EmptyVideoError,
        EmptyClipError,
        CorruptFramesError,
        SamplingRefusedError,
    ):
        assert isinstance(error.error_type, FailureKind)


def test_no_failure_is_named_by_a_string_outside_the_enum():
    """Producers pass members, never a string a typo could make retryable; nothing
    compares an error type with a literal either."""
    names = {kind.value for kind in FailureKind}
    found = []
    for path in sorted(EVALCORE.rglob("*.py")):
        if path.name == "failures.py" and path.parent.name == "predictions":
            continue
        where = path.relative_to(EVALCORE.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            literal = _string(node)
            if literal in names:
                found.append(f"{where}:{node.lineno}: {literal!r}")
            if isinstance(node, ast.Call):
                for arg in _error_type_args(node):
                    if _string(arg) is not None:
                        found.append(f"{where}:{node.lineno}: error type {_string(arg)!r}")
    assert found == []


def _string(node: ast.AST) -> str | None:
    is_str = isinstance(node, ast.Constant) and isinstance(node.value, str)
    return node.value if is_str else None


def _error_type_args(call: ast.Call) -> list[ast.AST]:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    args = [k.value for k in call.keywords if k.arg == "error_type"]
    index = ERROR_TYPE_ARGS.get(name)
    if index is not None and len(call.args) > index:
        args.append(call.args[index])
    return args
