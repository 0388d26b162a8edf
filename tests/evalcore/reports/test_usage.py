"""What answers cost: token fields on records (old logs still read), tokens shared over a
pack, the price on the model config (in no key), and the cell totals."""

from __future__ import annotations

import json

import pytest

from evalcore.cell import Cell
from evalcore.config import DatasetSpec, ModelSpec, Price
from evalcore.dataset import Sample
from evalcore.frames import FrameSettings
from evalcore.inference.runner import UnitState, records_for, share_tokens
from evalcore.models import ModelError, ModelOutput, Usage
from evalcore.predictions import PredictionRecord
from evalcore.reports import cell_usage


def test_old_log_lines_read_with_no_cost_and_new_ones_round_trip():
    old = '{"sample_id":"1","status":"ok","prediction":"A","attempts":1,"answer_key":"k"}'
    record = PredictionRecord.from_line(old)
    assert (record.prompt_tokens, record.completion_tokens, record.from_cache) == (0, 0, False)
    new = PredictionRecord("2", "ok", "B", prompt_tokens=120, completion_tokens=3, from_cache=True)
    line = new.to_line()
    assert list(json.loads(line))[-3:] == ["prompt_tokens", "completion_tokens", "from_cache"]
    assert PredictionRecord.from_line(line) == new


def test_tokens_of_one_request_are_shared_over_its_samples():
    assert share_tokens((10, 3), 3) == [(4, 1), (3, 1), (3, 1)]
    assert share_tokens((7, 2), 1) == [(7, 2)]
    samples = [Sample("D", str(i), f"v{i}", None, "q", ("x", "y"), "A") for i in range(3)]
    state = UnitState({s.sample_id: f"key{s.sample_id}" for s in samples}, {})
    packed = ModelOutput('["A", "B", "A"]', Usage(prompt_tokens=10, completion_tokens=3), True)
    records = records_for(samples, packed, state, per_sample=0.25)
    assert [r.prediction for r in records] == ["A", "B", "A"]
    assert [(r.prompt_tokens, r.completion_tokens) for r in records] == [(4, 1), (3, 1), (3, 1)]
    assert all(r.from_cache and r.seconds == 0.25 for r in records)
    (plain,) = records_for(samples[:1], "A", state, per_sample=1.0)  # a str: cost unknown
    assert (plain.prompt_tokens, plain.completion_tokens, plain.from_cache) == (0, 0, False)
    (bad,) = records_for(samples[:1], ModelError("boom", "Timeout"), state, 1.0)
    assert not bad.ok and bad.prompt_tokens == 0


def test_a_model_output_carries_its_text_and_cost_across_processes():
    answer = ModelOutput("B", Usage(12, 1))
    assert answer.text == "B" and answer.usage == (12, 1) and not answer.cached
    import pickle

    back = pickle.loads(pickle.dumps(answer))  # torchrun ranks and Dask workers pickle it
    assert (back.text, *back.usage, back.cached) == ("B", 12, 1, False) and back == answer
    # what the runner records from it (a plain `str` from a kind of one's own: cost unknown)
    state = UnitState({"1": "key1"}, {})
    sample = Sample("D", "1", "v1", None, "q", ("x", "y"), "A")
    (record,) = records_for([sample], answer, state, per_sample=1.0)
    assert (record.prediction, record.prompt_tokens, record.completion_tokens) == ("B", 12, 1)
    (bad,) = records_for([sample], ModelOutput(None), state, 1.0)  # type: ignore[arg-type]
    assert not bad.ok and bad.error_type == "BadAnswer"


def test_price_is_in_no_key(small_bench):
    plain = ModelSpec(name="m", kind="random")
    priced = ModelSpec(
        name="m", kind="random", price={"input_per_million": 1.25, "output_per_million": 5}
    )
    dataset = DatasetSpec(tsv=small_bench)
    assert Cell(plain, dataset, 0, 0, FrameSettings()).key == (
        Cell(priced, dataset, 0, 0, FrameSettings()).key
    )
    assert priced.price.cost(1_000_000, 200_000) == pytest.approx(1.25 + 1.0)
    with pytest.raises(ValueError, match="input_per_million"):
        ModelSpec(name="m", kind="random", price={"input_per_million": -1, "output_per_million": 1})


def test_cell_usage_totals_by_hand():
    records = [
        PredictionRecord("1", "ok", "A", seconds=2.0, prompt_tokens=1000, completion_tokens=10),
        PredictionRecord("2", "ok", "A", seconds=4.0, prompt_tokens=3000, completion_tokens=30),
        PredictionRecord("3", "ok", "A", prompt_tokens=500, completion_tokens=5, from_cache=True),
        PredictionRecord("4", "failed", error_type="Timeout"),
    ]
    usage = cell_usage(records, Price(input_per_million=10, output_per_million=100))
    assert (usage.answers, usage.prompt_tokens, usage.completion_tokens) == (3, 4000, 40)
    assert (usage.cached_answers, usage.cached_prompt_tokens) == (1, 500)
    assert usage.seconds_per_sample == 3.0  # the cache hit took no model time
    assert usage.cost == pytest.approx((4000 * 10 + 40 * 100) / 1e6)  # 0.044
    assert usage.saved_cost == pytest.approx((500 * 10 + 5 * 100) / 1e6)  # 0.0055
    unpriced = cell_usage(records)
    assert unpriced.cost is None and unpriced.currency is None
