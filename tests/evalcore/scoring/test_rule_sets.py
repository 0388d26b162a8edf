"""Named answer rules: every hand-worked answer reads as worked out from each peer's source."""

import pytest

from evalcore.scoring import RuleSet, has_letter_rule, read_letter
from tests.doubles.answers import ANSWERS, BENCHMARKS, KEY, OPTIONS, expected


@pytest.mark.parametrize("benchmark", BENCHMARKS)
@pytest.mark.parametrize(("text", "row"), ANSWERS, ids=[repr(t)[:40] for t, _ in ANSWERS])
def test_hand_worked_answers(benchmark, text, row):
    read = {rs.value: read_letter(benchmark, rs, text, OPTIONS, KEY) for rs in RuleSet}
    assert read == expected(row, benchmark)


def test_each_benchmark_has_at_least_sixty_answers_and_every_class():
    assert len({t for t, _ in ANSWERS}) == len(ANSWERS) >= 60
    texts = {t for t, _ in ANSWERS}
    for shape in ("B", "(B)", "B.", "The answer is B", "the man opens the door", "b", "",
                  "B. the man opens the door", "B or C", "**B**", "Option B",
                  "Cannot determine the answer from the video."):  # fmt: skip
        assert shape in texts


def test_rule_sets_disagree_where_the_issue_says():
    # Video-MME: VLMEvalKit reads no option text; evalcore does
    assert read_letter("videomme", "vlmevalkit", "the man opens the door", OPTIONS) is None
    assert read_letter("videomme", "evalcore", "the man opens the door", OPTIONS) == "B"


def test_judged_benchmarks_have_no_letter_rule():
    assert all(has_letter_rule(b) for b in BENCHMARKS)
    assert not has_letter_rule("mmbench_video") and not has_letter_rule("mlvu_open")
    with pytest.raises(KeyError):
        read_letter("mmbench_video", "evalcore", "B", OPTIONS)
    with pytest.raises(ValueError):
        read_letter("videomme", "nonsense", "B", OPTIONS)
