"""Hashes of identifiers: plain SHA-256, and keyed HMAC-SHA256 in Python and as a Spark Column.

Spark has no HMAC function, but HMAC is two SHA-256 passes over byte strings
(RFC 2104: ``H((K xor opad) || H((K xor ipad) || m))``) and Spark has ``sha2``, ``unhex``
and binary ``concat``: :func:`hmac_sha256` builds it from those built-ins, so it runs in the
JVM (no Python UDF) and gives the same hex digest as Python's :mod:`hmac`.

The key comes from an environment variable named in ``conf/privacy.yaml``; it is never written
to a table, a log or the Delta log (hash predicates used for deletes are plain row hashes).

Example:
    >>> hmac_sha256_hex("ivan@mail.ru", b"k")[:12]
    '4de05406d02f'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig
from cdp_spark.errors import ConfigError

log = logging.getLogger(__name__)

SCHEME_HMAC = "hmac-sha256"
SCHEME_SHA256 = "sha256"
_BLOCK = 64  # SHA-256 block size in bytes


def sha256_hex(value: str) -> str:
    """SHA-256 hex digest of ``value`` (UTF-8), as Spark's ``sha2(col, 256)`` gives it.

    Example:
        >>> sha256_hex("a")[:8]
        'ca978112'
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def hmac_sha256_hex(value: str, key: bytes) -> str:
    """HMAC-SHA256 hex digest of ``value`` (UTF-8) under ``key``.

    Example:
        >>> len(hmac_sha256_hex("a", b"secret"))
        64
    """
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256(col: Column, key: bytes) -> Column:
    """HMAC-SHA256 hex digest of a string column under ``key``, with Spark built-ins only.

    Null stays null. Same digest as :func:`hmac_sha256_hex`.

    Example:
        >>> df.select(hmac_sha256(F.col("email_norm"), key).alias("email_hmac"))  # doctest: +SKIP
    """
    ipad, opad = _pads(key)
    inner = F.sha2(F.concat(F.lit(ipad), F.encode(col.cast("string"), "UTF-8")), 256)
    return F.sha2(F.concat(F.lit(opad), F.unhex(inner)), 256)


def identifier_hash(value: str, key: bytes | None) -> str:
    """The hash stored for an identifier: HMAC-SHA256 with ``key``, plain SHA-256 without.

    Example:
        >>> identifier_hash("a", None) == sha256_hex("a")
        True
    """
    return hmac_sha256_hex(value, key) if key else sha256_hex(value)


def identifier_hash_col(col: Column, key: bytes | None) -> Column:
    """:func:`identifier_hash` as a Spark Column.

    Example:
        >>> df.select(identifier_hash_col(F.col("email_norm"), key))  # doctest: +SKIP
    """
    return hmac_sha256(col, key) if key else F.sha2(col.cast("string"), 256)


def hash_scheme(key: bytes | None) -> str:
    """Which hash :func:`identifier_hash` uses with ``key``: ``hmac-sha256`` or ``sha256``.

    Example:
        >>> hash_scheme(None)
        'sha256'
    """
    return SCHEME_HMAC if key else SCHEME_SHA256


def privacy_key(cfg: CdpConfig, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The identifier-hash key from ``$<privacy.hash_key_env>``; None (with a warning) if unset.

    Raises:
        ConfigError: the variable is unset and ``privacy.require_hash_key`` is true.

    Example:
        >>> privacy_key(cfg, {"CDP_PRIVACY_KEY": "s3cret"})              # doctest: +SKIP
        b's3cret'
    """
    environ = os.environ if environ is None else environ
    name = cfg.privacy.hash_key_env
    value = environ.get(name) if name else None
    if value:
        return value.encode("utf-8")
    if cfg.privacy.require_hash_key:
        raise ConfigError(
            f"privacy.require_hash_key is true but ${name or '(privacy.hash_key_env unset)'} "
            "is not set",
            hint=f"export {name or 'CDP_PRIVACY_KEY'}=<a long random secret> (keep it stable: "
            "the suppression list is keyed by it)",
        )
    log.warning(
        "identifier hashes use plain SHA-256: set $%s for a keyed hash (phones are guessable)",
        name,
    )
    return None


def pseudonym_key(cfg: CdpConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The pseudonymisation secret from ``$<privacy.pseudonymisation.secret_env>``.

    Raises:
        ConfigError: the variable is unset or empty (never a default key).

    Example:
        >>> pseudonym_key(cfg, {"CDP_PSEUDONYM_KEY": "k"})                 # doctest: +SKIP
        b'k'
    """
    environ = os.environ if environ is None else environ
    name = cfg.privacy.pseudonymisation.secret_env
    value = environ.get(name)
    if not value:
        raise ConfigError(
            f"pseudonymisation needs a secret in the environment variable {name}, which is unset",
            hint=f"export {name}=<a long random secret> (from your secret store), or set "
            "privacy.pseudonymisation.enabled: false",
        )
    return value.encode("utf-8")


def pseudonymize(col: Column, key: bytes) -> Column:
    """A keyed pseudonym of ``col``: HMAC-SHA256 hex (stable per key, not reversible
    without it; joins on the pseudonym still work). Null stays null.

    Example:
        >>> df.withColumn("email_norm", pseudonymize(F.col("email_norm"), key))  # doctest: +SKIP
    """
    return hmac_sha256(col, key)
