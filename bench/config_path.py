"""Follow the `config` parameter of the `eval` flow through the code, as issue 20 measures it.

Runs `eval_flow` once (1 model x 1 dataset x 1 trial on a 2-video synthetic benchmark,
`random` model, a temporary Prefect server) under a profiler that watches every call
and return of a function of this project that holds the config object itself among its
locals. The path is the module of the innermost such function after each event, with
repeats merged: a *visit* is one stay in a module, a *climb* is a step from a deeper
layer to a higher one (evalcore -> tasks -> flows), a *return* is a stay in a module
the path had left before. Prints the path, then the counts beside the issue's figures
(31 stays in 12 modules, 14 climbs, 19 returns; the issue asks for at most 15 visits
and 4 climbs).

    .venv/bin/python bench/config_path.py            # about 30 s
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ISSUE = {"visits": 31, "modules": 12, "climbs": 14, "returns": 19}
GOAL = {"visits": 15, "climbs": 4}
LAYERS = ("flows", "tasks", "evalcore")  # higher to deeper


def module_of(filename: str) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(REPO)
    except ValueError:
        return None
    if rel.parts[0] not in LAYERS:
        return None
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def trace(config, run) -> list[tuple[str, str]]:
    """The modules, in order, where code holding `config` runs while `run()` does, each
    with the function the stay began in."""
    path: list[str] = []
    where: list[str] = []  # the function at each visit's start
    stacks: dict[int, list[tuple[object, str]]] = {}  # thread -> (frame, module) held
    lock = threading.Lock()
    errors: list[str] = []

    def profile(frame, event, arg):
        if event not in ("call", "return"):
            return
        with lock:
            stack = stacks.setdefault(threading.get_ident(), [])
            if event == "call":
                try:  # an error here would end profiling in this thread
                    module = module_of(frame.f_code.co_filename)
                    holds = module is not None and any(v is config for v in frame.f_locals.values())
                except Exception as error:  # noqa: BLE001
                    errors.append(repr(error))
                    return
                if not holds:
                    return
                stack.append((frame, module))
            elif stack and stack[-1][0] is frame:  # its locals may have changed since
                stack.pop()
            else:
                return
            here = stack[-1][1] if stack else None
            if here is not None and (not path or path[-1] != here):
                path.append(here)
                where.append(stack[-1][0].f_code.co_name)

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    if errors:
        print(f"{len(errors)} profiler errors, first: {errors[0]}")
    return list(zip(path, where, strict=True))


def counts(path: list[str]) -> dict[str, int]:
    climbs = sum(layer(b) < layer(a) for a, b in zip(path, path[1:], strict=False))
    returns = sum(m in path[:i] for i, m in enumerate(path))
    return {"visits": len(path), "modules": len(set(path)), "climbs": climbs, "returns": returns}


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="config-path-"))
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ.pop("PREFECT_API_URL", None)
    from prefect.testing.utilities import prefect_test_harness

    from evalcore.config import DatasetSpec, EvalConfig, ModelSpec
    from evalcore.dataset.synthetic import generate_benchmark
    from flows.eval import eval_flow

    tsv = generate_benchmark(root / "bench", n_videos=2, max_seconds=3.0)
    config = EvalConfig(
        datasets=[DatasetSpec(tsv=tsv)],
        models=[ModelSpec(name="rnd", kind="random")],
        work_dir=root / "work",
        output_dir=root / "out",
    )
    with prefect_test_harness():
        visits = trace(config, lambda: eval_flow(config))
    # from the flow's body on: before it, Prefect validates the parameter again (the
    # config's own validators)
    before = next(n for n, (module, _) in enumerate(visits) if module == "flows.eval")
    visits = visits[before:]
    for n, (module, function) in enumerate(visits, 1):
        print(f"{n:3d}  {'  ' * layer(module)}{module}  ({function})")
    path = [module for module, _ in visits]
    figures = counts(path)
    print(f"\nload {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':10s}{'now':>6s}{'issue':>7s}{'goal':>6s}")
    for name, value in figures.items():
        print(f"{name:10s}{value:6d}{ISSUE[name]:7d}{GOAL.get(name, '-')!s:>6s}")


if __name__ == "__main__":
    main()
