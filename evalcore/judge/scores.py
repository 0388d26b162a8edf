"""Judged scoring for open-ended benchmarks (MMBench-Video, MLVU open-ended, TempCompass
captioning): each answer goes with its question and reference to the `judge:` endpoint,
with the benchmark's own judge prompt (VLMEvalKit's), through the response cache and the
Dask fan-out; the score the benchmark reads from the reply is a durable judgement.

A judgement counts for an answer while its key is current: the judge's identity (its
endpoint, model and sampling), the benchmark's judge-prompt version, and the answer's
own answer key and text. Re-scoring a finished run costs no call (the log); a second
model with the same answer costs none either (the response cache is keyed by content).
A reply the benchmark cannot read a score from is a typed failure (`UnusableReply`),
never cached and never a 0: the answer stays unjudged and is asked again next time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from pydantic import SecretStr

from evalcore.api.answers import answer_jobs, cluster_runner
from evalcore.api.cache import ResponseCache, response_key
from evalcore.api.client import ChatJob, ChatOutcome
from evalcore.api.endpoint import EndpointSpec
from evalcore.cell import Cell, CellTrials
from evalcore.config import ApiSettings
from evalcore.hashing import stable_hash
from evalcore.predictions import Journal, iter_records
from evalcore.scoring import Unjudged
from evalcore.workspace import Workspace


@dataclass(frozen=True)
class Judgement:
    """The judge's verdict on one answer: a score, or a typed failure (never a score)."""

    sample_id: str
    key: str  # judge identity + judge prompt version + the answer's key and text
    status: str  # ok | failed
    score: float | None = None
    reply: str | None = None
    error_type: str | None = None
    error: str | None = None
    attempts: int = 1
    finished_at: float = field(default_factory=time.time)
    prompt_tokens: int = 0  # the judge's cost (0 when the reply came from the cache)
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


def judgement_key(identity: str, version: str, answer_key: str, prediction: str) -> str:
    return stable_hash([identity, version, answer_key, prediction], length=24)


def read_judgements(cell: Cell, ws: Workspace, identity: str) -> dict[str, Judgement]:
    """Sample id -> the latest judgement by this judge (any key; callers check it)."""
    path = cell.judgements_dir(ws)
    out: dict[str, Judgement] = {}
    for log in sorted(path.glob(f"judge-{identity}*.jsonl")) if path.is_dir() else []:
        for rec in iter_records(log, Judgement):
            current = out.get(rec.sample_id)
            # the latest wins, but a failure never hides a success on the same answer
            if current is None or rec.ok or current.key != rec.key or not current.ok:
                out[rec.sample_id] = rec
    return out


@dataclass
class JudgeStageSummary:
    """What the judge stage did for one model x dataset (small: a task returns it)."""

    answers: int = 0  # answers to score
    judged_before: int = 0  # already judged under the current key (the log)
    judged: int = 0  # judged now (calls or response-cache hits)
    failed: int = 0  # unjudged: typed failures, retried next time
    requests: int = 0
    cache_hits: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0  # spent now (a cache hit costs none)
    completion_tokens: int = 0


def judge_answers(
    trials: CellTrials,
    ws: Workspace,
    spec: EndpointSpec,
    api: ApiSettings,
    api_key: SecretStr | None,
    client=None,
    key_resolver: str | None = None,
) -> JudgeStageSummary:
    """Judge every answer of a judged benchmark's cell that has no current judgement."""
    benchmark = trials.benchmark
    by_id = {s.sample_id: s for s in trials.samples}
    identity = spec.identity
    context = stable_hash([identity, benchmark.judge_version])
    summary = JudgeStageSummary()
    with ResponseCache(api.cache_path or ws.response_cache_path) as cache:
        for current in trials.current_records(ws).values():
            cell = current.cell
            answers = {sid: rec for sid, rec in current.records.items() if rec.ok}
            done = read_judgements(cell, ws, identity)
            jobs, wanted = [], {}
            for sid, rec in answers.items():
                summary.answers += 1
                key = judgement_key(
                    identity, benchmark.judge_version, rec.answer_key, rec.prediction or ""
                )
                prior = done.get(sid)
                if prior is not None and prior.key == key and prior.ok:
                    summary.judged_before += 1
                    continue
                messages = benchmark.judge_messages(by_id[sid], rec.prediction or "")
                system = next((m.text for m in messages if m.role == "system"), None)
                prompt = "\n".join(m.text for m in messages if m.role != "system")
                cache_key = response_key(context, f"{system or ''}\n{prompt}", [])
                jobs.append(ChatJob(sid, prompt, cache_key, system=system))
                tries = prior.attempts if prior is not None and prior.key == key else 0
                wanted[sid] = (key, tries)
            if not jobs:
                continue

            def usable(job: ChatJob, text: str) -> bool:
                return benchmark.parse_judgement(by_id[job.job_id], text) is not None

            runner = cluster_runner(api, spec, api_key, key_resolver, client)

            cell.judgements_dir(ws).mkdir(parents=True, exist_ok=True)
            with Journal(cell.judgements_dir(ws), f"judge-{identity}") as log:

                def record(o: ChatOutcome, wanted=wanted) -> None:
                    key, tries = wanted[o.job_id]
                    attempts = tries + max(o.attempts, 1)
                    if o.ok:
                        score = benchmark.parse_judgement(by_id[o.job_id], o.text or "")
                        rec = Judgement(
                            o.job_id,
                            key,
                            "ok",
                            score,
                            o.text,
                            attempts=attempts,
                            prompt_tokens=o.prompt_tokens,
                            completion_tokens=o.completion_tokens,
                        )
                        summary.judged += 1
                        summary.prompt_tokens += o.prompt_tokens
                        summary.completion_tokens += o.completion_tokens
                    else:
                        rec = Judgement(
                            o.job_id, key, "failed", None, None, o.error_type, o.error, attempts
                        )
                        summary.failed += 1
                    log.append(rec)

                stats = answer_jobs(jobs, spec, cache, runner, record, usable=usable)
            summary.requests += stats.requests
            summary.cache_hits += stats.cache_hits
            for k, v in stats.failures.items():
                summary.failures[k] = summary.failures.get(k, 0) + v
    return summary


def current_scores(
    trials: CellTrials, ws: Workspace, spec: EndpointSpec
) -> dict[int, dict[str, float | Unjudged]]:
    """Per trial, sample id -> the judge's score of its current answer, or why it has
    none: the judge failed on it (its latest verdict under the answer's key is a typed
    failure), or it has no verdict under that key yet."""
    version = trials.benchmark.judge_version
    identity = spec.identity
    out: dict[int, dict[str, float | Unjudged]] = {}
    for trial, current in trials.current_records(ws).items():
        done = read_judgements(current.cell, ws, identity)
        scores: dict[str, float | Unjudged] = out.setdefault(trial, {})
        for sid, rec in current.records.items():
            if not rec.ok:
                continue
            key = judgement_key(identity, version, rec.answer_key, rec.prediction or "")
            judged = done.get(sid)
            if judged is None or judged.key != key:
                scores[sid] = Unjudged.NOT_JUDGED
            elif judged.ok and judged.score is not None:
                scores[sid] = judged.score
            else:
                scores[sid] = Unjudged.JUDGE_FAILED
    return out
