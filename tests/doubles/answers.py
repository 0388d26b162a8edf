"""Hand-worked answers for the answer rule sets (`evalcore.scoring.rule_sets`).

Every row is read with the same question: options A "a dog runs away", B "the man opens
the door", C "the woman closes the window", D "nobody moves"; key B. `expected` gives,
per benchmark (videomme, longvideobench, mvbench, mlvu, generic), three characters: the
letter under `evalcore`, `vlmevalkit` and `lmms-eval` ("-": no letter). Each was worked
out by hand from the peers' source; the comment names the line that decides it.

V = VLMEvalKit e8e78f05: vlmeval/dataset/utils/videomme.py `extract_characters_regex`
(130-152; longvideobench.py 60-82 with A-E), utils/mvbench.py `check_ans_with_model`
(57-68), utils/mlvu.py `check_ans_with_model` (65-70), vlmeval/utils/matching_util.py
`can_infer_option` (18-61), `can_infer_text` (107-121).
L = lmms-eval 75571cfe: lmms_eval/tasks/_task_utils/mcq_extract.py `extract_mcq_answer`
(66-158; videomme, mlvu and generic), longvideobench/utils.py
`parse_multi_choice_response` (187-213), mvbench/utils.py `mcq_acc` `process` (112-137).
"""

OPTIONS = (
    "a dog runs away",
    "the man opens the door",
    "the woman closes the window",
    "nobody moves",
)
KEY = "B"
BENCHMARKS = ("videomme", "longvideobench", "mvbench", "mlvu", "generic")

#   answer                        videomme longvideobench mvbench mlvu generic
ANSWERS: tuple[tuple[str, str], ...] = (
    # bare letter: V regex 149 / check_ans 64 / mlvu 68; L start (mcq 135), process 132
    ("B", "BBB BBB BBB BBB BBB"),
    ("A", "AAA AAA AAA AAA AAA"),
    ("C", "CCC CCC CCC CCC CCC"),
    ("D", "DDD DDD DDD DDD DDD"),
    ("C\n", "CCC CCC CCC CCC CCC"),
    # "(B)": V regex; mlvu cuts before ")" (66-67); L parentheses (mcq 98)
    ("(B)", "BBB BBB BBB BBB BBB"),
    ("[B]", "BBB BBB BBB BBB BBB"),  # L fallback (mcq 144-147); can_infer drops [] (40)
    ("(B", "BBB BBB BBB BBB BBB"),  # L end (mcq 140): "(" is no letter
    # "B.": L period (mcq 103); mvbench first word "b." -> "b" (V 64)
    ("B.", "BBB BBB BBB BBB BBB"),
    ("B, because the man opens the door", "BBB BBB BBB BBB BBB"),  # V can_infer_text 117
    # "The answer is B": V prefix deleted (143-144); L phrase (mcq 123-130)
    ("The answer is B", "BBB BBB BBB BBB BBB"),
    ("The answer is: B", "BBB BBB BBB BBB BBB"),
    ("The answer is C.", "CCC CCC CCC CCC CCC"),
    ("The answer is C because the woman closes the window.", "CCC CCC CCC CCC CCC"),
    ("The correct answer is B: the man opens the door.", "BBB BBB BBB BBB BBB"),
    ("The best option is C", "CCC CCC CCC CCC CCC"),  # V's joined prefix is not deleted
    ("I think the answer is (B).", "BBB BBB BBB BBB BBB"),
    ("I choose B", "BBB BBB BBB BBB BBB"),  # L phrase "i choose" (mcq 34)
    ("My choice is D.", "DDD DDD DDD DDD DDD"),
    ("Option: C", "CCC CCC CCC CCC CCC"),  # V deletes "Option:" (152); L LVB has none: O
    # option text only: V Video-MME/LVB read nothing (extract_option gets no choices,
    # 121-127); can_infer_text reads it (117-120) for evalcore and V mvbench/mlvu/generic;
    # L finds no capital (mcq 144-150) and no standalone letter (mvbench 132)
    ("the man opens the door", "B-- B-- BB- BB- BB-"),
    ("The man opens the door.", "B-- B-- BB- BB- BB-"),
    ("the woman closes the window", "C-- C-- CC- CC- CC-"),
    ("Answer: the man opens the door", "B-A B-A BB- BBA BBA"),  # L fallback: A of Answer
    # lower-case letter: no capital for V's regex (149) nor L's extractor; V mvbench's
    # first word "b" is part of "(b)" (64); L mvbench matches any case (132)
    ("b", "--- --- BBB --- ---"),
    ("(b)", "--- --- BBB --- ---"),
    ("a", "--- --- --A --- ---"),
    ("I think a man opens the door", "--- --- --A --- ---"),  # L mvbench: article "a"
    ("The answer is b", "B-- B-- BBB BB- BB-"),  # can_infer's "answer is" (57, any case)
    ("b) the man opens the door", "B-- B-- BBB BB- BB-"),
    # a letter plus its text
    ("B. the man opens the door", "BBB BBB BBB BBB BBB"),  # L mvbench option line (113)
    ("B. The man opens the door.", "BBB BBB BBB BBB BBB"),
    ("(B) the man opens the door", "BBB BBB BBB BBB BBB"),
    ("B) the man opens the door", "BBB BBB BBB BBB BBB"),
    ("B: the man opens the door", "BBB BBB BBB BBB BBB"),
    ("Option B: the man opens the door", "BBB BBB BBB BBB BBB"),
    ("C. the woman closes the window", "CCC CCC CCC CCC CCC"),
    ("C) the woman closes the window", "CCC CCC CCC CCC CCC"),
    ("D. nobody moves", "DDD DDD DDD DDD DDD"),
    ("A. a dog runs away", "AAA AAA AAA AAA AAA"),
    ("A dog runs away.", "AAA AAA AAA AAA AAA"),
    # two letters: V regex takes the first (149); can_infer_option counts two (47: none);
    # L start (10) beats end (9) beats phrase (7)
    ("B or C", "BBB BBB BBB --B --B"),
    ("C or B", "CCC CCC --C --C --C"),
    ("B and C are both possible", "BBB BBB BBB --B --B"),
    ("Both B and C", "BBC BBB --B --C --C"),  # V and L-LVB read the B of "Both"
    ("The answer is B or C", "BBC BBB BBB BBC BBC"),  # can_infer "answer is B" (57)
    ("( C )", "CCC CCC CBC CCC CCC"),  # V mvbench: first word "(" names every letter
    # refusals: can_infer_option's list gives Z (24-30): no letter
    ("Cannot determine the answer from the video.", "CCC CCC --- --C --C"),
    ("Sorry, I can't help with images of people yet.", "--- --- --- --- ---"),
    ("I can't process this file.", "--- --- --- --- ---"),
    ("I'm sorry, but I can't tell from these frames.", "--- --- --- --- ---"),
    ("Neither", "--- --- --- --- ---"),
    ("Z", "--- --- --- --- ---"),  # can_infer's lone Z (54)
    ("the man opens the door and the woman closes the window", "--- --- --- --- ---"),
    # empty: V mvbench's empty first word is part of "(b)" (64): the key
    ("", "--- --- -B- --- ---"),
    ("   ", "--- --- -B- --- ---"),
    # markdown and tags
    ("**B**", "BBB BBB BBB BBB BBB"),  # can_infer drops * (40); L fallback
    ("**Answer:** B", "BBB BBA BBB BBB BBB"),  # L LVB keeps "Answer:": its A
    ("<answer>B</answer>", "BBB BBB --B --B --B"),  # can_infer keeps <>/ in the word
    # "Option B": V regex skips O (149); L end (140)
    ("Option B", "BBB BBB BBB BBB BBB"),
    # prefixes and capitals before the letter
    ("Answer: C", "CCC CCA CCC CCC CCC"),
    ("Answer: (D)", "DDD DDA DDD DDD DDD"),
    ("Best answer: C", "BBC BBC CCC CCC CCC"),  # V's joined "Best answer:Best option:"
    ("Based on the video, the answer is C.", "BBC BBB CCC CCC CCC"),
    ("Based on the frames, (C) the woman closes the window.", "BBC BBB CCC CCC CCC"),
    ("Definitely B.", "DDB DDD BBB BBB BBB"),
    ("Certainly! The answer is B.", "CCB CCC BBB BBB BBB"),
    ("The video shows a dog running away, so the answer is A.", "AAA AAA AAA AAA AAA"),
    ("Explanation: the door is opened by the man, so B.", "BBB EEE BBB BBB BBB"),
    ("E", "--- EEE --E --- ---"),  # LVB reads A-E; L mvbench A-E (132)
)


def expected(row: str, benchmark: str) -> dict[str, str | None]:
    """Rule set name -> letter (None: none) for `benchmark` in a row's code."""
    code = row.split()[BENCHMARKS.index(benchmark)]
    return {
        name: None if c == "-" else c
        for name, c in zip(("evalcore", "vlmevalkit", "lmms-eval"), code, strict=True)
    }
