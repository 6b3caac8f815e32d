"""Start-up time of the command line (issue 13, item 7).

Every verb's ``probekit VERB --help`` as a fresh process, and ``info``, ``search pairs``,
``search greedy`` and ``probe`` on a small cache: the process's wall time printed next to
the work the verb reports (``elapsed_s`` of its JSON; for ``info``, the time of
:func:`probekit.cache.describe` in this process, once its imports are warm), the difference
being start-up (imports, argument parsing, cache open, writing). Every figure is the
smallest of ``--repeats`` runs, with its ratio to ``python -c pass`` measured in the same
run, and the imports a verb that scores probes cannot do without (torch, and h5py to read
the caches; no scikit-learn since its split and metrics became probekit's own) as the floor
of its start-up.

The caches (MiniLM, the built-in demo task unless ``--task``/``--glue-dir``) are extracted
once into ``--work`` with ``probekit extract``.

    python benchmarks/bench_startup.py [--repeats 3] [--task sst2 --glue-dir DIR --limit N]
        [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probekit.cli import _VERBS


def _probekit() -> list[str]:
    """The console script next to this interpreter, else the same entry point via ``-c``."""
    script = Path(sys.executable).with_name("probekit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from probekit.cli import main; sys.exit(main())"]


def wall(cmd: list[str], repeats: int) -> float:
    """Smallest wall time of ``cmd`` as a fresh process over ``repeats`` runs (it must pass)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        best = min(best, time.perf_counter() - t0)
    return best


def timed_work(cmd: list[str], out: Path, result: Path, repeats: int) -> tuple[float, float]:
    """(wall, ``elapsed_s`` of ``result``) of the run of ``cmd`` with the smallest wall; its
    output ``out`` (file or directory) is removed before each run, so that nothing resumes."""
    best = (float("inf"), float("nan"))
    for _ in range(repeats):
        if out.is_dir():
            shutil.rmtree(out)
        out.unlink(missing_ok=True)
        w = wall(cmd, 1)
        if w < best[0]:
            best = (w, float(json.loads(result.read_text())["elapsed_s"]))
    return best


def caches(args: argparse.Namespace) -> dict[str, Path]:
    """The train and dev caches, extracted once into ``--work``."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, limit in (("train", args.limit), ("dev", args.eval_limit)):
        p = work / f"{args.task}-{split}-{limit or 'all'}.h5"
        if not p.exists():
            cmd = [*_probekit(), "extract", "--task", args.task, "--split", split, "--out", str(p)]
            cmd += ["--device", "cpu"] + (["--limit", str(limit)] if limit else [])
            cmd += ["--glue-dir", args.glue_dir] if args.glue_dir else []
            subprocess.run(cmd, check=True)
        paths[split] = p
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", default="demo")
    ap.add_argument("--glue-dir")
    ap.add_argument("--limit", type=int, help="training examples (default: the whole split)")
    ap.add_argument("--eval-limit", type=int, help="evaluation examples (default: all)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "probekit-bench-startup"))
    ap.add_argument("--json")
    args = ap.parse_args()
    pk, r = _probekit(), args.repeats
    rows: list[dict] = []

    def row(what: str, w: float, work: float | None = None) -> None:
        rows.append({"command": what, "wall_s": w, "work_s": work})

    base = wall([sys.executable, "-c", "pass"], r)
    row("python -c pass", base)
    for mods in ("torch", "torch, h5py"):  # what scoring needs
        row(f"python -c 'import {mods}'", wall([sys.executable, "-c", f"import {mods}"], r))
    for verb in [*_VERBS, "search pairs"]:
        row(f"probekit {verb} --help", wall([*pk, *verb.split(), "--help"], r))

    c = caches(args)
    from probekit.cache import describe

    describe(c["train"])  # warm: imports and the file's pages
    work = float("inf")
    for _ in range(r):
        t0 = time.perf_counter()
        describe(c["train"])
        work = min(work, time.perf_counter() - t0)
    row("probekit info TRAIN", wall([*pk, "info", str(c["train"])], r), work)
    with tempfile.TemporaryDirectory() as tmp:
        io = ["--train", str(c["train"]), "--eval", str(c["dev"]), "--device", "cpu"]
        for verb in ("pairs", "greedy"):
            out = Path(tmp) / verb
            cmd = [*pk, "search", verb, *io, "--out", str(out)]
            w, e = timed_work(cmd, out, out / f"{verb}.json", r)
            row(f"probekit search {verb}", w, e)
        out = Path(tmp) / "probe.json"
        w, e = timed_work([*pk, "probe", *io, "--out", str(out)], out, out, r)
        row("probekit probe (all dims)", w, e)

    print(
        f"# {platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
        f"{time.strftime('%Y-%m-%d')}, best of {r}; caches {c['train'].name}, {c['dev'].name}"
    )
    print("| command | wall | x python -c pass | work (elapsed_s) | start-up (wall - work) |")
    print("|---|---:|---:|---:|---:|")
    for x in rows:
        work = x["work_s"]
        rest = "- | -" if work is None else f"{work:.2f} s | {x['wall_s'] - work:.2f} s"
        print(f"| `{x['command']}` | {x['wall_s']:.2f} s | {x['wall_s'] / base:.1f}x | {rest} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": os.getloadavg(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
