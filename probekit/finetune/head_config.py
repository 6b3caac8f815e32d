"""What defines a selected-dimension head: :class:`HeadConfig` and its choices, without torch.

The head itself (:class:`~.heads.SelectedDimHead`, an ``nn.Module``) and its file live in
:mod:`.heads`; the settings live here so that reading them (``probekit finetune --help``
shows :class:`~.config.FinetuneConfig`'s defaults) imports no torch, nor numpy until a
selection is resolved. The names stay importable from :mod:`.heads` and
:mod:`probekit.finetune`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..pooling import POOLINGS, TOKENS
from ._aliases import renamed_fields

if TYPE_CHECKING:
    from ..tasks import TaskSpec

__all__ = ["ACTIVATION_NAMES", "POOLS", "TOKENS", "HeadConfig"]

#: pooling choices of a head (``TOKENS`` is the deprecated name)
POOLS = POOLINGS
#: activations of a 2-layer head's middle layer (the modules: :data:`.heads.ACTIVATIONS`)
ACTIVATION_NAMES = ("tanh", "relu", "gelu")
#: deprecated keys of a head record (written next to the new ones for one release)
_OLD_KEYS = {"token": "pool", "n_layers": "head_layers", "is_regression": "regression"}


@renamed_fields(_OLD_KEYS)
@dataclass
class HeadConfig:
    """Everything that defines a head (saved next to its weights).

    A config without ``input_size``/``num_labels`` is a template (what
    :class:`~probekit.finetune.config.FinetuneConfig` holds): its ``dims`` stay as given
    until :meth:`bind` fixes them for one encoder and task.

    Attributes:
        input_size: hidden size of the encoder (None: a template).
        num_labels: classes, or 1 for regression (None: a template).
        dims: selected dimensions (sorted), or None for all; a template keeps the selection
            as given (``"all"``, ``"3,17"``, ``"0-9"``, a list of ints).
        layer: hidden state read (0 = embeddings, -1 = last).
        pool: one of :data:`POOLS` (old name: ``token``).
        include_cls: for ``max_norm``, whether ``[CLS]`` may be chosen.
        head_layers: 1 (linear) or 2 (linear, activation, linear) (old name: ``n_layers``).
        hidden: width of the 2-layer head's middle layer (default: ``input_size``).
        activation: one of :data:`ACTIVATION_NAMES` (2-layer heads).
        dropout: dropout on the (masked) head input and, for 2-layer heads, the middle layer.
        regression: the task is regression, MSE on one output (old name: ``is_regression``).
        task: name of the task the head is for.
    """

    input_size: int | None = None
    num_labels: int | None = None
    dims: Any = None
    layer: int = -1
    pool: str = "cls"
    include_cls: bool = False
    head_layers: int = 1
    hidden: int | None = None
    activation: str = "tanh"
    dropout: float = 0.0
    regression: bool = False
    task: str = ""

    def __post_init__(self) -> None:
        if self.input_size is not None and self.dims is not None:
            from ..dims import head_dims  # numpy: only once a selection is resolved

            spec = self.dims if isinstance(self.dims, str) else list(self.dims)
            self.dims = head_dims(spec, self.input_size)
        elif self.dims is not None and not isinstance(self.dims, str):
            self.dims = [int(d) for d in self.dims]
        if self.pool not in POOLS:
            raise ConfigError(f"pool {self.pool!r} is not one of {', '.join(POOLS)}")
        if self.head_layers not in (1, 2):
            raise ConfigError(f"head_layers must be 1 or 2, got {self.head_layers}")
        if self.activation not in ACTIVATION_NAMES:
            raise ConfigError(
                f"head activation {self.activation!r} is not one of {', '.join(ACTIVATION_NAMES)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), got {self.dropout}")
        if self.num_labels is not None and self.num_labels < 1:
            raise ConfigError(f"num_labels must be at least 1, got {self.num_labels}")

    @property
    def bound(self) -> bool:
        """Whether the head is fixed to an encoder width and a label count."""
        return self.input_size is not None and self.num_labels is not None

    def bind(self, task: TaskSpec, hidden_size: int, n_layers: int, dims: Any = None) -> HeadConfig:
        """This head for ``task`` on an encoder of ``n_layers`` hidden states of ``hidden_size``.

        ``dims`` overrides ``self.dims``; the layer becomes non-negative.

        Raises:
            ConfigError: the layer is out of range, or the dims are not a valid selection.
        """
        if not -n_layers <= self.layer < n_layers:
            raise ConfigError(
                f"layer {self.layer} is out of range for a model with {n_layers} hidden states "
                f"(0 = embeddings .. {n_layers - 1}, or -1 = last)"
            )
        from ..dims import head_dims

        spec = self.dims if dims is None else dims
        return replace(
            self,
            input_size=hidden_size,
            num_labels=task.num_labels,
            dims=head_dims(
                spec if isinstance(spec, str) or spec is None else list(spec), hidden_size
            ),
            layer=self.layer % n_layers,
            regression=task.regression,
            task=task.name,
        )

    def legacy_dict(self) -> dict[str, Any]:
        """The record under the names of probekit 0.1 (what run ids are hashed from)."""
        d = self.to_dict(deprecated=False)
        return {next((o for o, n in _OLD_KEYS.items() if n == k), k): v for k, v in d.items()}

    def to_dict(self, *, deprecated: bool = True) -> dict[str, Any]:
        """The JSON record; ``deprecated`` adds the old keys (``token``, ``n_layers``,
        ``is_regression``) next to the new ones, for readers of probekit 0.1 files."""
        d = asdict(self)
        d["dims"] = (
            None
            if self.dims is None
            else (self.dims if isinstance(self.dims, str) else list(self.dims))
        )
        if deprecated:
            d.update({old: d[new] for old, new in _OLD_KEYS.items()})
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadConfig:
        """Read a record of :meth:`to_dict`, old keys (probekit 0.1 files) included."""
        d = dict(d)
        for old, new in _OLD_KEYS.items():
            if old in d:
                value = d.pop(old)
                d.setdefault(new, value)
        if isinstance(d.get("dims"), list):
            d["dims"] = tuple(int(x) for x in d["dims"])
        return cls(**d)
