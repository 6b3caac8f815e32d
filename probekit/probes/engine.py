"""The batched probe engine: :class:`ProbeEngine` fits ``B`` probes at once.

Each probe has its own subset of columns (``dims [B, k]``) and is scored on evaluation data
in the same pass. The engine validates the inputs, standardises the used columns once,
plans chunks of probes that fit ``memory_budget``, and dispatches each chunk to a solver
(:mod:`.solvers`) and to scoring (:mod:`.scoring`):

* binary logistic: Newton (IRLS) with batched ``(k+1) x (k+1)`` solves, started from linear
  discriminant analysis and safeguarded by step halving on the gradient norm. Each pass over
  the training data computes, per probe, the gradient and Hessian sums; for ``k <= 4`` these
  are explicit sums fused into one loop per probe (no ``[B, n]`` array is ever
  materialised): for pairs on the CPU by native C kernels built once per machine
  (:mod:`.native`), else by ``torch.compile``; for larger ``k`` batched matrix products.
  Typically 1-2 passes per probe. Compilation is used when the batch is large enough to
  repay it (see ``compile``); without it (or without a C++ compiler, or when it fails) the
  sums run eagerly: pairs on the CPU by :mod:`.pair_kernels`, anything else by batched
  matrix products, over cache-sized tiles;
* multinomial logistic (more than two classes): the same Newton scheme with batched
  matrix products;
* ridge: closed form from sub-blocks of one shared Gram matrix; Pearson correlation and
  MSE on eval follow exactly from eval moments, without forming predictions.

It works on any torch device (CPU tested; CUDA written for) and is deterministic (no
randomness inside; the same inputs and settings give the same outputs). Inputs may be
float16 (as the cache stores them): they are upcast chunk by chunk and never modified.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from . import native
from .inputs import Inputs, check_C, check_dims, check_metrics, validate
from .kernels import SMALL_K, binary_eval, binary_pass_sums, compile_failed
from .prepared import Prepared, same_device
from .results import FitStats, ProbeFit, ProbeScores
from .scoring import EvalSet, score_chunk
from .solvers import RidgeSetup, fit_chunk, logistic_setup

__all__ = ["CPU_CHUNK", "ProbeEngine"]

#: the most probes of one chunk on the CPU for kernels that hold no [B, n] temporaries
CPU_CHUNK = 8192

logger = logging.getLogger(__name__)

_F32 = torch.float32


@dataclass(frozen=True)
class _Plan:
    """How the probes of one call are fitted: ``binary`` logistic; ``shared`` first k-1
    columns (a greedy step); ``use_compile`` the fused kernels; ``chunk`` probes at a time."""

    binary: bool
    shared: bool
    use_compile: bool
    chunk: int


class ProbeEngine:
    """Fit many small linear probes at once.

    Args:
        regression: ridge probes (True) or logistic-regression probes (False).
        C: inverse regularisation strength, as scikit-learn's ``LogisticRegression(C=C)``;
            ridge uses ``alpha = 1 / C``. A number, or an array ``[B]`` with one value per
            probe of each call (a grid of C values on the same dims is then one batched fit);
            :meth:`fit` / :meth:`fit_score` also take ``C=`` for one call. ``"auto"`` is not
            an engine setting: see :func:`probekit.probes.select_C`.
        device: torch device for the computation (explicit; never chosen for you).
        memory_budget: bytes the engine may hold in flight for one chunk of probes
            (default 2 GiB); the number of probes per chunk is derived from it.
        max_iter: maximum Newton iterations per probe.
        tol: Newton stops once the point after the last step is predicted within ``tol``
            of the optimum (max absolute change of any parameter, in standardised units,
            relative to the largest parameter when that exceeds 1): the step itself is
            below ``tol``, or Newton's quadratic convergence, with a safety factor of 4,
            puts the next one below it (:data:`.newton.QUADRATIC`). That last step is
            applied. A prediction, not a bound; measured within ``tol`` of tighter fits
            (1e-7 on MiniLM and random-BERT features, 1e-9 on heavy-tailed synthetic ones:
            benchmarks/README.md). With the default 1e-3,
            all pairs of MiniLM SST-2 features (10,000 examples) end within 2.6e-5 of a
            ``tol=1e-7`` solution, each in a single pass from the LDA start.
        chunk_size: probes per chunk (default: derived from ``memory_budget``; on CPU also
            capped at 8192 probes, or a 256 MiB working set for eager kernels other than
            the tiled pair kernels).
        compile: fuse the small-k logistic kernels with ``torch.compile``: True, False, or
            None (default) = only when the batch is big enough to repay compilation
            (``B * n >= compile_threshold``), and for every batch of pairs on the CPU where
            the native pair kernels (:mod:`.native`, no compilation per process) are built.
            Falls back to eager kernels, with a logged warning (and
            ``FitStats.compile_fallback``), where compilation is unavailable.
        compile_threshold: the ``B * n`` above which ``compile=None`` compiles (default 5e8,
            e.g. 50,000 probes on 10,000 examples: compiling costs tens of seconds the first
            time on a cold cache, seconds after that).
        progress: show a tqdm progress bar over chunks.

    Precision: the sums over examples run in float32 (compensated by cascade summation);
    parameters, Hessians and solves are float64. Newton stops as ``tol`` says, or when the
    step stops shrinking quadratically at the float32 floor (about 1e-6 relative).
    """

    def __init__(
        self,
        *,
        regression: bool = False,
        C: float | np.ndarray = 1.0,
        device: str | torch.device = "cpu",
        memory_budget: int = 2 * 2**30,
        max_iter: int = 100,
        tol: float = 1e-3,
        chunk_size: int | None = None,
        compile: bool | None = None,
        compile_threshold: float = 5e8,
        progress: bool = False,
    ):
        C = check_C(C)
        if memory_budget <= 0:
            raise ConfigError(f"memory_budget must be positive, got {memory_budget!r}")
        if max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {max_iter!r}")
        if not tol > 0:
            raise ConfigError(f"tol must be positive, got {tol!r}")
        self.regression = bool(regression)
        self.C = C
        self.device = torch.device(device)
        if self.device.type == "mps":
            raise ConfigError(
                "device mps: the probe engine solves in float64, which MPS lacks; "
                "probe on cpu (or cuda) and keep mps for extraction and fine-tuning"
            )
        self.memory_budget = int(memory_budget)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.chunk_size = chunk_size
        self.compile = compile
        self.compile_threshold = float(compile_threshold)
        self.progress = progress
        self._last_stats: FitStats | None = None

    def __repr__(self) -> str:
        return (
            f"ProbeEngine(regression={self.regression}, C={self.C}, device={str(self.device)!r}, "
            f"memory_budget={self.memory_budget}, max_iter={self.max_iter}, tol={self.tol})"
        )

    @property
    def last_stats_(self) -> dict[str, Any]:
        """Deprecated: the stats of the last call as a dict; use the ``stats`` of what
        :meth:`fit_score` / :meth:`fit` return (:class:`FitStats`)."""
        warnings.warn(
            "ProbeEngine.last_stats_ is deprecated; use the .stats of the result of "
            "fit_score() or fit() (a FitStats)",
            DeprecationWarning,
            stacklevel=2,
        )
        return {} if self._last_stats is None else self._last_stats.as_dict()

    # ------------------------------------------------------------------ public API
    def fit(self, X_train, y_train, dims, *, C=None) -> ProbeFit:
        """Fit ``B`` probes on ``X_train [n, D]`` (float16/32/64; never modified), each on its
        columns ``dims [B, k]`` (``C``: a number or ``[B]`` for this call; default the
        engine's). Returns a :class:`ProbeFit`."""
        return self._run(X_train, y_train, None, None, dims, metrics=(), keep_fit=True, C=C)[1]

    def fit_score(
        self,
        X_train,
        y_train,
        X_eval,
        y_eval,
        dims,
        metrics: Sequence[str] = ("accuracy",),
        *,
        C=None,
    ) -> ProbeScores:
        """Fit ``B`` probes on train and score each on eval in the same pass.

        Args:
            X_train: ``[n, D]`` features (float16/32/64; never modified).
            y_train: ``[n]`` class labels (classification) or targets (regression).
            X_eval: ``[m, D]``.
            y_eval: ``[m]``.
            dims: ``[B, k]`` int column indices; probe ``b`` uses ``X[:, dims[b]]``.
            metrics: metric names (see :mod:`probekit.metrics`).
            C: for this call only, a number or ``[B]`` (probe ``b`` fitted with ``C[b]``);
                default the engine's ``C``.

        Returns:
            ``{metric: [B] float64}`` for each requested metric, plus ``"loss"``: the mean
            evaluation log-loss (classification) or mean squared error (regression) of
            each probe, a smooth tie-breaker for selection. Its ``.stats`` is the call's
            :class:`FitStats` (``converged``, ``n_iter``, chunking, compilation).
        """
        return self._run(
            X_train, y_train, X_eval, y_eval, dims, metrics=metrics, keep_fit=False, C=C
        )[0]

    def prepare(self, X_train, y_train, X_eval=None, y_eval=None) -> Prepared:
        """Standardise every column of ``X_train [n, D]`` (and ``X_eval [m, D]``) once, on
        this engine's device, for many :meth:`fit_score_prepared` calls (the units of a scan,
        the steps of a search). Holds ``4 (n + m) D`` bytes on the device; the calls count
        it against ``memory_budget``. Inputs are never modified."""
        inp = validate(
            X_train, y_train, X_eval, y_eval, np.zeros((1, 1), np.int64), (), self.regression
        )
        return self._prepare(inp, np.arange(inp.X_train.shape[1]))

    def fit_score_prepared(
        self, prepared: Prepared, dims, metrics: Sequence[str] = ("accuracy",), *, C=None
    ) -> ProbeScores:
        """:meth:`fit_score` on :meth:`prepare`'s ``prepared`` data: the same probes, the same
        scores (``dims [B, k]`` are columns of the original features)."""
        t0 = time.perf_counter()
        if prepared.regression != self.regression:
            kind = "regression" if prepared.regression else "classification"
            raise ConfigError(f"prepared data are for {kind} probes; this engine is not")
        if not same_device(prepared.Xt.device, self.device):
            raise ConfigError(
                f"prepared data live on {prepared.Xt.device}, the engine on {self.device}"
            )
        if prepared.Xe is None:
            raise ConfigError("fit_score_prepared: the prepared data hold no evaluation set")
        dims = check_dims(dims, prepared.n_dims)
        metrics = check_metrics(metrics, self.regression)
        rows = prepared.rows(dims)
        return self._run_prepared(prepared, rows, dims, metrics, False, C, t0)[0]

    # ------------------------------------------------------------------ planning
    def _chunk(
        self, B: int, k: int, n: int, m: int, K: int, fixed: int, tiles: bool, shared: bool = False
    ) -> int:
        if self.chunk_size:
            return max(1, min(B, int(self.chunk_size)))
        # bytes per probe in flight, counting every intermediate an eager pass materialises;
        # the CPU's fused kernels and pair tiles materialise none of them: a probe holds its
        # sums, parameters and Newton state (the upper bound had split a 4,096-pair unit of
        # 10,000 examples into chunks of 3,970 and 126 probes, each paying a Newton round)
        # (pairs only: torch.compile's k = 4 pass holds one float32 [B, n] buffer)
        cpu_tiles = tiles and self.device.type == "cpu"
        if cpu_tiles and k == 2:
            per = 8 * 4 * (k + 1) ** 2
        elif self.regression:
            per = 4 * (2 * k * m + 3 * m) + 8 * (3 * k * k)
        elif shared:  # own column, predictor, probabilities, residuals, products; eval likewise
            per = 4 * (6 * n + 4 * m) + 8 * 4 * (k + 1) ** 2
        elif K <= 2:
            per = 4 * (2 * k * n + 8 * n + k * m + 4 * m) + 8 * 4 * (k + 1) ** 2
        else:
            p = k + 1
            per = 4 * (2 * p * n + (5 * K + 2) * n + (k + K + 2) * m + K * m) + 8 * 4 * (K * p) ** 2
        avail = self.memory_budget - fixed
        if avail < per:
            raise ConfigError(
                f"memory_budget={self.memory_budget} bytes is too small: the data take {fixed} "
                f"bytes and one probe of {k} dims needs {per} more"
            )
        chunk = min(B, avail // per)
        if self.device.type == "cpu":
            if cpu_tiles:  # nothing [B, n] in memory: fused kernels, or eager pairs' own tiles
                chunk = min(chunk, CPU_CHUNK)
            else:  # eager: a few hundred MiB per chunk (smaller chunks pay per-op overhead)
                chunk = min(chunk, max(8, (256 * 2**20) // per))
        return int(max(1, chunk))

    def _plan(self, prep: Prepared, dims_u: np.ndarray, fixed: int) -> _Plan:
        B, k = dims_u.shape
        n = prep.Xt.shape[1]
        m = 0 if prep.Xe is None else prep.Xe.shape[1]
        binary = not self.regression and prep.n_classes == 2
        # binary probes that all share their first k-1 columns (a greedy forward step): GEMMs
        # against the shared columns, warm-started from the fit on the shared columns alone
        # (not when every probe has the same columns, as a grid of C values on one set: then
        # the shared part would be all of them, and its pairwise products k^2/2 rows of n)
        shared = (
            binary
            and k >= 2
            and B >= 2
            and bool((dims_u[:, : k - 1] == dims_u[0, : k - 1]).all())
            and not bool((dims_u[:, k - 1] == dims_u[0, k - 1]).all())
        )
        fused = binary and k <= SMALL_K and not shared
        if self.compile is None:  # pairs on the CPU: the native kernels cost nothing to start
            cheap = k == 2 and self.device.type == "cpu" and native.available()
            use_compile = fused and (cheap or B * n >= self.compile_threshold)
        else:
            use_compile = bool(self.compile) and fused
        # eager pairs on the CPU run in pair_kernels' cache-sized tiles whatever the chunk, so
        # they take chunks as large as the fused kernels' (all pairs of 384: 145 chunks of 507
        # probes became 19 of 4,025, fewer part-filled tiles and Newton rounds: best of six
        # alternated rounds 2.48 s against 2.75 s)
        tiles = use_compile or (fused and k == 2 and self.device.type == "cpu")
        chunk = self._chunk(B, k, n, m, prep.n_classes, fixed, tiles=tiles, shared=shared)
        return _Plan(binary=binary, shared=shared, use_compile=use_compile, chunk=chunk)

    # ------------------------------------------------------------------ driver
    def _run(self, X_train, y_train, X_eval, y_eval, dims, *, metrics, keep_fit, C=None):
        t0 = time.perf_counter()
        inp = validate(X_train, y_train, X_eval, y_eval, dims, metrics, self.regression)
        # standardise the used columns once, on the device: Xt [Du, n], Xe [Du, m]
        cols, inv = np.unique(inp.dims, return_inverse=True)
        prep = self._prepare(inp, cols)
        return self._run_prepared(
            prep, inv.reshape(inp.dims.shape), inp.dims, inp.metrics, keep_fit, C, t0
        )

    def _run_prepared(
        self,
        prep: Prepared,
        dims_u: np.ndarray,
        dims: np.ndarray,
        metrics: tuple[str, ...],
        keep_fit: bool,
        C,
        t0: float,
    ):
        """Fit (and score) ``dims [B, k]`` (rows ``dims_u`` of ``prep.Xt``) on ``prep``."""
        B, k = dims.shape
        lam = self._penalties(C, B)
        scoring = prep.Xe is not None and not keep_fit
        plan = self._plan(prep, dims_u, self._resident_bytes(prep, dims_u, scoring))
        setup = self._setup(prep, dims_u, k, lam, plan)
        ev = prep.eval_set(metrics) if scoring else None
        d_dev = torch.as_tensor(dims_u, device=self.device)
        out = self._chunks(prep.Xt, d_dev, lam, setup, ev, plan, keep_fit)
        coefs, icepts, n_iter, converged, scores = out
        stats = self._fit_stats(B, k, plan, n_iter, converged, t0)
        fit = None
        if keep_fit:
            fit = ProbeFit(
                dims=dims,
                coef=np.concatenate(coefs),
                intercept=np.concatenate(icepts),
                mean=prep.mean,
                scale=prep.scale,
                classes=prep.classes,
                regression=self.regression,
                n_iter=n_iter,
                converged=converged,
                stats=stats,
            )
        return (ProbeScores(scores, stats) if scoring else None), fit

    def _penalties(self, C, B: int) -> np.ndarray:
        """``[B]`` float64 the penalty strengths ``1 / C`` (the engine's ``C`` when None; a
        number, or one per probe)."""
        Cb = self.C if C is None else check_C(C)
        if np.ndim(Cb) and np.size(Cb) != B:
            raise ConfigError(
                f"C: expected a number or an array [{B}] (one per probe), got {np.size(Cb)}"
            )
        return 1.0 / np.broadcast_to(Cb, B).astype(np.float64)

    def _resident_bytes(self, prep: Prepared, dims_u: np.ndarray, scoring: bool) -> int:
        """Bytes resident for the whole run: the standardised columns, and ``D_u x D_u``
        float64 moments (ridge: train Gram + eval covariance; binary logistic: LDA covariance
        + its Gram), counted for the columns this call uses (as ``fit_score``, which prepares
        only those: the same chunks, the same budget check; the rest of a prepared set is its
        owner's)."""
        Du = len(np.unique(dims_u))
        n_mom = (1 + int(scoring)) if self.regression else (2 if prep.n_classes == 2 else 0)
        return prep.nbytes * Du // len(prep.cols) + n_mom * Du**2 * 8

    def _setup(self, prep: Prepared, dims_u: np.ndarray, k: int, lam: np.ndarray, plan):
        """The solver's setup for probes of ``k`` columns at penalties ``lam [B]``: ridge's
        closed form, or the logistic Newton (shared columns when the plan says so)."""
        if self.regression:
            return prep.ridge(lam)
        return logistic_setup(
            prep.Xt,
            prep.Xe,
            prep.yi,
            prep.n_classes,
            lam,
            use_compile=plan.use_compile,
            k=k,
            shared_cols=dims_u[0, : k - 1] if plan.shared else None,
            max_iter=self.max_iter,
            tol=self.tol,
            lda=prep.lda,
        )

    def _fit_stats(self, B: int, k: int, plan, n_iter, converged, t0: float) -> FitStats:
        """The run's :class:`FitStats` (kept as the last run's), with a warning when some
        probes did not converge."""
        dev = self.device
        stats = FitStats(
            n_probes=B,
            k=k,
            chunk_size=plan.chunk,
            n_chunks=-(-B // plan.chunk),
            compiled=plan.use_compile,
            compile_fallback=plan.use_compile
            and any(compile_failed(fn, dev) for fn in (binary_pass_sums, binary_eval)),
            n_iter=n_iter,
            converged=converged,
            elapsed_s=time.perf_counter() - t0,
        )
        self._last_stats = stats
        if not converged.all():
            logger.warning(
                "%d of %d probes did not converge in max_iter=%d Newton iterations",
                int((~converged).sum()),
                B,
                self.max_iter,
            )
        logger.debug(
            "fitted %d probes of %d dims in %.2fs (chunk %d)", B, k, stats.elapsed_s, plan.chunk
        )
        return stats

    def _prepare(self, inp: Inputs, cols: np.ndarray) -> Prepared:
        """:class:`Prepared` of the validated inputs' columns ``cols [Du]``."""
        return Prepared.build(
            inp.X_train, inp.y_train, inp.X_eval, inp.y_eval, inp.classes, inp.yi,
            cols=cols, device=self.device, regression=self.regression,
        )  # fmt: skip

    def _chunks(
        self,
        Xt: torch.Tensor,
        dims_t: torch.Tensor,
        lam: np.ndarray,
        setup,
        ev: EvalSet | None,
        plan: _Plan,
        keep_fit: bool,
    ):
        """Fit (and score) the probes ``dims_t [B, k]`` (penalties ``lam [B]``) chunk by chunk;
        returns the kept
        coefficients and intercepts, ``n_iter [B]``, ``converged [B]`` and the scores."""
        B = len(dims_t)
        ybar = setup.ybar if isinstance(setup, RidgeSetup) else 0.0
        shared = None if isinstance(setup, RidgeSetup) else setup.shared
        scores: dict[str, list] = {mn: [] for mn in (ev.metrics if ev else ())}
        losses, coefs, icepts, iters, convs = [], [], [], [], []
        bar = tqdm(total=B, disable=not self.progress, desc="probes", unit="probe")
        for s in range(0, B, plan.chunk):
            d = dims_t[s : s + plan.chunk]
            fit = fit_chunk(
                Xt, d, setup, max_iter=self.max_iter, tol=self.tol, lam=lam[s : s + plan.chunk]
            )
            if keep_fit:
                coefs.append(fit.W.cpu().numpy())
                icepts.append(fit.b.cpu().numpy())
            iters.append(fit.n_iter)
            convs.append(fit.converged)
            if ev is not None:
                sc, loss = score_chunk(
                    ev, fit, d, ybar=ybar, shared=shared, use_compile=plan.use_compile
                )
                for mn, v in sc.items():
                    scores[mn].append(v)
                losses.append(loss)
            bar.update(len(d))
        bar.close()
        out = {}
        if ev is not None:
            out = {mn: np.concatenate(v).astype(np.float64) for mn, v in scores.items()}
            out["loss"] = np.concatenate(losses).astype(np.float64)
        return coefs, icepts, np.concatenate(iters), np.concatenate(convs), out
