"""The probekit exception hierarchy.

Every error a user can cause (bad data, a wrong path, a mismatched cache) is a
:class:`ProbekitError`; the CLI prints its message without a traceback. Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class ProbekitError(Exception):
    """Base class of every user-facing probekit error."""


class DataError(ProbekitError, ValueError):
    """Input data is missing, malformed, or inconsistent with the task (names the file/field)."""


class TaskError(ProbekitError, ValueError):
    """Unknown task, split, or an unavailable data source."""


class ModelError(ProbekitError):
    """A model name or path cannot be resolved to a BERT-family encoder."""


class CacheError(ProbekitError):
    """An activation cache is missing, partial, corrupt, or not a probekit file."""


class CacheMismatchError(CacheError):
    """A cache (or partial cache being resumed) was made with other settings or data."""


class ConfigError(ProbekitError, ValueError):
    """An argument value is invalid (names the argument and the value)."""
