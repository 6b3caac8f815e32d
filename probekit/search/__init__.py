"""Dimension search over an activation cache.

Which few dimensions, of which layer and which token, carry a task, and how sure can we be?
Eight searches, each a function here and a CLI verb (``probekit search VERB``):

* :func:`singles`: every dimension of every layer, scored by the exactly best threshold (a
  stump, :mod:`probekit.stumps`) and by a one-dimension probe; ranked.
* :func:`pairs`: all ``C(D, 2)`` pairs of one layer; the top pairs and the full score matrix.
* :func:`greedy`: forward selection up to ``k`` dimensions, or until the validation score is
  within a fraction of the full-dimension score; each step scores all candidates as one batch.
* :func:`eliminate`: the remove-one procedure of Fukuhata & Kano (2025): from a starting set
  (random dimensions, a given list, or all of them) remove one dimension at a time, recording
  the drop every removal would cause; then score all pairs among the survivors.
* :func:`layers`: per layer, the full-dimension score, the best pair and the greedy-k score.
* :func:`tokens`: ``cls`` vs ``mean`` vs ``max_norm`` pooling, at full width and at k dims.
* :func:`rank`: the peers' rankings (mean-diff, f-stat, l1, lca, mi) and ours (stump,
  greedy), each ranked on the fitting part and scored top-k for k = 1..K next to the random
  band and the majority baseline.
* :func:`exact`: the best k-subset (k = 3, 4) of a top-M prefilter: a batched closed-form LDA
  screen of all ``C(M, k)`` subsets, then exact refits of the leaders; the gap to greedy.

**Verdicts.** :func:`verdict` (``verdict.py``) compares a selected set with the majority and
random-k baselines by a paired bootstrap over the eval examples; greedy, eliminate, rank and
exact results carry its ``verdict`` block, and ``probekit run`` and the report print its
headline. ``mdl=True`` / ``ablation=True`` add the online codelength and the without/erased
scores of the selected set (``extras.py``).

**Protocol.** Selection (which dimension, which pair) only ever looks at a validation split
carved from the training cache (:func:`probekit.probes.train_val_split`); candidates are
ranked by the task's primary metric on it, ties broken by the validation loss
(``criterion="metric"``), or by the validation loss (``criterion="loss"``: smoother, less
prone to fitting the noise of a small validation split). Reported
scores (``metrics``) come from a probe refitted on the whole training cache and scored on the
evaluation cache (``eval``). Every result carries the full-dimension score, a random-dimension
baseline of the same size (``n_random`` draws: mean, spread, all scores), the majority
baseline, the seed, the configuration, library versions and the wall time. ``repeats > 1``
reruns the selection over other validation splits (``resample="split"``) or bootstrap
resamples of the fitting part (``resample="bootstrap"``) and reports how often each
dimension is chosen and the Jaccard overlap of the chosen sets.

**Resumable.** With ``out_dir`` given, every unit of work (a greedy step, a chunk of pairs,
a layer, a pool, a repeat) is checkpointed atomically under
``out_dir/.probekit-ckpt/<verb>-<key>/``, where the key hashes the configuration and the
identities of the input caches (model and data hashes). Running the same search again
continues where it stopped; other arguments or other inputs start afresh.

**Scale out.** Fan-out over layers, pools, repeats and chunks of pairs inside a search, and
over whole searches (tasks, models, seeds: :func:`run_many`), uses :class:`joblib.Parallel`
without naming a backend, so the caller chooses it:
``with joblib.parallel_config(backend="dask"): greedy(...)`` runs on a Dask cluster.

**Data.** Searches take *sources* (:class:`FeatureSource`): an
:class:`~probekit.cache.ActivationCache` or, for arrays in memory, an :class:`ArraySource`.
Probes are fitted by :class:`~probekit.probes.ProbeEngine` (batched Newton); this package
has no solver of its own.

**Settings.** Every search takes ``(train, eval, *, <its own options>, config=SearchConfig(...))``;
:class:`SearchConfig` holds what all searches share (metrics, C, device, memory budget,
validation fraction, random draws, seed, criterion, n_jobs, out_dir, progress). The old
keyword arguments (``seed=``, ``out_dir=``, ... and ``dev=`` for ``eval``) still work for one
release, with a ``DeprecationWarning``.

**Layout.** ``config`` (:class:`SearchConfig`), ``sources`` (:class:`FeatureSource`,
:class:`ArraySource`, the pairing check), ``problem`` (:class:`Problem`: the validation
split, selection and reporting fits, baselines), ``checkpoint``, ``result``, ``driver`` (the
set-up every search shares), one module per search (``singles``, ``pairs``, ``greedy`` with
its ``screen``, ``eliminate``, ``sweeps`` for layers and tokens), ``stability``, ``run``
(:func:`run_search`, :func:`run_many`) and ``probe`` (:func:`probe_sources`: one probe on
fixed dimensions of two caches, for ``probekit probe``). A new search is a module with a
function of the same shape, registered in :data:`run.SEARCHES`.

Outputs (:meth:`SearchResult.save`): ``<verb>.json`` and ``<verb>.csv`` in ``out_dir``
(``pairs_matrix.npy`` for :func:`pairs`), each tagged ``"kind": "search"``, read by
:mod:`probekit.report`.
"""

from __future__ import annotations

from .checkpoint import Checkpoint
from .config import SearchConfig
from .eliminate import eliminate
from .exact import exact
from .greedy import greedy, greedy_select
from .pairs import candidate_dims, pairs, score_pairs
from .probe import probe_sources, write_probe_record
from .problem import Problem, ProblemData, best_first
from .rank import METHODS as RANK_METHODS
from .rank import rank, rank_order
from .result import RESULT_KIND, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, SearchResult
from .run import SEARCHES, VERBS, run_many, run_search
from .screen import Screen
from .singles import singles
from .sources import (
    ArraySource,
    FeatureSource,
    check_pairing,
    describe_source,
    load_labels,
    source_identity,
)
from .stability import jaccard, stability
from .sweeps import layers, tokens
from .verdict import Verdict, judge, verdict

__all__ = [
    "RANK_METHODS",
    "RESULT_KIND",
    "RESULT_SCHEMA",
    "RESULT_SCHEMA_VERSION",
    "SEARCHES",
    "VERBS",
    "ArraySource",
    "Checkpoint",
    "FeatureSource",
    "Problem",
    "ProblemData",
    "Screen",
    "SearchConfig",
    "SearchResult",
    "Verdict",
    "best_first",
    "candidate_dims",
    "check_pairing",
    "describe_source",
    "eliminate",
    "exact",
    "greedy",
    "greedy_select",
    "jaccard",
    "judge",
    "layers",
    "load_labels",
    "pairs",
    "probe_sources",
    "rank",
    "rank_order",
    "run_many",
    "run_search",
    "score_pairs",
    "singles",
    "source_identity",
    "stability",
    "tokens",
    "verdict",
    "write_probe_record",
]
