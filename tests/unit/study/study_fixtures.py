"""Hand-made study directories (the files of the study contract, written directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probekit._io import write_json as _write_json

TASKS = ("cola", "sst2")
METRICS = {"cola": ("mcc", ["mcc", "accuracy"]), "sst2": ("accuracy", ["accuracy"])}
MAJORITY = {"cola": {"mcc": 0.0, "accuracy": 0.69}, "sst2": {"accuracy": 0.51}}


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, obj)


class StudyBuilder:
    """Collects runs and entries, then :meth:`write` lays out a study directory."""

    def __init__(self, root: Path, tasks: tuple[str, ...] = TASKS) -> None:
        self.root = Path(root)
        self.tasks = tasks
        self.runs: dict[str, dict[str, Any]] = {}
        self.entries: list[dict[str, Any]] = []
        self.scores: dict[str, dict[str, Any]] = {}
        self.probe: dict[str, dict[str, Any]] = {}

    def run(self, task: str, seed: int, score: float | None, *, key: str = "", **kw: Any) -> str:
        """A fine-tuning run scored ``score`` on ``task`` (None: pending); returns its id."""
        rid = f"{task}-{key or 'run'}-s{seed}-{len(self.runs)}"
        dims = kw.get("dims")
        self.runs[rid] = {
            "run_id": rid,
            "kind": kw.get("kind", "finetune"),
            "task": task,
            "seed": seed,
            "dims": dims,
            "layer": kw.get("layer", 6),
            "pool": kw.get("pool", "cls"),
            "freeze": kw.get("freeze", "none"),
            "head_layers": kw.get("head_layers", 1),
            "start_from": None,
            "kept_task": None,
            "tasks": [task],
            "dims_per_task": {},
            "config": {"seed": seed},
        }
        if score is not None:
            primary, names = METRICS[task]
            self.scores[rid] = {
                "kind": "study_run",
                "run_id": rid,
                "complete": True,
                "scores": {task: {m: score if m == primary else score / 2 for m in names}},
                "probe": {},
                "elapsed_s": 10.0 + len(self.runs),
                "train_seconds": 9.0,
            }
        return rid

    def entry(
        self, experiment: str, task: str, condition: str, group: str, rid: str, **kw: Any
    ) -> None:
        run = self.runs[rid]
        self.entries.append(
            {
                "experiment": experiment,
                "task": task,
                "condition": condition,
                "group": group,
                "seed": run["seed"],
                "run_id": rid,
                "score_task": task,
                "dims": run["dims"],
                "k": None if run["dims"] is None else len(run["dims"]),
                "layer": run["layer"],
                "pool": run["pool"],
                "freeze": run["freeze"],
                "head_layers": run["head_layers"],
                **kw,
            }
        )

    def cond(
        self,
        experiment: str,
        task: str,
        condition: str,
        group: str,
        scores: list[float | None],
        **kw: Any,
    ) -> list[str]:
        """One run per seed (seed = index) with the given scores, one entry each."""
        rids = []
        for seed, sc in enumerate(scores):
            rid = self.run(task, seed, sc, key=f"{experiment}-{condition}-{group}", **kw)
            self.entry(experiment, task, condition, group, rid)
            rids.append(rid)
        return rids

    def reference(self, task: str, scores: list[float | None]) -> list[str]:
        """The full-width [CLS] runs: token/cls, dims/full and freeze/full_1layer entries."""
        rids = self.cond("token", task, "cls", "full", scores)
        for rid in rids:
            self.entry("dims", task, "full", "full", rid)
            self.entry("freeze", task, "full_1layer", "full", rid)
        return rids

    def probe_scores(self, rid: str, pre: float, post: float | None = None) -> None:
        task = self.runs[rid]["task"]
        self.scores[rid]["probe"][task] = {"pre": pre, "post": post}

    def write(self, thresholds: dict[str, Any] | None = None) -> Path:
        r = self.root
        r.mkdir(parents=True, exist_ok=True)
        write_json(
            r / "plan.json",
            {"kind": "study_plan", "runs": list(self.runs.values()), "entries": self.entries},
        )
        write_json(
            r / "study.json",
            {
                "kind": "study",
                "complete": not (set(self.runs) - set(self.scores)),
                "config": {"model": "minilm", "tasks": list(self.tasks)},
                "budget": {"limit": 100, "epochs": 1, "seeds": 3},
                "thresholds": thresholds or {},
                "tasks": list(self.tasks),
                "experiments": sorted({e["experiment"] for e in self.entries}),
                "versions": {"probekit": "0.2", "torch": "2.x"},
                "machine": {
                    "platform": "linux",
                    "cpu": "x86",
                    "n_cpus": 2,
                    "torch_threads": 1,
                    "device": "cpu",
                },
                "elapsed_s": 123.0,
                "n_runs": len(self.runs),
            },
        )
        write_json(
            r / "baselines.json",
            {
                "kind": "study_baselines",
                "tasks": {
                    t: {
                        "primary_metric": METRICS[t][0],
                        "metrics": METRICS[t][1],
                        "regression": False,
                        "majority": MAJORITY[t],
                        "n_train": 100,
                        "n_eval": 50,
                    }
                    for t in self.tasks
                },
            },
        )
        for t in self.tasks:
            write_json(
                r / "probes" / t / "probe.json",
                {
                    "kind": "study_probes",
                    "task": t,
                    "layer": 6,
                    "pool": "cls",
                    "primary_metric": METRICS[t][0],
                    "full": 0.5,
                    "majority": MAJORITY[t][METRICS[t][0]],
                    "random_pair": {"mean": 0.1, "std": 0.05},
                    "best_pair": [3, 17],
                    "best_pair_score": 0.3,
                    "ranked": {"1": [3], "2": [3, 17], "3": [3, 17, 40]},
                    "ranked_scores": {"1": 0.2, "2": 0.3, "3": 0.35},
                    "elapsed_s": 1.0,
                },
            )
        for rid, s in self.scores.items():
            write_json(r / "runs" / rid / "scores.json", s)
        return r
