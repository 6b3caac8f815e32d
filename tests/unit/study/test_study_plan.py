"""The study's plan: budgets, run identity, dedup, the experiments' runs, effective dims."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from probekit.errors import ConfigError
from probekit.study import BUDGETS, Budget, Plan, Run, StudyConfig, parse_cross
from probekit.study.data import sample
from probekit.study.experiments import BUILDERS, Context, add_effective_pairs, effective_dims
from probekit.tasks import load_task


def _ctx(tasks=("demo", "demo2"), **cfg) -> Context:
    data = {}
    for t in tasks:
        d = load_task("demo", "train", limit=40)
        data[t] = (d, load_task("demo", "dev", limit=20))
    probes = {
        t: {"best_pair": [5, 2], "ranked": {"1": [7], "2": [2, 5], "3": [1, 2, 3]}} for t in tasks
    }
    c = StudyConfig(tasks=tuple(tasks), budget="smoke", **cfg)
    return Context(c, c.resolved_budget(), data, 32, 3, probes)


def test_budgets_and_overrides():
    assert BUDGETS["small"].seeds == 3 and BUDGETS["full"].limit is None
    c = StudyConfig(budget="small", seeds=5, random_pairs=7)
    b = c.resolved_budget()
    assert (b.seeds, b.random_pairs, b.epochs) == (5, 7, BUDGETS["small"].epochs)
    with pytest.raises(ConfigError, match="budget must be one of"):
        StudyConfig(budget="huge")
    with pytest.raises(ConfigError, match="experiments must be among"):
        StudyConfig(experiments=("token", "vibes"))
    with pytest.raises(ConfigError, match="seeds must be a positive"):
        Budget("x", limit=None, eval_limit=None, epochs=1, seeds=0, sweep_seeds=1,
               random_pairs=1, triples=1)  # fmt: skip


def test_parse_cross():
    assert parse_cross(None, ("a", "b", "c")) == (("a", "b"), ("b", "c"))
    assert parse_cross("b:a, a:c", ("a", "b", "c")) == (("b", "a"), ("a", "c"))
    with pytest.raises(ConfigError, match="not one of --tasks"):
        parse_cross("a:z", ("a", "b"))
    with pytest.raises(ConfigError, match="two different tasks"):
        parse_cross("a:a", ("a", "b"))


def test_run_id_depends_on_every_setting_and_round_trips():
    ctx = _ctx()
    a = ctx.run("demo", 0, (2, 5))
    assert a.run_id == ctx.run("demo", 0, (2, 5)).run_id  # stable
    others = [
        ctx.run("demo", 1, (2, 5)),
        ctx.run("demo", 0, (2, 6)),
        ctx.run("demo", 0, (2, 5), layer=1),
        ctx.run("demo", 0, (2, 5), pool="mean"),
        ctx.run("demo", 0, (2, 5), freeze="encoder", head_layers=2),
        ctx.run("demo2", 0, (2, 5)),
    ]
    assert len({a.run_id, *(o.run_id for o in others)}) == 7
    ctx2 = _ctx(recipe=replace(ctx.config.recipe, head_lr=5e-3))
    assert ctx2.run("demo", 0, (2, 5)).run_id != a.run_id  # the recipe is part of the identity
    assert Run.from_dict(a.to_dict()).run_id == a.run_id


def test_shared_runs_are_trained_once():
    ctx = _ctx()
    plan = Plan()
    for name in ("token", "dims", "freeze"):
        BUILDERS[name](plan, ctx)
    full = [e.run_id for e in plan.entries if (e.experiment, e.condition) == ("token", "cls")]
    ref = [e.run_id for e in plan.entries if (e.experiment, e.condition) == ("dims", "full")]
    fr = [e.run_id for e in plan.entries if e.condition == "full_1layer"]
    assert full == ref == fr and len(set(full)) == 2 * ctx.budget.seeds
    assert len(plan.runs) < len(plan.entries)


def test_experiments_make_the_issue_conditions():
    ctx = _ctx()
    plan = Plan()
    for b in BUILDERS.values():
        b(plan, ctx)
    conds = {(e.experiment, e.condition) for e in plan.entries}
    for need in [("token", "max_norm"), ("token", "mean"), ("dims", "random_pair"),
                 ("dims", "triple"), ("dims", "triple_minus"), ("dims", "probe_k1"),
                 ("dims", "probe_k3"), ("layers", "probe_pair"), ("freeze", "frozen_2layer"),
                 ("freeze", "frozen_2dim"), ("cross", "A_after_B"), ("cross", "B_after_A"),
                 ("beyond", "multihead")]:  # fmt: skip
        assert need in conds
    layers = {e.layer for e in plan.entries if e.experiment == "layers"}
    assert layers == {0, 1, 2}  # every hidden state, embeddings included
    for e in plan.entries_of("freeze", "demo", "frozen_2dim"):
        assert (e.freeze, e.head_layers, e.dims) == ("encoder", 2, (2, 5))
    then = [r for r in plan.runs.values() if r.kind == "cross_then"]
    assert then and all(r.start_from in plan.runs for r in then)
    disjoint = [r for r in then if r.task == "demo2" and set(r.dims or ()) & {2, 5} == set()]
    assert disjoint  # the disjoint mode draws dims away from A's pair (both probe pairs are 2,5)
    mh = next(r for r in plan.runs.values() if r.kind == "multihead")
    sets = list(mh.dims_per_task.values())
    assert not set(sets[0]) & set(sets[1])


def test_effective_dims_follow_the_seed_spread():
    eff, detail = effective_dims([0.8, 0.82, 0.81], {1: [0.6, 0.62, 0.61], 2: [0.8, 0.79, 0.81],
                                                     3: [0.7, 0.75, 0.72]})  # fmt: skip
    assert eff == [1, 3] and not detail["2"]["effective"]
    eff, _ = effective_dims([0.8, 0.5, 0.9], {1: [0.7, 0.6, 0.75]})  # spread larger than the drop
    assert eff == []


def test_effective_pairs_added_from_scores():
    ctx = _ctx(tasks=("demo",))
    plan = Plan()
    BUILDERS["dims"](plan, ctx)
    tri = plan.entries_of("dims", "demo", "triple")[0].dims
    worst = tri[0]  # removing tri[0] costs nothing; the other two are effective

    def score(rid, task):
        r = plan.runs[rid]
        if r.dims == tri:
            return 0.8
        return 0.8 if worst not in (r.dims or ()) else 0.5

    add_effective_pairs(plan, ctx, score)
    assert plan.notes["effective"]["demo"]["effective"] == sorted(tri[1:])
    eff = plan.entries_of("dims", "demo", "effective_pair")
    assert {e.dims for e in eff} == {tuple(sorted(tri[1:]))}


def test_sample_is_a_fixed_random_subset():
    d = load_task("demo", "train")
    a, b = sample(d, 30, 0), sample(d, 30, 0)
    assert a.fingerprint() == b.fingerprint() and len(a) == 30
    assert sample(d, 30, 1).fingerprint() != a.fingerprint()
    idx = np.asarray(a.example_index)
    assert (np.diff(idx) > 0).all() and idx.max() >= 30  # source order, not the first rows
    assert sample(d, None, 0) is d


def test_cli_defaults_follow_the_budget():
    import argparse

    from probekit.cli import study as cli_study

    p = argparse.ArgumentParser()
    cli_study.add_study(p.add_subparsers())
    full = cli_study._config(p.parse_args(["study", "--out", "x", "--budget", "full"]))
    assert full.model == "bert-base-uncased" and "wnli" not in full.tasks and len(full.tasks) == 8
    small = cli_study._config(p.parse_args(["study", "--out", "x", "--seeds", "5"]))
    assert (small.model, small.tasks, small.resolved_budget().seeds) == (
        "minilm",
        ("cola", "sst2"),
        5,
    )
    mine = cli_study._config(p.parse_args(["study", "--out", "x", "--budget", "full",
                                            "--model", "m", "--tasks", "rte"]))  # fmt: skip
    assert (mine.model, mine.tasks) == ("m", ("rte",))
