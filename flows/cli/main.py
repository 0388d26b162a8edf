"""`evalcore`: the command line. Lives in the top layer because it starts Prefect flows."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from evalcore.benchmarks import load_samples


def _quiet_prefect_defaults() -> None:
    # Offline machines: no telemetry lookups. Set before prefect is imported.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _run_flow(args: argparse.Namespace, flow_call):
    """Run a flow on the API `main` chose (flows.cli.prefect_api), without the ~1 s
    heartbeat-thread wait at exit (Prefect joins its heartbeat thread, which
    sleeps a full period)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    _FULL_DISK_CONSOLE.watch()
    with args.api.use(), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow_call()


def _print_leaderboard(rows: list[dict]) -> None:
    from evalcore.reports import leaderboard_markdown

    print("\n" + leaderboard_markdown(rows))


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import demo_flow

    outcome = _run_flow(
        args,
        lambda: demo_flow(
            videos=args.videos,
            seed=args.seed,
            data_dir=args.data_dir,
            output_dir=args.output_dir,
            work_dir=args.work_dir,
        ),
    )
    _print_leaderboard(outcome["leaderboard"])
    print(f"Reports in {args.output_dir}/: leaderboard.md, leaderboard.xlsx, {{model}}/*.xlsx")
    return 0


def _load_checked(paths: list[Path]):
    """Read and check configs, where they put files and every dataset they name, before
    any work: a user's mistake is one message naming file, line and field (exit 2), never
    a traceback."""
    from evalcore.config import ConfigError, load_config
    from evalcore.dataset import DatasetError
    from evalcore.storage import check_storage

    configs = []
    try:
        for path in paths:
            config = load_config(path)
            _check_key_variables(config, path)
            check_storage(config)
            for dataset in config.datasets:
                load_samples(dataset)
            configs.append(config)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return configs


def _check_key_variables(config, path: Path) -> None:
    """Every `api_key_env` the config names is set here: the flow resolves the key in this
    process too, so a missing one is the user's to fix before any work (a Secret block
    is looked up on the Prefect server, once the run starts)."""
    from evalcore.api.endpoint import EndpointSpec  # (no HTTP client: the run path stays light)
    from evalcore.config import ConfigError
    from evalcore.yaml_lines import yaml_line

    named = [  # the params were validated with the config: this only reads them
        (("models", n, "params", "api_key_env"), EndpointSpec(**m.params).api_key_env)
        for n, m in enumerate(config.models)
        if m.kind == "openai-compatible"
    ]
    if config.judge is not None:
        named.append((("judge", "api_key_env"), config.judge.api_key_env))
    missing = [(loc, name) for loc, name in named if name and not os.environ.get(name)]
    if not missing:
        return
    text = Path(path).read_text(encoding="utf-8")
    raise ConfigError(
        "\n".join(
            f"{path}{f' line {line}' if (line := yaml_line(text, loc)) else ''}: "
            f"{'.'.join(map(str, loc))}: the environment variable {name} is not set or "
            "empty (export the key there; it never goes in the config)"
            for loc, name in missing
        )
    )


def cmd_run(args: argparse.Namespace) -> int:
    configs = _load_checked([args.config])
    if configs is None:
        return 2
    config = configs[0]
    args.write_dirs = (config.work_dir, config.output_dir)  # named if the disk fills
    from flows.cli.head_start import begin

    heads = begin(config)  # decoding needs no Prefect: it starts while the server boots
    from flows.cli.prefect_api import ServerStartFailed
    from flows.eval import eval_flow

    def checked_run():
        _check_server_side(config)
        return eval_flow(config)

    try:
        outcome = _run_flow(args, checked_run)
    except ServerStartFailed:
        _stop_head_starts(heads)
        raise
    except _ServerSideProblem as problem:
        _stop_head_starts(heads)
        print(f"error: {problem}", file=sys.stderr)
        return 2
    _print_leaderboard(outcome["leaderboard"])
    return 0


class _ServerSideProblem(Exception):
    """The config names what the Prefect server lacks; the message is for the user."""


def _check_server_side(config) -> None:
    """What the config names on the Prefect server and the server lacks (a results block,
    the `eval/shard` deployment) is one line for the user before the flow starts (the
    flow checks again, for runs started from a deployment)."""
    from evalcore.config import ConfigError
    from tasks.inference import check_results_storage
    from tasks.placement import check_placement

    try:
        check_results_storage(config)
        check_placement(config)
    except ConfigError as exc:
        raise _ServerSideProblem(str(exc)) from None


class _FlowNotStarted(Exception):
    """Ends an extraction begun for a flow that will not run (its journal says so)."""


def _stop_head_starts(heads, wait_s: float = 30.0) -> None:
    """Stop the extractions begun before a flow that did not start: each ends at its
    next clip, as an extraction whose caller fails does (that clip recorded, the frame
    index's end line `aborted`, the decoder processes stopped). One still reading its
    videos' fingerprints after `wait_s` ends with the process, as a killed run's does."""
    from concurrent.futures import wait

    def stop() -> None:
        raise _FlowNotStarted("the Prefect server did not start")

    for head in heads:
        head.follow(stop)
    wait([head.result for head in heads], timeout=wait_s)


def cmd_gc(args: argparse.Namespace) -> int:
    from evalcore.gc import collect_garbage

    configs = _load_checked(args.configs)
    if configs is None:
        return 2
    try:
        report = collect_garbage(configs, dry_run=args.dry_run)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(("would have " if args.dry_run else "") + report.describe())
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    import os

    from flows.smoke import run_smoke

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a tiny local checkpoint: never the hub
    outcome = _run_flow(
        args, lambda: run_smoke(args.arch, args.dir, args.videos, args.launcher, args.gpus)
    )
    _print_leaderboard(outcome["leaderboard"])
    (row,) = outcome["leaderboard"]
    if row["failed"]:
        print(f"smoke {args.arch}: {row['failed']} of {row['n']} samples failed", file=sys.stderr)
        return 1
    where = f"cuda {','.join(map(str, args.gpus))}" if args.gpus else "cpu"
    print(f"smoke {args.arch}: ok, {row['n']} samples answered ({args.launcher}, {where})")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    import json

    from evalcore.reports.explain import explain_markdown, read_card
    from evalcore.reports.rule_sets import rules_markdown

    if args.rules or args.sensitivity:  # computed per report, from its stored answers
        from evalcore.reports.sensitivity import sensitivity_markdown

        render = sensitivity_markdown if args.sensitivity else rules_markdown
        try:
            texts = [render(json.loads(p.read_text(encoding="utf-8"))) for p in args.reports]
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("\n".join(texts), end="")
        return 0
    if len(args.reports) > 2:
        print("error: explain takes one cell report, or two to compare", file=sys.stderr)
        return 2
    try:
        cards = [read_card(path) for path in args.reports]
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(explain_markdown(cards), end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from evalcore.reports.compare import (
        CompareError,
        compare_sides,
        comparison_markdown,
        default_xlsx_name,
        load_side,
        write_comparison_xlsx,
    )

    try:
        comparison = compare_sides(load_side(args.a, args.cell), load_side(args.b, args.cell))
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    xlsx = args.xlsx or Path(default_xlsx_name(comparison))
    write_comparison_xlsx(comparison, xlsx)
    print(comparison_markdown(comparison, args.limit), end="")
    print(f"\nEvery flipped question: {xlsx}")
    return 0


def cmd_benchmarks(args: argparse.Namespace) -> int:
    from evalcore.benchmarks import benchmark_names, get_benchmark

    for name in benchmark_names():
        bench = get_benchmark(name)
        breakdowns = ", ".join(bench.breakdowns) or "none"
        print(f"{name}  (prompt {bench.template}, rule {bench.rule}; by {breakdowns})")
        print(f"    {bench.layout}\n")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from evalcore.dataset.synthetic import generate_benchmark

    print(generate_benchmark(args.out, n_videos=args.videos, seed=args.seed))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.cli.serve import ServeError, ServeOptions, serve

    opts = ServeOptions(
        project_dir=args.project_dir,
        home=args.home,
        host=args.host,
        port=args.port,
        videos=args.videos,
        seed=args.seed,
        gpu_slots=args.gpu_slots,
        worker_poll_seconds=args.worker_poll_seconds,
    )
    try:
        serve(opts)
    except ServeError as exc:
        print(f"error: {exc}\n(`evalcore stop` stops what was started)", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Become this host's worker of a pool (exec: signals reach the worker itself)."""
    from flows.cli.serve import worker_command

    argv, env = worker_command(args.pool, args.limit, args.name)
    os.execve(argv[0], argv, env)
    return 0  # not reached


def cmd_stop(args: argparse.Namespace) -> int:
    from flows.cli.serve import stop

    stop(args.home or args.project_dir / ".prefect")
    return 0


def _cache_path(args: argparse.Namespace) -> Path:
    if args.path:
        return args.path
    if args.config:
        from evalcore.config import load_config
        from evalcore.workspace import Workspace

        config = load_config(args.config)
        return config.api.cache_path or Workspace.of(config).response_cache_path
    from evalcore.workspace import Workspace

    return Workspace(args.work_dir, Path("outputs")).response_cache_path


def cmd_cache(args: argparse.Namespace) -> int:
    from evalcore.api.cache import ResponseCache, describe_stats
    from evalcore.config import ConfigError

    if args.action == "verify":
        return _verify_frame_cache(args)
    if args.repair:
        print("error: --repair goes with `cache verify` (the frame cache)", file=sys.stderr)
        return 2
    try:
        path = _cache_path(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not path.is_file():
        print(f"no response cache at {path}")
        return 0
    with ResponseCache(path) as cache:
        if args.action == "stats":
            print(describe_stats(cache.stats()))
        else:
            removed = cache.clear(model=args.model)
            print(f"removed {removed} cached responses from {path}")
    return 0


def _verify_frame_cache(args: argparse.Namespace) -> int:
    """`cache verify [--repair]`: the frame cache under the work dir (`work/frames`), not
    the response cache. Exit 1 while a damaged entry is left in it."""
    from evalcore.config import ConfigError, load_config
    from evalcore.frames import FrameCache, verify_frame_cache
    from evalcore.workspace import Workspace

    if args.path:
        print(
            "error: `cache verify` checks a work dir's frame cache: --work-dir or --config",
            file=sys.stderr,
        )
        return 2
    ws = Workspace(args.work_dir, Path("outputs"))
    if args.config:
        try:
            ws = Workspace.of(load_config(args.config))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if not ws.frame_cache_dir.is_dir():
        print(f"no frame cache at {ws.frame_cache_dir}")
        return 0
    cache = FrameCache(ws.frame_cache_dir, ws.fingerprint_memo_path)
    report = verify_frame_cache(cache, repair=args.repair, index_dir=ws.frame_index_dir)
    print(report.describe())
    if report.damaged and not args.repair:
        print("`evalcore cache verify --repair` removes them; the next run extracts them again")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    from flows.cli.serve import ServeOptions

    parser = argparse.ArgumentParser(prog="evalcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the synthetic benchmark and evaluate it")
    demo.add_argument("--videos", type=int, default=60)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--data-dir", type=Path, default=Path("data/synthetic"))
    demo.add_argument("--output-dir", type=Path, default=Path("outputs"))
    demo.add_argument("--work-dir", type=Path, default=Path("work"))
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run the eval flow on a YAML config (EvalConfig)")
    run.add_argument("config", type=Path)
    run.set_defaults(func=cmd_run)

    gc = sub.add_parser(
        "gc", help="remove records and frames that none of these configs references"
    )
    gc.add_argument("configs", type=Path, nargs="+", help="every config that uses the work dir")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be freed")
    gc.set_defaults(func=cmd_gc)

    from flows.smoke import SMOKE_FRAMES

    smoke = sub.add_parser(
        "smoke", help="a tiny random-weight checkpoint of an architecture through the flow"
    )
    smoke.add_argument("--arch", required=True, choices=sorted(SMOKE_FRAMES))
    smoke.add_argument("--videos", type=int, default=4)
    smoke.add_argument("--launcher", choices=["inline", "torchrun"], default="inline")
    smoke.add_argument("--dir", type=Path, default=None, help="keep everything here")
    smoke.add_argument(
        "--gpus", type=int, nargs="+", default=[], help="CUDA device ids (bfloat16); none: CPU"
    )
    smoke.set_defaults(func=cmd_smoke)

    explain = sub.add_parser(
        "explain", help="a cell's reproducibility card; with two, what differs between them"
    )
    explain.add_argument(
        "reports", type=Path, nargs="+", help="outputs/{model}/{model}_{dataset}.json (1 or 2)"
    )
    explain.add_argument(
        "--rules",
        action="store_true",
        help="the headline under each answer rule set (evalcore, vlmevalkit, lmms-eval) "
        "and every answer they read apart",
    )
    explain.add_argument(
        "--sensitivity",
        action="store_true",
        help="how far each protocol choice moves the score: the answer rule computed from "
        "the stored answers; frames, resolution, time input and prompt named with each "
        "reference's setting (they need a re-run)",
    )
    explain.set_defaults(func=cmd_explain)

    compare = sub.add_parser(
        "compare",
        help="two cells on the same questions: the difference with its interval and "
        "p-value (clustered by video), and every question that flipped",
    )
    for side in ("a", "b"):
        compare.add_argument(
            side,
            type=Path,
            help="a cell report outputs/{model}/{model}_{dataset}.json, or a snapshot "
            "outputs/history/leaderboard-*.json (B - A is reported)",
        )
    compare.add_argument("--cell", help="model/dataset: the cell to take from a snapshot")
    compare.add_argument(
        "--xlsx", type=Path, help="default: compare_{A}_vs_{B}_{dataset}.xlsx in this folder"
    )
    compare.add_argument(
        "--limit", type=int, default=50, help="flips listed per direction (the xlsx has all)"
    )
    compare.set_defaults(func=cmd_compare)

    benchmarks = sub.add_parser("benchmarks", help="the benchmark adapters and their files")
    benchmarks.set_defaults(func=cmd_benchmarks)

    synth = sub.add_parser("synth", help="only generate a synthetic benchmark")
    synth.add_argument("--out", type=Path, default=Path("data/synthetic"))
    synth.add_argument("--videos", type=int, default=60)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synth)

    serve = sub.add_parser(
        "serve", help="start a local Prefect server, deploy, start a worker (docs/operations.md)"
    )
    serve.add_argument("--port", type=int, default=4200)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--videos", type=int, default=60, help="demo benchmark size")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument(
        "--gpu-slots",
        type=int,
        default=None,
        help="torchrun shards at once across runs (default: one per device group here)",
    )
    serve.add_argument(
        "--worker-poll-seconds",
        type=float,
        default=ServeOptions.worker_poll_seconds,
        help="how often the worker asks for scheduled runs (default: %(default)s)",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="run this host's worker of a pool, e.g. `--pool gpu --limit 8` on a GPU host "
        "(docs/cluster.md); PREFECT_API_URL names the server",
    )
    worker.add_argument("--pool", default="gpu", help="default: gpu (shard runs)")
    worker.add_argument(
        "--limit", type=int, default=None, help="flow runs at once: the host's device groups"
    )
    worker.add_argument("--name", default=None, help="default: {pool}-{hostname}")
    worker.set_defaults(func=cmd_worker)

    stop = sub.add_parser("stop", help="stop the worker, then the server, that `serve` started")
    stop.set_defaults(func=cmd_stop)

    cache = sub.add_parser(
        "cache",
        help="the API response cache (`stats`, `clear`); the frame cache (`verify [--repair]`)",
    )
    cache.add_argument(
        "action",
        choices=["stats", "clear", "verify"],
        help="stats, clear: the API response cache; verify: check every frame cache entry "
        "(work/frames) against its checksums, exit 1 if one is damaged",
    )
    where = cache.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, help="use this run config's cache (or work dir)")
    where.add_argument("--path", type=Path, help="the response cache's SQLite file")
    where.add_argument("--work-dir", type=Path, default=Path("work"), help="default: work")
    cache.add_argument("--model", help="clear: only the answers of this endpoint model id")
    cache.add_argument(
        "--repair",
        action="store_true",
        help="verify: remove the damaged frame entries (the next run extracts them again)",
    )
    cache.set_defaults(func=cmd_cache)

    for command in (serve, stop):
        command.add_argument(
            "--project-dir", type=Path, default=Path("."), help="where flow runs work"
        )
        command.add_argument("--home", type=Path, default=None, help="PREFECT_HOME")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line. Called as the program (`argv` None), a run ends the process
    itself once done (`_exit_now`); called with `argv`, it returns like any function."""
    _quiet_prefect_defaults()
    args = build_parser().parse_args(argv)
    if args.command not in ("run", "demo", "smoke"):
        return _command(args)
    from flows.cli import reaper
    from flows.cli.prefect_api import ApiUnreachable, ServerStartFailed, choose_api

    reaper.install()  # first: a kill -9 leaves no server behind
    args.api = None
    try:
        args.api = choose_api(Path.cwd())  # a temporary server starts booting now, if needed
        code = _command(args)
    except ApiUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except ServerStartFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    finally:
        if args.api is not None:
            args.api.close()
    if argv is None:
        _exit_now(code)
    return code


def _command(args: argparse.Namespace) -> int:
    """Run the command; a full disk, wherever it surfaces (in the error, its causes, or
    a failed task's error that Prefect logged before its flow failed), is one line
    naming the path and what to free, exit 1."""
    try:
        return args.func(args)
    except Exception as exc:
        full = full_disk_error(exc) or _FULL_DISK_CONSOLE.seen
        if full is not None:
            print(f"error: {describe_full_disk(full, args)}", file=sys.stderr)
            return 1
        from flows.eval import UnitsFailed

        if not isinstance(exc, UnitsFailed):
            raise
        # the run went on without them and published the rest; their tracebacks are in
        # the log above and in the UI
        print(
            f"error: {exc}. Everything else was scored and published; run again (or "
            "Retry the flow run) to recompute only these.",
            file=sys.stderr,
        )
        return 1


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def full_disk_error(exc: BaseException) -> BaseException | None:
    """The out-of-space error (ENOSPC, EDQUOT, SQLite's "database or disk is full") in
    `exc`, its causes and contexts and the members of exception groups; None if none."""
    import sqlite3

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return current
        if getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return current
        todo += [current.__cause__, current.__context__]
        todo += getattr(current, "exceptions", ())  # an exception group's members
    return None


def describe_full_disk(error: BaseException, args: argparse.Namespace) -> str:
    """`no space left on device writing PATH: ...`: the file the error names, else the
    run's folder whose filesystem has the least space left; and what can be freed."""
    dirs = [Path(d) for d in getattr(args, "write_dirs", ()) or ()]
    if not dirs and getattr(args, "work_dir", None) is not None:
        dirs = [args.work_dir, getattr(args, "output_dir", None) or Path("outputs")]
    path = getattr(error, "filename", None)
    if path is not None:
        where = f" writing {path}"
    elif dirs:
        free = {d: _free_bytes(d) for d in dirs}
        fullest = [str(d) for d in dirs if free[d] == min(free.values())]  # one filesystem's
        where = f" writing under {' or '.join(fullest)}"
    else:
        where = ""
    what = (
        "out of disk quota"
        if isinstance(error, OSError) and error.errno == errno.EDQUOT
        else "no space left on device"
    )
    frees = []
    if getattr(args, "command", None) == "run":
        frees.append(f"`evalcore gc {args.config}` frees frames and records no config uses")
    if dirs:
        frees.append(f"{dirs[0] / 'frames'} may be deleted whole: its frames are decoded again")
    hint = f" ({'; '.join(frees)})" if frees else ""
    return (
        f"{what}{where}: free space on that filesystem{hint} and run again; finished "
        "answers are kept"
    )


def _free_bytes(path: Path) -> int:
    """Bytes free to this user on `path`'s filesystem (its nearest existing parent's)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        stat = os.statvfs(path)
    except OSError:
        return 0
    return stat.f_bavail * stat.f_frsize


class _FullDiskConsole(logging.Filter):
    """On Prefect's console handler: notes the first full disk among the errors Prefect
    logs during a flow (a failed task's, which the eval flow re-raises only as "N
    unit(s) failed"), and from then on prints no traceback: the one line of `_command`
    says more, and what fails after a full disk follows from it. The UI keeps every
    traceback: the API's handler sends a record before the console's sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: BaseException | None = None

    def watch(self) -> None:
        """Start afresh and filter the console handlers of Prefect's logging."""
        from prefect.logging.handlers import PrefectConsoleHandler

        self.seen = None
        for handler in logging.getLogger().handlers:
            if isinstance(handler, PrefectConsoleHandler) and self not in handler.filters:
                handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            self.seen = self.seen or full_disk_error(record.exc_info[1])
            if self.seen is not None:
                record.exc_info = record.exc_text = None
        return True


_FULL_DISK_CONSOLE = _FullDiskConsole()


def _exit_now(code: int) -> NoReturn:
    """End the process as the interpreter would (atexit handlers run: Prefect sends its
    last logs and events), minus tearing down every module one by one, which takes
    0.2 s here after a run and does nothing a user could see."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
