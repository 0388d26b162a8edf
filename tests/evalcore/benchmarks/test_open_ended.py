"""The open-ended, judge-scored benchmarks as VLMEvalKit runs them: MMBench-Video,
MLVU's open-ended tasks and TempCompass captioning. Their layouts with real clips, the
model's prompt, the judge's prompt, the score VLMEvalKit reads from fixed judge replies,
and the report those scores make, worked out by hand from VLMEvalKit's aggregation."""

from __future__ import annotations

import pytest

from evalcore.benchmarks import BENCHMARKS, get_benchmark
from evalcore.config import DatasetSpec
from evalcore.dataset import DatasetError
from tests.doubles.benchmarks.mlvu_tempcompass import write_tsv
from tests.doubles.benchmarks.open_ended import (
    MMBENCH_VIDEO_COLUMNS,
    TEMPCOMPASS_CAPTIONING_COLUMNS,
    build_mlvu_open,
    build_mmbench_video,
    build_tempcompass_captioning,
    mlvu_open_rows,
    mmbench_video_rows,
    tempcompass_captioning_rows,
)

NAMES = ("mmbench_video", "mlvu_open", "tempcompass_captioning")


@pytest.fixture(scope="module")
def mmbench_video(tmp_path_factory):
    tsv = build_mmbench_video(tmp_path_factory.mktemp("MMBench-Video"))
    spec = DatasetSpec(tsv=tsv, benchmark="mmbench_video")
    adapter = get_benchmark("mmbench_video")
    return spec, adapter, {s.sample_id: s for s in adapter.load(spec)}


@pytest.fixture(scope="module")
def mlvu_open(tmp_path_factory):
    tsv = build_mlvu_open(tmp_path_factory.mktemp("MLVU"))
    spec = DatasetSpec(tsv=tsv, benchmark="mlvu_open")
    adapter = get_benchmark("mlvu_open")
    return spec, adapter, {s.sample_id: s for s in adapter.load(spec)}


@pytest.fixture(scope="module")
def captioning(tmp_path_factory):
    tsv = build_tempcompass_captioning(tmp_path_factory.mktemp("TempCompass"))
    spec = DatasetSpec(tsv=tsv, benchmark="tempcompass_captioning")
    adapter = get_benchmark("tempcompass_captioning")
    return spec, adapter, {s.sample_id: s for s in adapter.load(spec)}


@pytest.mark.parametrize("name", NAMES)
def test_registered_as_judged_adapters(name):
    adapter = get_benchmark(name)
    assert name in BENCHMARKS and adapter.name == name
    assert adapter.judged is True
    assert adapter.metric and adapter.judge_version and adapter.template and adapter.rule


def _scored(samples, scores):
    return [(samples[sid], score) for sid, score in scores.items()]


def _table(rows, *fields):
    return {k: tuple(v.get(f) for f in fields) for k, v in rows.items()}


# --- MMBench-Video --------------------------------------------------------------------


def test_mmbench_video_loads_free_text_questions_with_clips_under_video(mmbench_video):
    spec, adapter, samples = mmbench_video
    assert list(samples) == [str(i) for i in range(8)]
    first = samples["0"]
    assert first.options == () and first.answer == "Three birds."
    assert first.question == "How many birds are there?"
    assert first.video_path == (spec.tsv.parent / "video" / "mmvA.mp4").resolve()
    assert all(s.video_path.is_file() and s.path_error is None for s in samples.values())
    assert adapter.breakdown_values(samples["6"]) == {
        "coarse": "HL, TR, Perception, Reasoning, Overall",
        "fine": "Hallucination, Causal Reasoning",
    }


def test_mmbench_video_without_video_path_reads_video_slash_id(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "video_path"} for r in mmbench_video_rows()]
    tsv = build_mmbench_video(tmp_path / "mmv", rows)
    samples = get_benchmark("mmbench_video").load(DatasetSpec(tsv=tsv, benchmark="mmbench_video"))
    assert samples[3].video_path == (tmp_path / "mmv" / "video" / "mmvB.mp4").resolve()
    assert all(s.video_path.is_file() for s in samples)


def test_mmbench_video_prompt_is_vlmevalkits_nopack_prompt(mmbench_video):
    _, adapter, samples = mmbench_video
    (user,) = adapter.messages(samples["0"], timestamps=[0.0625 * i for i in range(8)])
    assert user.role == "user" and user.video  # no system turn; the frames, then the text
    assert user.text == (
        "\nYou will be provided with 8 separate frames uniformly sampled from a video, the "
        "frames are provided in chronological order of the video.\nPlease analyze these "
        "images and provide the answer to the question about the video content.\nPlease "
        "directly reply with your response to the only question.\n"
        "Question: How many birds are there?\nAnswer: "
    )


def test_mmbench_video_judge_sees_question_groundtruth_and_candidate(mmbench_video):
    _, adapter, samples = mmbench_video
    system, user = adapter.judge_messages(samples["0"], "I count 3 birds.")
    assert system.role == "system" and user.role == "user"
    assert system.text.startswith(
        "\nAs an AI assistant, your task is to evaluate a candidate answer in comparison to "
        "a given correct answer.\n"
    )
    assert (
        "Your assessment should range from 0 to 3, based solely on the semantic similarity "
        "between the groundtruth and the candidate answer, disregarding any grammatical "
        "differences.\n" in system.text
    )
    assert system.text.endswith("Your response should be a single integer from 0, 1, 2, or 3.\n")
    assert user.text == (
        "Question: How many birds are there?\nGroundtruth answer: Three birds.\n"
        "Candidate answer: I count 3 birds.\nYour response: "
    )
    assert adapter.extract(samples["0"], "I count 3 birds.").answer is None


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("3", 3.0),
        ("0", 0.0),
        (" 2\n", 2.0),  # VLMEvalKit's client strips the reply
        ("(1)", 1.0),  # an integer to Python, as VLMEvalKit's eval reads it
        ("Score: 2", None),  # not a Python integer: -1 (a failure) in VLMEvalKit
        ("2. The candidate answer is largely correct.", None),
        ("2.5", None),  # a float, not an int
        ("two", None),
        ("", None),
        ("-1", None),  # VLMEvalKit's failure value
        ("4", None),  # outside 0-3 (VLMEvalKit would average it in as 4)
        ("True", None),  # an int to Python's eval; not a score
    ],
)
def test_mmbench_video_reads_a_score_only_from_a_reply_that_is_an_integer(
    mmbench_video, reply, score
):
    _, adapter, samples = mmbench_video
    assert adapter.parse_judgement(samples["0"], reply) == score


# Fixed judge replies by index, and the score each gives (in brackets).
MMBENCH_VIDEO_REPLIES = {
    "0": "3",  # [3]
    "1": " 2\n",  # [2]
    "2": "1",  # [1]
    "3": "Score: 2",  # [None: a failure, 0 in VLMEvalKit's _all rating]
    "4": "0",  # [0]
    "5": "2",  # [2]
    "6": "3",  # [3]
    "7": "1",  # [1]
}


def test_mmbench_video_report_is_get_dimension_ratings(mmbench_video):
    _, adapter, samples = mmbench_video
    scores = {
        sid: adapter.parse_judgement(samples[sid], r) for sid, r in MMBENCH_VIDEO_REPLIES.items()
    }
    assert scores == {
        "0": 3.0,
        "1": 2.0,
        "2": 1.0,
        "3": None,
        "4": 0.0,
        "5": 2.0,
        "6": 3.0,
        "7": 1.0,
    }
    # Overall (_all): (3 + 2 + 1 + 0 + 0 + 2 + 3 + 1) / 8 = 12 / 8; a mean over questions
    assert adapter.overall(list(scores.values())) == pytest.approx(1.5)
    # without the failure (the _valid rating): 12 / 7
    assert adapter.overall([s for s in scores.values() if s is not None]) == pytest.approx(12 / 7)

    tables = adapter.breakdown_scores(_scored(samples, scores))
    assert _table(tables["fine"], "accuracy", "n", "failed") == {
        "Counting": (2.5, 2, 0),  # q0 3, q1 2
        "OCR": (1.5, 2, 0),  # q1 2, q7 1
        "Video Topic": (1.0, 1, 0),  # q2
        "Spatial Relationship": (0.0, 1, 1),  # q3 failed: 0
        "Causal Reasoning": (1.5, 2, 0),  # q4 0, q6 3
        "Common Sense Reasoning": (2.0, 1, 0),  # q5
        "Future Prediction": (2.0, 1, 0),  # q5
        "Hallucination": (3.0, 1, 0),  # q6
    }
    coarse = _table(tables["coarse"], "accuracy", "n", "failed")
    assert coarse == {
        "CP": (1.0, 1, 0),  # q2
        "FP-S": (pytest.approx(2.0), 3, 0),  # q0 3, q1 2, q7 1: 6 / 3 (q1 once, two dims)
        "FP-C": (0.0, 1, 1),  # q3 failed
        "HL": (3.0, 1, 0),  # q6
        "CSR": (2.0, 1, 0),  # q5
        "TR": (pytest.approx(5 / 3), 3, 0),  # q4 0, q5 2, q6 3
        "Perception": (pytest.approx(10 / 6), 6, 1),  # q0 3, q1 2, q2 1, q3 0, q6 3, q7 1
        "Reasoning": (pytest.approx(5 / 3), 3, 0),  # q4, q5, q6 (q6 is in both halves)
        "Overall": (pytest.approx(1.5), 8, 1),  # 12 / 8
    }  # LR, AR, RR have no questions: left out (VLMEvalKit prints nan)
    valid = {k: v.get("valid") for k, v in tables["coarse"].items()}
    assert valid["Perception"] == pytest.approx(2.0)  # 10 / 5, the failure left out
    assert valid["Overall"] == pytest.approx(12 / 7)
    assert valid["FP-C"] is None  # all failed: no valid mean
    assert valid["TR"] == pytest.approx(5 / 3)


# --- MLVU open-ended ------------------------------------------------------------------


def test_mlvu_open_loads_both_tasks_with_clips_under_prefix(mlvu_open):
    spec, adapter, samples = mlvu_open
    assert [s.category for s in samples.values()] == ["sub_scene"] * 4 + ["summary"] * 3
    first = samples["0"]
    assert first.options == () and first.answer == "She waves at the postman and takes a parcel."
    assert first.video_path == (spec.tsv.parent / "MLVU/video/8_sub_scene/s1.mp4").resolve()
    assert all(s.video_path.is_file() for s in samples.values())
    assert adapter.breakdown_values(samples["5"]) == {"task_type": "summary"}


def test_mlvu_open_prompt_is_vlmevalkits(mlvu_open):
    _, adapter, samples = mlvu_open
    system, user = adapter.messages(samples["4"], timestamps=[0.5])
    assert system.role == "system" and system.text == (
        "Carefully watch this video and pay attention to every detail. Based on your "
        "observations, answer the given questions."
    )
    assert user.role == "user" and user.video
    assert user.text == "Please summarize this video, including its main content."


def test_mlvu_open_summary_judge_sees_the_standard_answer(mlvu_open):
    _, adapter, samples = mlvu_open
    system, user = adapter.judge_messages(samples["4"], "People have a picnic.")
    assert system.role == "system" and user.role == "user"
    assert system.text.startswith(
        "\n##TASK DESCRIPTION:\nYou are required to evaluate the performance of the "
        "respondent in the video summarization task based on the standard answer and the "
        "respondent's answer."
    )
    assert system.text.endswith(
        "{'score_completeness': score_comp, 'score_reliability': score_reli, "
        "'total_score': score_comp + score_reli}\n"
    )
    assert user.text == (
        "Please score the respondent's answer according to the steps in the Instructions. "
        "You must end with a JSON dict to store the scores.\n"
        "Standard Answer: A family prepares a picnic and eats in a park.\n"
        "Respondent's Answer: People have a picnic.\n"
    )


def test_mlvu_open_sub_scene_judge_sees_question_and_scoring_points(mlvu_open):
    _, adapter, samples = mlvu_open
    system, user = adapter.judge_messages(samples["0"], "She waves.")
    assert system.text.startswith(
        "\n##TASK DESCRIPTION:\nYou are required to evaluate a respondent's answer based on "
        "a provided question, some scoring points, and the respondent's answer."
    )
    assert "2. Evaluate RELEVANCE: Assess the relevance of the respondent’s answer" in system.text
    assert user.text == (
        "Please score the respondent's answer according to the steps in the Instructions. "
        "You must end with a JSON dict to store the scores.\n"
        "Question: What does the girl do after she opens the door?\n"
        "Scoring Points: ['waves at the postman', 'takes a parcel']\n"
        "Respondent's Answer: She waves.\n"
    )  # the reference answer is not shown for sub_scene, as in VLMEvalKit


@pytest.mark.parametrize(
    ("index", "reply", "score"),
    [
        ("0", "Rationale: both points.\n{'score_accuracy': 5, 'score_relevance': 4, "
         "'total_score': 9}", 9.0),
        ("0", "{'score_accuracy': 3.67, 'score_relevance': 4, 'total_score': 7.67}", 7.67),
        ("0", '```json\n{"score_accuracy": 2, "score_relevance": 3, "total_score": 5}\n```', 5.0),
        # no `,` after the last key: up to, not including, the last character ("}")
        ("4", "{'score_completeness': 3, 'score_reliability': 4}", 7.0),
        # ... which with text after it does not parse (VLMEvalKit stops with a ValueError)
        ("4", "{'score_completeness': 3, 'score_reliability': 4}\nDone.", None),
        # the number starts two characters past the `:` (VLMEvalKit: ValueError)
        ("4", "{'score_completeness':3, 'score_reliability': 4, 'total_score': 7}", None),
        ("4", "{'score_completeness': 3, 'total_score': 3}", None),  # VLMEvalKit: 3
        ("4", "I cannot evaluate this answer.", None),  # VLMEvalKit: 0
        ("4", "{'score_completeness': 6, 'score_reliability': 5, 'total_score': 11}", None),
        # the summary keys do not score a sub_scene question
        ("0", "{'score_completeness': 3, 'score_reliability': 4, 'total_score': 7}", None),
    ],
)  # fmt: skip
def test_mlvu_open_reads_the_two_scores_and_sums_them(mlvu_open, index, reply, score):
    _, adapter, samples = mlvu_open
    assert adapter.parse_judgement(samples[index], reply) == pytest.approx(score)


# Fixed judge replies by index, and the score each gives; in brackets, int(score).
MLVU_OPEN_REPLIES = {
    "0": "Both points covered.\n{'score_accuracy': 5, 'score_relevance': 4, 'total_score': 9}",
    "1": "{'score_accuracy': 3.67, 'score_relevance': 4, 'total_score': 7.67}",  # 7.67 [7]
    "2": '{"score_accuracy": 2, "score_relevance": 3, "total_score": 5}',  # 5 [5]
    "3": "I cannot score this answer.",  # None [0]
    "4": "{'score_completeness': 3, 'score_reliability': 4, 'total_score': 7}",  # 7 [7]
    "5": "{'score_completeness': 2.5, 'score_reliability': 4, 'total_score': 6.5}",  # 6.5 [6]
    "6": "{'score_completeness': 5, 'score_reliability': 5}",  # 10 [10]
}


def test_mlvu_open_report_is_g_avg_over_truncated_scores(mlvu_open):
    _, adapter, samples = mlvu_open
    scores = {sid: adapter.parse_judgement(samples[sid], r) for sid, r in MLVU_OPEN_REPLIES.items()}
    assert scores == pytest.approx(
        {"0": 9.0, "1": 7.67, "2": 5.0, "3": None, "4": 7.0, "5": 6.5, "6": 10.0}
    )
    # G-Avg: (9 + 7 + 5 + 0 + 7 + 6 + 10) / 7 = 44 / 7, a mean over questions (the mean of
    # the task means would be (21/4 + 23/3) / 2 = 6.458...)
    assert adapter.overall(list(scores.values())) == pytest.approx(44 / 7)
    tables = adapter.breakdown_scores(_scored(samples, scores))
    assert _table(tables["task_type"], "accuracy", "n", "failed") == {
        "sub_scene": (pytest.approx(21 / 4), 4, 1),  # (9 + 7 + 5 + 0) / 4
        "summary": (pytest.approx(23 / 3), 3, 0),  # (7 + 6 + 10) / 3
    }


# --- TempCompass captioning -----------------------------------------------------------


def test_captioning_loads_the_layout_with_clips_at_prefix_video_suffix(captioning):
    spec, adapter, samples = captioning
    assert len(samples) == 8
    first = samples["0"]
    assert first.options == () and first.answer == "B. dunking a basketball"
    assert first.category == "action"
    assert first.video_path == (spec.tsv.parent / "videos" / "2001.mp4").resolve()
    assert all(s.video_path.is_file() for s in samples.values())
    assert adapter.breakdown_values(first) == {
        "dim": "action",
        "task_type": "captioning",
        "dim.task_type": "action. captioning",
    }


def test_captioning_prompt_is_the_question_alone(captioning):
    _, adapter, samples = captioning
    (user,) = adapter.messages(samples["1"], timestamps=[0.5])
    assert user.role == "user" and user.video
    assert user.text == (
        "You will be presented with a video and several pieces of information. One piece of "
        "information is consistent with the video while the others are not. Please identify "
        "the information that consistent with the video and generate a video caption "
        "accordingly.\n"
        "Information A: {'subject': 'man', 'action': 'running'}\n"
        "Information B: {'subject': 'man', 'action': 'swimming'}\n"
        "Information C: {'subject': 'man', 'action': 'cycling'}\n"
        "Generated Caption:"
    )


def test_captioning_judge_answers_the_multi_choice_question_from_the_caption(captioning):
    _, adapter, samples = captioning
    system, user = adapter.judge_messages(samples["0"], "A man dunks a basketball.")
    assert system.role == "system"
    assert system.text == "You are an AI assistant for question answering."
    assert user.text.startswith(
        "\nYou will receive a video description and a multi-choice question. Your task is to "
        "choose the correct answer and briefly explain the reason why you choose the answer."
    )
    assert "Reasoning: [Your reason to obtain the answer]\nAnswer: [Your answer]\n" in user.text
    assert user.text.endswith(
        "Answer: None of the choices are correct\n```\n\n"
        "Video Description:A man dunks a basketball.\n"
        "Multi-Choice Question:\nWhat is the man doing?\nA. dribbling a basketball\n"
        "B. dunking a basketball\nC. passing a basketball\n"
    )


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Reasoning: The caption says he dunks.\nAnswer: B. dunking a basketball", 1.0),
        ("  Answer: B. dunking a basketball\n", 1.0),  # stripped, as VLMEvalKit's client does
        ("B. dunking a basketball", 1.0),  # no Answer line: the whole reply is the answer
        ("Answer:B. dunking", 1.0),  # only the text before ". " is compared
        ("Reasoning: He passes it.\nAnswer: C. passing a basketball", 0.0),
        ("Answer: B", 0.0),  # the letter alone has no "B.": wrong in VLMEvalKit
        ("Answer: B. dunking a basketball or A. dribbling a basketball", 0.0),  # two options
        ("Reasoning: unclear.\nAnswer: None of the choices are correct", 0.0),
        # the last line containing "Answer" wins, a Reasoning line too
        ("Answer: B. dunking a basketball\nReasoning: the Answer is clear", 0.0),
        ("I am not sure what the video shows.", 0.0),  # a reply is a verdict: wrong
        ("", None),  # VLMEvalKit's -1: a failure
        ("   \n", None),
        ("invalid_request_error", None),
    ],
)
def test_captioning_reads_the_judges_answer_against_mc_answer(captioning, reply, verdict):
    _, adapter, samples = captioning
    assert adapter.parse_judgement(samples["0"], reply) == verdict


# Fixed judge replies by index (mc_answer), and the verdict each gives (in brackets).
CAPTIONING_REPLIES = {
    "0": "Reasoning: It says dunking.\nAnswer: B. dunking a basketball",  # [1]
    "1": "Reasoning: The man swims.\nAnswer: B. swimming",  # A. running [0]
    "2": "A. from left to right",  # [1]
    "3": "Reasoning: slow.\nAnswer: B. slow motion",  # [1]
    "4": "",  # [None]
    "5": "Reasoning: no direction given.\nAnswer: None of the choices are correct",  # [0]
    "6": "Answer: D. drinking tea",  # [1]
    "7": "Answer: A",  # A. up [0: no "A."]
}


def test_captioning_report_is_accuracy_per_dim_and_overall(captioning):
    _, adapter, samples = captioning
    scores = {
        sid: adapter.parse_judgement(samples[sid], r) for sid, r in CAPTIONING_REPLIES.items()
    }
    assert scores == {
        "0": 1.0,
        "1": 0.0,
        "2": 1.0,
        "3": 1.0,
        "4": None,
        "5": 0.0,
        "6": 1.0,
        "7": 0.0,
    }
    assert adapter.overall(list(scores.values())) == pytest.approx(0.5)  # 4 right of 8
    tables = adapter.breakdown_scores(_scored(samples, scores))
    assert _table(tables["dim"], "accuracy", "n", "failed") == {
        "action": (pytest.approx(2 / 3), 3, 0),  # q0 1, q1 0, q6 1
        "direction": (pytest.approx(1 / 3), 3, 0),  # q2 1, q5 0, q7 0
        "speed": (0.5, 2, 1),  # q3 1, q4 failed: 0
    }
    assert _table(tables["task_type"], "accuracy", "n") == {"captioning": (0.5, 8)}
    assert _table(tables["dim.task_type"], "n") == {
        "action. captioning": (3,),
        "direction. captioning": (3,),
        "speed. captioning": (2,),
    }


# --- load errors name the file and the line -------------------------------------------


def _broken(tmp_path, name, rows, columns):
    tsv = write_tsv(tmp_path / f"{name}.tsv", rows, columns)
    return DatasetSpec(tsv=tsv, benchmark=name)


def _mmbench_rows(index, **change):
    rows = mmbench_video_rows()
    rows[index].update(change)
    return rows


def _mlvu_rows(index, **change):
    rows = mlvu_open_rows()
    rows[index].update(change)
    return rows


def _captioning_rows(index, **change):
    rows = tempcompass_captioning_rows()
    rows[index].update(change)
    return rows


@pytest.mark.parametrize(
    ("name", "rows", "line", "message"),
    [
        ("mmbench_video", _mmbench_rows(2, dimensions="['Counting', 'Juggling']"), 4,
         "unknown dimension(s) 'Juggling'"),
        ("mmbench_video", _mmbench_rows(0, dimensions="[]"), 2, "must be a non-empty list"),
        ("mmbench_video", _mmbench_rows(5, dimensions="Counting"), 7,
         "dimensions is not a Python list literal"),
        ("mmbench_video", _mmbench_rows(1, answer=""), 3, "empty answer"),
        ("mlvu_open", _mlvu_rows(3, task_type="plotQA"), 5,
         "task_type 'plotQA' (a multiple-choice task: benchmark mlvu)"),
        ("mlvu_open", _mlvu_rows(1, scoring_points=""), 3, "without scoring_points"),
        ("tempcompass_captioning", _captioning_rows(6, task_type="multi-choice"), 8,
         "task_type 'multi-choice' (benchmark tempcompass reads it)"),
        ("tempcompass_captioning", _captioning_rows(2, mc_answer=""), 4, "empty mc_answer"),
        ("tempcompass_captioning", _captioning_rows(0, dim=""), 2, "empty dim"),
    ],
)  # fmt: skip
def test_a_malformed_row_is_a_load_error_naming_file_and_line(tmp_path, name, rows, line, message):
    columns = {
        "mmbench_video": MMBENCH_VIDEO_COLUMNS,
        "mlvu_open": tuple(rows[0]),
        "tempcompass_captioning": TEMPCOMPASS_CAPTIONING_COLUMNS,
    }[name]
    spec = _broken(tmp_path, name, rows, columns)
    with pytest.raises(DatasetError) as info:
        get_benchmark(name).load(spec)
    # `line` counts table rows (header = 1), as the shared TSV reader does
    assert f"{spec.tsv} line {line} " in str(info.value)
    assert message in str(info.value)


def test_a_missing_column_is_named(tmp_path):
    rows = [
        {k: v for k, v in r.items() if k != "mc_question"} for r in tempcompass_captioning_rows()
    ]
    columns = tuple(c for c in TEMPCOMPASS_CAPTIONING_COLUMNS if c != "mc_question")
    spec = _broken(tmp_path, "tempcompass_captioning", rows, columns)
    with pytest.raises(DatasetError) as info:
        get_benchmark("tempcompass_captioning").load(spec)
    assert str(info.value) == f"{spec.tsv}: missing column(s) mc_question"
