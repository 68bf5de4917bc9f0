"""PII handling: log redaction, export column rules, pseudonymisation of analytic tables.

- :class:`RedactingFilter` / :func:`install_log_redaction`: no log line prints an e-mail
  address or a phone number, whatever the code that logs (the CLI and the jobs install it).
- :func:`exportable_columns` / :func:`drop_raw_pii`: an export keeps raw PII columns only when
  its destination is listed in ``privacy.raw_pii_destinations``.
- :func:`with_pseudonyms`: the columns of ``privacy.pseudonymisation.columns`` replaced by
  their keyed hash (HMAC-SHA256, secret from the environment).

Example:
    >>> redact("login of Ivan.Petrov@Mail.ru from +7 (912) 345-67-89")
    'login of <email> from <phone>'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig
from cdp_spark.privacy.hashing import pseudonym_key, pseudonymize

# The log filter lives in a Spark-free module; names kept here for existing callers.
from cdp_spark.privacy.redaction import RedactingFilter as RedactingFilter
from cdp_spark.privacy.redaction import install_log_redaction as install_log_redaction
from cdp_spark.privacy.redaction import redact as redact


def exportable_columns(cfg: CdpConfig, destination: str, columns: Iterable[str]) -> list[str]:
    """The columns an export to ``destination`` may carry: raw PII columns only when the
    destination is listed in ``privacy.raw_pii_destinations``.

    Example:
        >>> exportable_columns(cfg, "ads", ["person_id", "email", "churn_decile"])  # doctest: +SKIP
        ['person_id', 'churn_decile']
    """
    if destination in cfg.privacy.raw_pii_destinations:
        return list(columns)
    pii = {c.lower() for c in cfg.privacy.pii_columns}
    return [c for c in columns if c.lower() not in pii]


def drop_raw_pii(df: DataFrame, cfg: CdpConfig, destination: str) -> DataFrame:
    """``df`` without the raw PII columns ``destination`` may not receive.

    Example:
        >>> drop_raw_pii(profiles, cfg, "esp").columns                   # doctest: +SKIP
    """
    return df.select(*[F.col(f"`{c}`") for c in exportable_columns(cfg, destination, df.columns)])


def with_pseudonyms(
    df: DataFrame,
    cfg: CdpConfig,
    *,
    columns: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DataFrame:
    """``df`` with the pseudonymised columns replaced by HMAC-SHA256 hex digests.

    ``columns`` defaults to ``privacy.pseudonymisation.columns``; absent columns are skipped.
    The secret comes from ``$<privacy.pseudonymisation.secret_env>``; a missing secret is a
    :class:`~cdp_spark.errors.ConfigError` (never a default key).

    Example:
        >>> with_pseudonyms(features, cfg).select("email_norm").first()[0][:8]  # doctest: +SKIP
        '3f9a01c2'
    """
    wanted = set(cfg.privacy.pseudonymisation.columns if columns is None else columns)
    present = [c for c in df.columns if c in wanted]
    if not present:
        return df
    key = pseudonym_key(cfg, environ)
    return df.select(
        *[
            pseudonymize(F.col(f"`{c}`"), key).alias(c) if c in present else F.col(f"`{c}`")
            for c in df.columns
        ]
    )


__all__ = [
    "RedactingFilter",
    "drop_raw_pii",
    "exportable_columns",
    "install_log_redaction",
    "redact",
    "with_pseudonyms",
]
