"""`benchmark: generic` reads an answer's letter as VLMEvalKit's generic multiple-choice
path does (`extract_answer_from_item`: `can_infer`, vlmeval/utils/matching_util.py).
Each expected letter below is worked out by hand from `can_infer_option` (separators
`.()[],:;!*#{}` become spaces; exactly one option letter among the words, standing among
the last four; else a lone `Z` or a refusal phrase; else "(correct) answer is X") and
`can_infer_text` (the one option whose text the lower-cased prediction holds, if it is
at most twice as long as all options together: 180 characters here)."""

from __future__ import annotations

import pytest

from evalcore.benchmarks import get_benchmark
from evalcore.dataset import Sample
from evalcore.predictions import PredictionRecord
from evalcore.scoring import score_samples, summarize

OPTIONS = (
    "a man riding a bicycle",
    "a dog chasing a ball",
    "a woman cooking dinner",
    "two children playing chess",
)

READINGS = [
    # the four forms the earlier rule read nothing from
    ("Option C", "C"),  # words [Option, C]: one letter, among the last four
    ("**C**", "C"),  # `*` is a separator: [C]
    ("[C]", "C"),  # [C]
    ("I choose C.", "C"),  # [I, choose, C]: `I` is no option letter with four options
    # what the earlier rule read, read alike
    ("C", "C"),
    ("(B)", "B"),
    ("B.", "B"),
    ("Answer: D", "D"),  # [Answer, D]
    ("The answer is A.", "A"),  # [The, answer, is, A]: A is the 4th word of 4
    ("two children playing chess", "D"),  # no capital letter: the option's text
    ("Answer:\n\nC", "C"),
    ("My answer: {C}", "C"),  # braces are separators
    ("#C", "C"),
    # one letter too early to count, then read another way
    ("B) a dog chasing a ball", "B"),  # B is word 1 of 6: not among the last four; B's text
    ("C: a woman cooking dinner", "C"),  # C is word 1 of 5 (index 0, not > 0); C's text
    ("The correct answer is **B**. The dog runs after the ball.", "B"),  # "answer is **B**"
    ("B, because the dog is chasing the ball.", None),  # word 1 of 8; no option's text
    # the article `A` is a letter to can_infer
    ("A man is riding a bicycle, so the answer is A.", "A"),  # one letter (A), too early;
    # then "answer is A"
    ("A dog is chasing a ball, so the answer is B.", "B"),  # A and B: two; "answer is B"
    ("A woman cooking dinner", "A"),  # [A, woman, cooking, dinner]: A, word 1 of 4 counts
    # two letters, or none
    ("A or B", None),  # two letters; neither option's text
    ("Either B or D could be right.", None),
    ("(A) a man riding a bicycle (B) a dog chasing a ball", None),  # two letters, two texts
    ("I'm not sure.", None),  # `I'm` is one word; no letter, no text
    ("The woman is cooking dinner.", None),  # C's text is not in it word for word
    ("c", None),  # lower case: a word, not a letter
    ("E", None),  # not one of the four letters
    ("<C>", None),  # `<` is no separator: the word is `<C>`
    # can_infer's Z (no option, on purpose): unreadable here
    ("Z", None),
    ("Cannot determine the answer from the video.", None),
    ("Sorry, I can't help with images of people yet.", None),
    ("Failed to obtain answer via API", None),  # VLMEvalKit's API-failure text
    ("", None),
]


def _sample(answer: str = "C") -> Sample:
    return Sample("D", "0", "v0", None, "What happens?", OPTIONS, answer, "x")


@pytest.mark.parametrize(("prediction", "letter"), READINGS)
def test_generic_reads_the_letter_can_infer_reads(prediction, letter):
    adapter = get_benchmark("generic")
    read = adapter.extract(_sample(), prediction)
    assert read.answer == letter
    assert read.rule == adapter.rule == "letter-can-infer-v2"


def test_generic_scores_what_it_reads():
    adapter = get_benchmark("generic")
    samples = [
        Sample("D", str(i), f"v{i}", None, "Q", OPTIONS, "C", "x") for i in range(len(READINGS))
    ]
    records = {
        s.sample_id: PredictionRecord(s.sample_id, "ok", text)
        for s, (text, _) in zip(samples, READINGS, strict=True)
    }
    scored = score_samples(samples, records, adapter)
    hits = sum(letter == "C" for _, letter in READINGS)
    unreadable = sum(letter is None for _, letter in READINGS)
    cell = summarize("m", "D", 0, scored)
    assert (cell.correct, cell.unreadable) == (hits, unreadable) == (9, 14)
