"""Start-up of the command line: ``probekit --help``, every verb's ``--help`` and ``probekit
info`` import no heavy library (checked in a fresh process), and declaring only the chosen
verb changes no help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from probekit.cli import _VERBS, build_parser, main

HEAVY = ("torch", "transformers", "sklearn", "matplotlib", "datasets", "joblib", "tqdm")

# runs `probekit ARGV` in this fresh interpreter, then prints the heavy modules it imported
_PROBE = f"""
import json, sys
from probekit.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
sys.stdout.flush()
print(json.dumps([rc, [m for m in {HEAVY!r} if m in sys.modules]]))
"""


def _fresh(*argv: str) -> tuple[int, list[str]]:
    """Exit status of ``probekit ARGV`` in a fresh process and the heavy modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rc, heavy = json.loads(proc.stdout.splitlines()[-1])
    return rc, heavy


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["-v", "--help"], *([*v.split(), "--help"] for v in [*_VERBS, "search pairs"])],
    ids=" ".join,
)
def test_help_imports_no_heavy_library(argv):
    """Every verb, ``finetune``, ``cross`` and ``multihead`` included (their defaults come
    from ``FinetuneConfig``, which imports no torch)."""
    assert _fresh(*argv) == (0, [])


def test_info_imports_no_heavy_library(tiny_caches):
    assert _fresh("info", str(tiny_caches["dev"])) == (0, [])
    assert _fresh("info", str(tiny_caches["dev"]), "--json") == (0, [])


def test_info_of_a_missing_file_imports_no_heavy_library(tmp_path):
    assert _fresh("info", str(tmp_path / "nope.h5")) == (2, [])


def _help(parse, argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit, match="0"):
        parse(argv)
    return capsys.readouterr().out


def test_top_level_help_is_the_full_parsers(capsys):
    """The verbs' names and help lines come from the table, with or without their modules."""
    lazy = _help(main, ["--help"], capsys)
    assert lazy == _help(build_parser().parse_args, ["--help"], capsys)
    for verb in _VERBS:
        assert f"\n    {verb} " in lazy, verb


@pytest.mark.parametrize("verb", [v for v in _VERBS if v != "search"] + ["search pairs"])
def test_every_verbs_help_is_the_full_parsers(verb, capsys):
    """``probekit VERB --help`` declares only VERB, yet lists the same options as the parser
    with every verb."""
    argv = [*verb.split(), "--help"]
    lazy = _help(main, argv, capsys)
    assert lazy == _help(build_parser().parse_args, argv, capsys)
    assert lazy.startswith(f"usage: probekit {verb} ")
    assert "-h, --help" in lazy


@pytest.mark.parametrize("verb", ["info", "probe", "run"])
def test_a_verb_without_a_description_gets_its_help_line(verb, capsys):
    text = "".join(_help(main, [verb, "--help"], capsys).split())  # as wrapped, even at "-"
    assert "".join(_VERBS[verb][1].split()) in text


def test_verb_after_the_verbose_flag_is_found(capsys):
    text = _help(main, ["-vv", "probe", "--help"], capsys)
    assert "--train" in text and "--n-random" in text


def test_unknown_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit, match="2"):
        main(["bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["pairs", "greedy"])
def test_searches_import_no_scikit_learn(tiny_caches, tmp_path, verb):
    """A search needs torch, not scikit-learn (about 1.2 s of start-up with scipy.stats and
    pandas): its split, metrics and baselines are probekit's own."""
    io = ["--train", str(tiny_caches["train"]), "--eval", str(tiny_caches["dev"])]
    rc, heavy = _fresh("search", verb, *io, "--out", str(tmp_path / verb), "--n-random", "2")
    assert rc == 0 and "sklearn" not in heavy and "torch" in heavy


# the console script's entry, as `probekit ARGV` runs it, with an atexit handler of the caller's
# and a line printed when the quick exit is taken
_ENTRY = """
import atexit, sys
atexit.register(lambda: print("atexit ran", flush=True))
import probekit.cli as cli
real = cli._quick_exit
def announced(rc):
    print("quick exit", flush=True)
    real(rc)
cli._quick_exit = announced
sys.argv = ["probekit", *sys.argv[1:]]
cli.entry()
"""


def _entry(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, *argv], capture_output=True, text=True, timeout=300
    )


def test_quick_exit_keeps_results_status_and_atexit_handlers(tiny_caches, tmp_path):
    """A search ends through the quick exit: its results are complete, its status is the
    verb's, the atexit handlers ran and stdout is flushed."""
    io = ["--train", str(tiny_caches["train"]), "--eval", str(tiny_caches["dev"])]
    out = tmp_path / "pairs"
    p = _entry("search", "pairs", *io, "--out", str(out), "--n-random", "2")
    assert p.returncode == 0, p.stderr
    assert "quick exit" in p.stdout  # taken, not the normal exit
    assert "atexit ran" in p.stdout and "wrote" in p.stdout
    assert json.loads((out / "pairs.json").read_text())["selected"]
    info = _entry("info", str(tiny_caches["dev"]), "--json")
    assert info.returncode == 0 and info.stdout.rstrip().endswith("quick exit\natexit ran")
    assert json.loads(info.stdout.rsplit("quick exit", 1)[0])["path"]
    bad = _entry("info", str(tmp_path / "nope.h5"))
    assert bad.returncode == 2 and "atexit ran" in bad.stdout


def test_quick_exit_only_when_nothing_else_runs(monkeypatch):
    """With another (non-daemon) thread or a child process alive, or for a verb not cleared
    for it, the exit is the normal one (sys.exit); daemon threads do not count."""
    import multiprocessing
    import threading

    import probekit.cli as cli

    me = threading.current_thread()
    daemon = threading.Thread(target=print, daemon=True)
    worker = threading.Thread(target=print, daemon=False)
    monkeypatch.setattr(multiprocessing, "active_children", lambda: [])
    monkeypatch.setattr(threading, "enumerate", lambda: [me, daemon])
    assert cli._nothing_else_running()
    monkeypatch.setattr(threading, "enumerate", lambda: [me, daemon, worker])
    assert not cli._nothing_else_running()
    monkeypatch.setattr(threading, "enumerate", lambda: [me])
    monkeypatch.setattr(multiprocessing, "active_children", lambda: ["a child"])
    assert not cli._nothing_else_running()
    monkeypatch.setattr(multiprocessing, "active_children", lambda: [])
    quick = []
    monkeypatch.setattr(cli, "_quick_exit", lambda rc: quick.append(rc))
    monkeypatch.setattr(cli, "main", lambda: 0)
    for argv, want in ((["probekit", "extract", "--help"], []), (["probekit", "info", "x"], [0])):
        monkeypatch.setattr(sys, "argv", argv)
        quick.clear()
        with pytest.raises(SystemExit):
            cli.entry()
        assert quick == want


def test_a_one_job_search_imports_no_joblib(tiny_caches, tmp_path):
    """``search`` with the default ``--n-jobs 1`` runs its units in this process: joblib (and
    loky, psutil) stay unimported; ``--n-jobs 2`` sets joblib up."""
    argv = ["search", "singles", "--train", str(tiny_caches["train"])]
    argv += ["--eval", str(tiny_caches["dev"]), "--n-random", "2"]
    rc, heavy = _fresh(*argv, "--out", str(tmp_path / "one"))
    assert rc == 0 and "joblib" not in heavy and "torch" in heavy
    rc, heavy = _fresh(*argv, "--out", str(tmp_path / "two"), "--n-jobs", "2")
    assert rc == 0 and "joblib" in heavy
