import pytest

from evalcore.benchmarks.generic import GenericMCQ
from evalcore.dataset import Sample
from evalcore.predictions import PredictionRecord, failed
from evalcore.scoring import aggregate_trials, extract_option_letter, score_samples, summarize

OPTIONS = ("red", "green", "blue", "yellow")


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("B) green", "B"),
        ("  c  ", None),  # lower-case single letters are words, not options
        ("Answer: C", "C"),
        ("The answer is (D).", "D"),
        ("green", "B"),
        ("I think it is Blue.", "C"),
        ("red or green", None),  # ambiguous: names two options
        ("E", None),  # not one of the four letters
        ("", None),
        (None, None),
    ],
)
def test_extract_option_letter(text, letter):
    assert extract_option_letter(text, OPTIONS) == letter


def sample(i: int, answer: str, category: str) -> Sample:
    return Sample("D", str(i), f"v{i}", None, "Q", OPTIONS, answer, category)


def test_failed_and_missing_count_wrong_and_are_reported():
    samples = [sample(0, "A", "x"), sample(1, "B", "x"), sample(2, "C", "y"), sample(3, "D", "y")]
    records = {
        "0": PredictionRecord("0", "ok", "A"),
        "1": PredictionRecord("1", "ok", "(C)"),
        "2": failed("2", "DecodeError", "corrupt", attempts=2),
    }
    scored = score_samples(samples, records, GenericMCQ())
    assert [r.hit for r in scored] == [True, False, False, False]
    assert [r.status for r in scored] == ["ok", "ok", "failed", "missing"]
    cell = summarize("m", "D", 0, scored)
    assert (cell.n, cell.correct, cell.failed, cell.missing) == (4, 1, 1, 1)
    assert cell.accuracy == 0.25
    assert cell.per_category == {"x": {"accuracy": 0.5, "n": 2}, "y": {"accuracy": 0.0, "n": 2}}


def test_a_failure_is_never_correct_even_if_its_text_looks_like_the_answer():
    rec = PredictionRecord("0", "failed", prediction="A", error_type="Timeout", error="t")
    (row,) = score_samples([sample(0, "A", "x")], {"0": rec}, GenericMCQ())
    assert not row.hit


def test_trials_mean_and_stddev():
    samples = [sample(i, "A", "x") for i in range(4)]
    trials = []
    for t, hits in enumerate([4, 2, 3]):
        recs = {str(i): PredictionRecord(str(i), "ok", "A" if i < hits else "B") for i in range(4)}
        trials.append(summarize("m", "D", t, score_samples(samples, recs, GenericMCQ())))
    agg = aggregate_trials(trials)
    assert agg.accuracy == pytest.approx(0.75)
    assert agg.accuracy_std == pytest.approx(0.25)  # sample stddev of 1.0, 0.5, 0.75
    assert agg.trials == 3
    assert agg.per_category == {"x": pytest.approx(0.75)}
