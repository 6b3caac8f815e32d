"""A whole ``probekit search pairs`` process, fresh every time (issue 13, items 1 and 2).

What a user runs and waits for: start-up, opening the caches, the scan, the baselines and
writing, every default (C = auto, 20 random pairs, the top 20 refitted). Each case is a
(train, eval) pair of caches; by default a 384- and a 768-dimension cache of a random
1-layer BERT over 12,500 generated training sentences (10,000 fit, 2,500 validation) and 1,250
dev ones, built once into ``--work`` (the cost depends on the shapes, not on the model);
``--case NAME TRAIN EVAL`` adds real ones (e.g. MiniLM SST-2). With ``--baseline DIR`` (another
checkout of probekit, e.g. a ``git worktree`` of an older commit) every round runs that code
(``PYTHONPATH=DIR``) and this one in turn, so both see the same load. Prints, per case and
code, the median, smallest and largest wall time of ``--rounds`` runs and the median work
(``elapsed_s`` of the result), and checks that every run selected the same pair.

    python benchmarks/bench_fresh.py [--rounds 5] [--case sst2 TRAIN.h5 DEV.h5]
        [--baseline /tmp/old-checkout] [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import loadavg, synthetic_caches

#: the console script's entry (``probekit.cli:entry``) where it exists, else ``main``
ENTRY = (
    "import sys, probekit.cli as c; sys.argv[0] = 'probekit'; "
    "f = getattr(c, 'entry', None); sys.exit(c.main()) if f is None else f()"
)


def run_once(code_dir: str | None, train: str, ev: str, out: Path) -> tuple[float, float, str]:
    """(wall, ``elapsed_s``, selected pair) of one fresh ``search pairs`` process."""
    env = dict(os.environ)
    if code_dir:
        env["PYTHONPATH"] = code_dir
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-c", ENTRY, "search", "pairs", "--train", train, "--eval", ev]
    t0 = time.perf_counter()
    # cwd: not the repository, whose probekit/ would shadow PYTHONPATH for ``python -c``
    p = subprocess.run(
        [*cmd, "--out", str(out)], env=env, capture_output=True, text=True, cwd=out.parent
    )
    wall = time.perf_counter() - t0
    if p.returncode:
        who = code_dir or "this checkout"
        raise SystemExit(f"search pairs failed ({who}):\n{p.stderr[-2000:]}")
    res = json.loads((out / "pairs.json").read_text())
    return wall, float(res["elapsed_s"]), str(res["selected"])


def probekit_dir(code_dir: str | None) -> str:
    """Where ``probekit`` is imported from under ``code_dir`` (checked: a baseline that
    silently ran this checkout would compare the code with itself)."""
    env = dict(os.environ, PYTHONPATH=code_dir) if code_dir else dict(os.environ)
    p = subprocess.run(
        [sys.executable, "-c", "import probekit, os; print(os.path.dirname(probekit.__file__))"],
        env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    return p.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--case", nargs=3, action="append", metavar=("NAME", "TRAIN", "EVAL"))
    ap.add_argument("--baseline", help="another probekit checkout to interleave with")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "probekit-bench-fresh"))
    ap.add_argument("--json")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cases = {name: (tr, ev) for name, tr, ev in args.case or []}
    if not args.case:
        for hidden in (384, 768):
            c = synthetic_caches(work, 12_500, hidden=hidden)
            cases[f"synthetic {hidden}"] = (str(c["train"]), str(c["dev"]))
    codes = {"this checkout": None} | ({"baseline": args.baseline} if args.baseline else {})
    homes = {code: probekit_dir(d) for code, d in codes.items()}
    if len(set(homes.values())) != len(homes):
        raise SystemExit(f"--baseline imports the same probekit as this checkout: {homes}")
    runs: dict[tuple[str, str], list] = {}
    load0 = loadavg()
    for tr, ev in cases.values():  # once untimed: page cache, kernels built
        for d in codes.values():
            run_once(d, tr, ev, work / "out")
    for _ in range(args.rounds):
        for name, (tr, ev) in cases.items():
            for code, d in codes.items():
                runs.setdefault((name, code), []).append(run_once(d, tr, ev, work / "out"))
    when = time.strftime("%Y-%m-%d %H:%M")
    print(f"# {os.cpu_count()} CPUs, load {load0} -> {loadavg()}, {when}; code: {homes}")
    print("| case | code | wall median | min | max | work median | selected |")
    print("|---|---|---:|---:|---:|---:|---|")
    rows = []
    for (name, code), v in runs.items():
        walls = [w for w, _, _ in v]
        row = {"case": name, "code": code, "walls": walls, "work": [e for _, e, _ in v],
               "selected": sorted({s for _, _, s in v})}  # fmt: skip
        rows.append(row)
        print(f"| {name} | {code} | {statistics.median(walls):.2f} s | {min(walls):.2f} s | "
              f"{max(walls):.2f} s | {statistics.median(row['work']):.2f} s | "
              f"{', '.join(row['selected'])} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load0, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
