"""The fine-tuning loop: a :class:`Trainer` that every fine-tuning verb runs.

A run loads the encoder (:func:`probekit.models.load_encoder`) and trains it (unless frozen)
with one :class:`~.heads.SelectedDimHead` per task; optimises with AdamW (weight decay on
weight matrices only), a linear warmup/decay schedule, gradient clipping and accumulation,
a separate learning rate for the heads and mixed precision on CUDA; evaluates after every
epoch; checkpoints (:class:`~.state.TrainState`) into ``OUT/checkpoint.pt`` every
``checkpoint_every`` optimizer steps and at each epoch end, so an interrupted run resumes
and ends bit-identical to an uninterrupted one (on the CPU, same thread count; GPU
attention kernels are not deterministic, so GPU runs agree only to rounding); and writes
``OUT/result.json``, ``OUT/model/`` (readable by ``probekit extract --model``) and
``OUT/heads.pt``. A finished run with the same run id is returned as it is, not retrained.

Each step of a run is one method (:meth:`Trainer.build`, :meth:`~Trainer.build_optimizer`,
:meth:`~Trainer.restore`, :meth:`~Trainer.train_epoch`, :meth:`~Trainer.evaluate`,
:meth:`~Trainer.save_checkpoint`, :meth:`~Trainer.write_results`, :meth:`~Trainer.finish`),
so that evaluation every N steps or early stopping go into one place.

Randomness: the global torch RNG drives dropout inside ``transformers`` models, so a run
keeps the caller's RNG state (CPU and the training device's), seeds its own, and restores
the caller's on return. Data order comes from ``numpy.random.default_rng([seed, epoch, task])``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import to_jsonable, write_json
from ..errors import ConfigError
from ..models import load_encoder, resolve_device, weights_hash
from ..tokenize import pad_id, uses_token_types
from .config import (
    CHECKPOINT_FILE,
    HEADS_FILE,
    MODEL_DIR,
    RESULT_FILE,
    FinetuneConfig,
    FinetuneResult,
    TaskRun,
)
from .data import encode_split, epoch_schedule, labelled, make_batch
from .evaluation import predict, score
from .freeze import apply_freeze
from .heads import SelectedDimHead, save_heads
from .network import EncoderWithHeads, autocast, head_loss, precision_settings
from .record import run_record
from .state import (
    EpochTally,
    TrainState,
    diff_keys,
    kept_rng,
    read_checkpoint,
    run_fingerprint,
    run_id,
)

logger = logging.getLogger(__name__)

__all__ = ["Trainer", "completed_record", "run_training"]


def completed_record(out: Path, rid: str) -> dict | None:
    """The ``result.json`` of a finished run with run id ``rid``, if all its files are there."""
    try:
        rec = json.loads((out / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        rec.get("complete")
        and rec.get("run_id") == rid
        and (out / HEADS_FILE).is_file()
        and (out / MODEL_DIR / "config.json").is_file()
    ):
        return rec
    return None


class Trainer:
    """One training run: an encoder with one head per task (see the module docstring).

    Args:
        config: optimisation settings (``config.task`` and ``config.head`` are not read
            here: each :class:`TaskRun` carries its data and bound head).
        tasks: the tasks, with unique names; at least one with training data.
        device: where to train (``"cpu"``, ``"cuda"``, a ``torch.device``; ``"auto"`` logs).
        out_dir: the run's directory (created).
        model: encoder to start from (default ``config.model``).
        mode: with several tasks, ``alternate`` (one task's batch per micro-step, round
            robin) or ``mixed`` (one batch of every task per micro-step, losses summed).
        kind: recorded in ``result.json``.
        extra_record: more fields for ``result.json``.
        progress: show tqdm bars.
    """

    def __init__(
        self,
        config: FinetuneConfig,
        tasks: Sequence[TaskRun],
        *,
        device: str | torch.device,
        out_dir: str | Path,
        model: str | None = None,
        mode: str = "alternate",
        kind: str = "finetune",
        extra_record: dict | None = None,
        progress: bool = True,
    ) -> None:
        if mode not in ("alternate", "mixed"):
            raise ConfigError(f"mode must be 'alternate' or 'mixed', got {mode!r}")
        self.names = [t.name for t in tasks]
        if len(set(self.names)) != len(self.names) or not self.names:
            raise ConfigError(f"task names must be unique and non-empty, got {self.names}")
        if not any(t.train is not None and t.train_head for t in tasks):
            raise ConfigError("no task has training data")
        self.config, self.tasks, self.mode, self.kind = config, list(tasks), mode, kind
        self.extra_record, self.progress = extra_record, progress
        self.device = resolve_device(device)
        self.precision = precision_settings(config.mixed_precision, self.device)
        self.out = Path(out_dir)
        self.model_name = model or config.model
        self.train_sets = {
            t.name: labelled(t.train) for t in tasks if t.train is not None and t.train_head
        }
        self.eval_sets = {t.name: labelled(t.eval) for t in tasks if t.eval is not None}
        self.fingerprint = run_fingerprint(
            config,
            model=self.model_name,
            mode=mode,
            precision=self.precision.name or "float32",
            heads={t.name: t.head for t in tasks},
            train={n: d.fingerprint() for n, d in self.train_sets.items()},
        )
        self.run_id = run_id(self.fingerprint)
        self.ckpt_path = self.out / CHECKPOINT_FILE

    # ------------------------------------------------------------------ the run
    def run(self, *, resume: bool = True, stop_after_steps: int | None = None) -> FinetuneResult:
        """Train (or resume, or return the finished run) and write the run's files.

        Args:
            resume: continue from ``OUT/checkpoint.pt`` when it exists (its settings must
                match) and reuse a finished run; False starts afresh.
            stop_after_steps: stop after this many optimizer steps in this call, leaving a
                checkpoint to resume from; the result then has ``complete=False``.
        """
        t_start = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt = self.checkpoint(resume)
        if ckpt is None:
            done = completed_record(self.out, self.run_id) if resume else None
            if done is not None:
                logger.info(
                    "%s: run already complete (run id %s); reusing it", self.out, self.run_id
                )
                return FinetuneResult(self.out, done["metrics"], done, True)
            self.refuse_other_completed_run()
            (self.out / RESULT_FILE).unlink(missing_ok=True)
        with kept_rng(self.device):
            torch.manual_seed(self.config.seed)
            self.build()
            self.build_optimizer()
            if ckpt is not None:
                self.restore(ckpt)
            self.clock = (t_start, self.state.elapsed_s)
            if self.train(stop_after_steps):
                return self.write_results(complete=False)
            return self.finish()

    def refuse_other_completed_run(self) -> None:
        """A completed run in ``OUT`` made with other settings is never replaced.

        Raises:
            ConfigError: naming the settings that differ and what to do.
        """
        try:
            rec = json.loads((self.out / RESULT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not (isinstance(rec, dict) and rec.get("complete")) or rec.get("run_id") == self.run_id:
            return
        diff = diff_keys(rec.get("fingerprint") or {}, self.fingerprint)
        raise ConfigError(
            f"{self.out}: holds a completed fine-tuning run made with other settings "
            f"(differs in: {', '.join(diff) or 'unknown (older run)'}); refusing to replace it: "
            "choose another --out, or delete the directory first"
        )

    def checkpoint(self, resume: bool) -> dict | None:
        """The checkpoint to resume from (None: start afresh; a refused one raises)."""
        if not self.ckpt_path.is_file():
            return None
        if not resume:
            self.ckpt_path.unlink()
            return None
        ckpt = read_checkpoint(self.ckpt_path, self.fingerprint, self.run_id)
        logger.info(
            "resuming %s from epoch %d, step %d", self.out, ckpt["epoch"], ckpt["global_step"]
        )
        return ckpt

    def elapsed(self) -> float:
        """Seconds of the run, earlier calls included."""
        return self.clock[1] + time.perf_counter() - self.clock[0]

    # ------------------------------------------------------------------ building
    def build(self) -> None:
        """Load the encoder, freeze it, make the heads and encode the data."""
        self.loaded = load_encoder(self.model_name, device=self.device)
        self.initial_hash = self.loaded.weights_hash
        self.freeze_info = apply_freeze(self.loaded.model, self.config.freeze)
        self.encoder_trains = self.freeze_info["encoder_trainable"] > 0
        self.heads: dict[str, SelectedDimHead] = {}
        for t in self.tasks:
            if t.head.input_size != self.loaded.hidden_size:
                raise ConfigError(
                    f"head {t.name!r}: input size {t.head.input_size} != hidden size "
                    f"{self.loaded.hidden_size} of {self.model_name}"
                )
            if not 0 <= t.head.layer < self.loaded.n_layers:
                raise ConfigError(
                    f"head {t.name!r}: layer {t.head.layer} out of range "
                    f"(model has {self.loaded.n_layers})"
                )
            h = SelectedDimHead(t.head)
            if t.head_state is not None:
                h.load_state_dict(t.head_state)
            elif t.head.regression and t.name in self.train_sets:
                mean, std = h.standardize_targets(self.train_sets[t.name].labels)
                logger.info(
                    "head %r: targets standardised (mean %.4g, std %.4g)", t.name, mean, std
                )
            h.requires_grad_(t.train_head)
            self.heads[t.name] = h
        self.net = EncoderWithHeads(self.loaded.model, self.heads, self.loaded.n_layers)
        self.net.to(self.device)
        tok, n = self.loaded.tokenizer, self.config.max_length
        self.pad, self.token_types = pad_id(tok), uses_token_types(self.loaded.model)
        self.train_encs = {k: encode_split(tok, d, n) for k, d in self.train_sets.items()}
        self.eval_encs = {k: encode_split(tok, d, n) for k, d in self.eval_sets.items()}
        self.order = [k for k in self.names if k in self.train_encs]
        self.sizes = [len(self.train_encs[k]) for k in self.order]

    def build_optimizer(self) -> None:
        """AdamW (no decay on 1-d parameters, a separate head lr), the warmup/decay schedule,
        the gradient scaler, and a fresh :class:`TrainState` holding them."""
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config
        groups: list[dict[str, Any]] = []
        parts = (
            ("encoder", self.net.encoder, cfg.lr),
            ("heads", self.net.heads, cfg.head_lr or cfg.lr),
        )
        for label, mod, lr in parts:
            ps = [p for p in mod.parameters() if p.requires_grad]
            decay, no_decay = [p for p in ps if p.ndim >= 2], [p for p in ps if p.ndim < 2]
            if decay:
                groups.append(
                    {"params": decay, "lr": lr, "weight_decay": cfg.weight_decay, "name": label}
                )
            if no_decay:
                groups.append(
                    {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{label}_no_decay"}
                )
        self.trainable = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        micro = len(epoch_schedule(self.sizes, cfg.batch_size, cfg.seed, 0, self.mode))
        self.steps_per_epoch = math.ceil(micro / cfg.grad_accum)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(cfg.warmup_ratio * self.total_steps), self.total_steps
        )
        scaler = torch.amp.GradScaler("cuda", enabled=self.precision.scaler)
        self.state = TrainState(
            self.net,
            optimizer,
            scheduler,
            scaler,
            self.device,
            self.run_id,
            self.fingerprint,
            self.initial_hash,
        )

    def restore(self, ckpt: dict) -> None:
        """Continue where the checkpoint ``ckpt`` left off."""
        self.state.load_state_dict(ckpt)
        self.initial_hash = self.state.initial_hash

    # ------------------------------------------------------------------ training
    def _train_mode(self) -> None:
        self.net.train()
        if not self.encoder_trains:
            self.net.encoder.eval()  # frozen encoder: a fixed feature extractor, dropout off

    def train(self, stop_after_steps: int | None) -> bool:
        """The remaining epochs; True when stopped early by ``stop_after_steps``."""
        self._train_mode()
        self.steps_this_call = 0
        st = self.state
        for epoch in range(st.epoch, self.config.epochs):
            if self.train_epoch(epoch, stop_after_steps):
                return True
            self.end_epoch(epoch)
            budget_spent = stop_after_steps is not None and self.steps_this_call >= stop_after_steps
            if budget_spent and epoch + 1 < self.config.epochs:
                return True
        return False

    def train_epoch(self, epoch: int, stop_after_steps: int | None) -> bool:
        """Optimizer steps of one epoch from where the state stands; True when stopped."""
        from tqdm.auto import tqdm

        cfg, st = self.config, self.state
        schedule = epoch_schedule(self.sizes, cfg.batch_size, cfg.seed, epoch, self.mode)
        self.epoch_start_micro = st.micro
        self.tally = EpochTally.start(self.device, st.partial if st.micro > 0 else None)
        self.epoch_t0 = time.perf_counter()
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=st.micro // cfg.grad_accum,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not self.progress,
            leave=False,
        )
        try:
            while st.micro < len(schedule):
                group = schedule[st.micro : st.micro + cfg.grad_accum]
                self.optimizer_step(group)
                st.micro += len(group)
                bar.update(1)
                stop = stop_after_steps is not None and self.steps_this_call >= stop_after_steps
                every = cfg.checkpoint_every and st.global_step % cfg.checkpoint_every == 0
                if st.micro < len(schedule) and (stop or every):
                    self.save_checkpoint(epoch, mid_epoch=True)
                    if stop:
                        return True
        finally:
            bar.close()
        return False

    def optimizer_step(self, group: list[list[tuple[int, np.ndarray]]]) -> None:
        """Forward and backward passes of ``group``'s micro-steps, then one optimizer step."""
        st, tally = self.state, self.tally
        for step_items in group:
            with autocast(self.device, self.precision):
                loss = torch.zeros((), device=self.device)
                for t_idx, idx in step_items:
                    n = self.order[t_idx]
                    batch = make_batch(
                        self.train_encs[n],
                        idx,
                        pad_id=self.pad,
                        token_types=self.token_types,
                        device=self.device,
                    )
                    logits = self.net(batch, [n], encoder_grad=self.encoder_trains)[n]
                    loss = loss + head_loss(self.heads[n], logits, batch["labels"])
                    tally.n_examples += len(idx)
            st.scaler.scale(loss / len(group)).backward()
            tally.loss_sum += loss.detach().float()
            tally.n_loss += 1
        if self.config.max_grad_norm > 0:
            st.scaler.unscale_(st.optimizer)
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm)
        st.scaler.step(st.optimizer)
        st.scaler.update()
        st.scheduler.step()
        st.optimizer.zero_grad(set_to_none=True)
        st.global_step += 1
        self.steps_this_call += 1

    def end_epoch(self, epoch: int) -> None:
        """Evaluate, add the epoch to the history, checkpoint and write ``result.json``."""
        st, tally = self.state, self.tally
        train_seconds = tally.train_seconds + time.perf_counter() - self.epoch_t0
        t_eval = time.perf_counter()
        metrics = self.evaluate()
        entry = {
            "epoch": epoch + 1,
            "steps": st.global_step,
            "train_loss": float(tally.loss_sum.item() / max(tally.n_loss, 1)),
            "train_examples": tally.n_examples,
            "train_seconds": train_seconds,
            "eval_seconds": time.perf_counter() - t_eval,
            "metrics": metrics,
        }
        if self.epoch_start_micro > 0:
            entry["resumed_at_step"] = self.epoch_start_micro // self.config.grad_accum
        st.history.append(entry)
        logger.info(
            "epoch %d/%d: loss %.4f %s",
            epoch + 1,
            self.config.epochs,
            entry["train_loss"],
            json.dumps(to_jsonable(metrics)),
        )
        st.epoch, st.micro = epoch + 1, 0
        self.save_checkpoint(epoch + 1, mid_epoch=False)
        self.write_results(complete=False)

    def evaluate(self) -> dict[str, dict[str, float]]:
        """``{task: metrics}`` of every head with eval data (training mode restored after)."""
        self.net.eval()
        metrics = {}
        for n, split in self.eval_encs.items():
            logits = predict(
                self.net,
                n,
                split,
                pad=self.pad,
                token_types=self.token_types,
                batch_size=self.config.eval_batch_size,
                device=self.device,
                precision=self.precision,
            )
            metrics[n] = score(
                self.heads[n].config, self.eval_sets[n].task, logits, self.eval_sets[n].labels
            )
        self._train_mode()
        return metrics

    # ------------------------------------------------------------------ files
    def save_checkpoint(self, epoch: int, *, mid_epoch: bool) -> None:
        """Write the :class:`TrainState` (with the running sums when ``mid_epoch``)."""
        st = self.state
        st.epoch = epoch
        st.elapsed_s = self.elapsed()
        train_s = self.tally.train_seconds + time.perf_counter() - self.epoch_t0
        st.partial = self.tally.to_dict(train_s) if mid_epoch else {}
        st.save(self.ckpt_path)

    def write_results(self, *, complete: bool) -> FinetuneResult:
        """Write ``result.json`` as the run stands and return it."""
        rec = run_record(self, complete=complete, elapsed_s=self.elapsed())
        if complete:
            rec["final_weights_hash"] = weights_hash(self.loaded.model)
        write_json(self.out / RESULT_FILE, rec)
        return FinetuneResult(self.out, rec["metrics"], rec, complete)

    def finish(self) -> FinetuneResult:
        """Save encoder, tokenizer and heads, write the final record, drop the checkpoint."""
        self.net.eval()
        mdir = self.out / MODEL_DIR
        self.loaded.model.save_pretrained(mdir)
        self.loaded.tokenizer.save_pretrained(mdir)
        save_heads(self.heads, self.out / HEADS_FILE)
        result = self.write_results(complete=True)
        self.ckpt_path.unlink(missing_ok=True)
        return result


def run_training(
    config: FinetuneConfig,
    tasks: Sequence[TaskRun],
    *,
    device: str | torch.device,
    out_dir: str | Path,
    model: str | None = None,
    mode: str = "alternate",
    kind: str = "finetune",
    extra_record: dict | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> FinetuneResult:
    """Train one encoder with one head per task: ``Trainer(...).run(...)`` (:class:`Trainer`)."""
    trainer = Trainer(
        config,
        tasks,
        device=device,
        out_dir=out_dir,
        model=model,
        mode=mode,
        kind=kind,
        extra_record=extra_record,
        progress=progress,
    )
    return trainer.run(resume=resume, stop_after_steps=stop_after_steps)
