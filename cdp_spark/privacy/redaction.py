"""Redaction of e-mails and phones in log records.

Standard library only, so every CLI command and job can install it without importing Spark
(``cdp profile`` answers without Spark and must stay quick to start).
"""

from __future__ import annotations

import logging
import re

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
