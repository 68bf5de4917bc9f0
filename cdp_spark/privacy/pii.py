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

import logging
import re
from collections.abc import Iterable, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig
from cdp_spark.privacy.hashing import pseudonym_key, pseudonymize

# An e-mail address anywhere in a text (permissive on purpose: better mask too much).
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A run of digits with phone separators; masked when it holds 9 digits or more and is not a
# date or a time (logs are full of those).
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if digits < 9 or _DATE_LIKE.match(text.lstrip("+(")):
        return text
    return "<phone>"


def redact(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced by ``<email>`` / ``<phone>``.

    Dates, times and short numbers (counts, batch ids) are kept.

    Example:
        >>> redact("wrote 1200 rows on 2026-03-01 for 89123456789")
        'wrote 1200 rows on 2026-03-01 for <phone>'
    """
    return _PHONE.sub(_mask_phone, _EMAIL.sub("<email>", text))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts e-mails and phones from every record it passes.

    The message is formatted once (``msg % args``), redacted, and stored back without args,
    so handlers print the redacted text. Exception texts are redacted too.

    Example:
        >>> handler.addFilter(RedactingFilter())                       # doctest: +SKIP
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (default: the root).

    Filters on handlers (not on the logger) see the records every child logger propagates.
    Calling it twice adds nothing.

    Example:
        >>> logging.basicConfig(); install_log_redaction()            # doctest: +SKIP
    """
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


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
