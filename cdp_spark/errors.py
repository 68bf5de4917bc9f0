"""Errors the platform reports to users as one clear line plus a hint.

The CLI prints ``error: <message>`` and ``hint: <hint>`` for any :class:`CdpError` and shows the
stack trace only with ``--debug``.

Example:
    >>> raise ConfigError("storage.engine: got 'delta'", hint="use auto, delta-spark or delta-rs")
    Traceback (most recent call last):
    cdp_spark.errors.ConfigError: storage.engine: got 'delta'
"""

from __future__ import annotations


class CdpError(Exception):
    """Base class of the errors meant for the user, with an optional hint."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(CdpError):
    """The configuration is missing, malformed or holds a value that is not allowed."""


class SchemaError(CdpError):
    """A DataFrame lacks columns a layer boundary requires."""


class EngineUnavailableError(CdpError):
    """An engine was requested whose JVM classes are not on the Spark classpath."""
