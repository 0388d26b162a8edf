"""API fan-out throughput against a loopback OpenAI-compatible server with fixed latency.

Side by side in one run, at the same concurrency:
  ideal      concurrency / latency requests a second (640 req/s at 64 x 100 ms)
  ours       the Dask fan-out (LocalCluster, batched tasks, cluster-wide gate) with the
             response cache and a Journal append per answer, as `evalcore run` does
  bare       one process, one aiohttp session and a semaphore, nothing else: what the
             machine allows at that moment (the others share its CPU)
  vlmevalkit VLMEvalKit's pattern: a ThreadPoolExecutor of `requests` calls, the whole
             results dict pickled to disk again after every answer (track_progress_rich)
then a second pass of ours over the same requests (all answered by the response cache).

    .venv/bin/python bench/api.py                 # 2,000 then 10,000 requests
    .venv/bin/python bench/api.py --requests 500  # a quick look
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER = REPO / "tests" / "doubles" / "openai_server.py"


def start_server(latency: float, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def prompts(n: int, tag: str) -> list[str]:
    return [f"Question {tag}-{i}: which option? A. yes B. no" for i in range(n)]


def run_ours(client, url: str, texts: list[str], concurrency: int, work: Path) -> dict:
    from evalcore.api import ChatJob, EndpointSpec, ResponseCache, answer_jobs, dask_runner
    from evalcore.api.cache import response_key
    from evalcore.predictions import Journal, PredictionRecord

    spec = EndpointSpec(base_url=url, model="bench-model", max_in_flight=concurrency, timeout=30)
    context = f"bench:{url}:{spec.model}"  # one endpoint, one model, default generation
    jobs = [ChatJob(str(i), t, response_key(context, t, [])) for i, t in enumerate(texts)]
    result = {}
    with ResponseCache(work / "cache.sqlite3") as cache:
        for label in ("ours", "ours, cached"):
            with Journal(work, label.replace(", ", "-")) as log:

                def record(o) -> None:
                    log.append(PredictionRecord(o.job_id, "ok" if o.ok else "failed", o.text))

                started = time.perf_counter()
                stats = answer_jobs(jobs, spec, cache, dask_runner(client, spec, None, 32), record)
                result[label] = (time.perf_counter() - started, stats)
    return result


def run_floor(url: str, texts: list[str], concurrency: int) -> float:
    """What this machine allows right now: one process, one aiohttp session, a semaphore,
    nothing else (no cluster, cache or log). Separates machine load from our overhead."""
    import asyncio

    import aiohttp

    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(text: str) -> None:
                body = {"model": "bench-model", "messages": [{"role": "user", "content": text}]}
                async with gate, session.post(f"{url}/chat/completions", json=body) as resp:
                    await resp.json()

            await asyncio.gather(*(one(t) for t in texts))

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def call_requests(session, url: str, text: str) -> str:
    body = {"model": "bench-model", "messages": [{"role": "user", "content": text}]}
    resp = session.post(f"{url}/chat/completions", json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()["choices"][0]["message"]["content"]


def run_vlmevalkit(url: str, texts: list[str], concurrency: int, work: Path) -> float:
    """ThreadPoolExecutor + `requests` + whole-dict pickle per result, as VLMEvalKit does."""
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    save = work / "vlmevalkit.pkl"
    results: dict[str, str] = {}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(call_requests, session, url, t): str(i) for i, t in enumerate(texts)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            with open(save, "wb") as f:  # the whole checkpoint, again, after every answer
                pickle.dump(results, f)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--no-peer", action="store_true", help="skip VLMEvalKit's pattern (slow at 512 threads)"
    )
    args = parser.parse_args(argv)

    from evalcore.api import ClusterSpec, close_dask_clients, dask_client

    server, url = start_server(args.latency)
    ideal_rate = args.concurrency / args.latency
    rows = []
    try:
        t0 = time.perf_counter()
        client = dask_client(ClusterSpec(workers=args.workers, task_slots=4, processes=True))
        client.wait_for_workers(args.workers)
        startup = time.perf_counter() - t0
        print(f"LocalCluster ({args.workers} worker processes) started in {startup:.1f} s")
        for n in args.requests:
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                ideal = n / ideal_rate
                bare = run_floor(url, prompts(n, f"bare{n}"), args.concurrency)
                ours = run_ours(client, url, prompts(n, f"ours{n}"), args.concurrency, work)
                vlm = (
                    float("nan")
                    if args.no_peer
                    else run_vlmevalkit(url, prompts(n, f"vlm{n}"), args.concurrency, work)
                )
            (t_ours, s_ours), (t_hit, s_hit) = ours["ours"], ours["ours, cached"]
            assert s_ours.answered == n and s_hit.cache_hits == n and s_hit.requests == 0
            rows.append((n, ideal, bare, t_ours, vlm, t_hit, s_ours.dask_tasks))
            print(
                f"{n} requests: ideal {ideal:.2f} s | bare {bare:.2f} s | ours {t_ours:.2f} s "
                f"({ideal / t_ours:.2f} of ideal) | vlmevalkit {vlm:.2f} s "
                f"({ideal / vlm:.2f} of ideal) | ours cached {t_hit:.2f} s",
                flush=True,
            )
    finally:
        close_dask_clients()
        server.terminate()
        server.wait(10)

    load = os.getloadavg()[0]
    print(
        f"\nconcurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms, "
        f"ideal {ideal_rate:.0f} req/s; load average {load:.1f} on {os.cpu_count()} cores\n"
    )
    print(
        "| requests | ideal | bare aiohttp (/ ideal) | ours (/ ideal) | VLMEvalKit pattern "
        "(/ ideal) | ours vs VLMEvalKit | re-run from cache | Dask tasks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n, ideal, bare, t_ours, vlm, t_hit, tasks in rows:
        print(
            f"| {n:,} | {ideal:.2f} s | {bare:.2f} s ({ideal / bare:.2f}) "
            f"| {t_ours:.2f} s ({ideal / t_ours:.2f}) | {vlm:.2f} s ({ideal / vlm:.2f}) "
            f"| {vlm / t_ours:.1f}x faster | {t_hit:.2f} s | {tasks} |"
        )
    return 0


if __name__ == "__main__":  # LocalCluster starts worker processes: keep this guard
    sys.exit(main())
