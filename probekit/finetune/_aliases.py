"""Old keyword and attribute names of the fine-tuning settings, kept for one release.

:func:`renamed_fields` lets a dataclass accept an old keyword (``token=``) as its new field
(``pool``), or as a field of a nested dataclass field (``"head.pool"``), and read it back
under the old name; each use emits a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["renamed_fields"]

T = TypeVar("T")


def _warn(owner: str, old: str, new: str) -> None:
    warnings.warn(
        f"{owner}: {old!r} is deprecated and will be removed; use {new!r}",
        DeprecationWarning,
        stacklevel=3,
    )


def _resolve(obj: Any, path: str) -> tuple[Any, str]:
    *outer, last = path.split(".")
    for name in outer:
        obj = getattr(obj, name)
    return obj, last


def _alias(owner: str, old: str, new: str) -> property:
    def get(self: Any) -> Any:
        _warn(owner, old, new)
        obj, name = _resolve(self, new)
        return getattr(obj, name)

    def put(self: Any, value: Any) -> None:
        _warn(owner, old, new)
        obj, name = _resolve(self, new)
        setattr(obj, name, value)

    return property(get, put, doc=f"Deprecated alias of ``{new}``.")


def _default(cls: type, name: str) -> Any:
    f = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def renamed_fields(renames: Mapping[str, str]) -> Callable[[type[T]], type[T]]:
    """Class decorator: ``{old keyword: new field}``, the new one dotted for a nested field.

    A keyword given under both names must agree (:class:`ConfigError` otherwise).
    """

    def deco(cls: type[T]) -> type[T]:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kw: Any) -> None:
            nested: dict[str, dict[str, Any]] = {}
            for old in [k for k in kw if k in renames]:
                new, value = renames[old], kw.pop(old)
                _warn(cls.__name__, old, new)
                outer, _, inner = new.rpartition(".")
                target = nested.setdefault(outer, {}) if outer else kw
                key = inner if outer else new
                if key in target and target[key] != value:
                    raise ConfigError(
                        f"{cls.__name__}: {old}={value!r} and {new}={target[key]!r} disagree"
                    )
                target[key] = value
            for outer, changes in nested.items():
                base = kw.get(outer) or _default(cls, outer)
                kw[outer] = dataclasses.replace(base, **changes)
            init(self, *args, **kw)

        cls.__init__ = __init__  # type: ignore[method-assign]
        for old, new in renames.items():
            setattr(cls, old, _alias(cls.__name__, old, new))
        return cls

    return deco
