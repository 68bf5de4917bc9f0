"""Calendar helpers: time zones with EU summer time, seasonality curves, timestamp formatting.

All simulated times are int64 seconds (or milliseconds) since the Unix epoch in UTC. Local wall
time is UTC plus the person's offset for that day. Formatting is vectorised with
``numpy.datetime_as_string``; per-row Python work is only string concatenation.

Example:
    >>> import numpy as np
    >>> iso_local(np.array([0]), np.array([3 * 3600]))
    ['1970-01-01T03:00:00+03:00']
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from cdp_spark.generate.ids import rows_to_str
from cdp_spark.generate.vocab import TIMEZONES

DAY = 86_400
_EPOCH = date(1970, 1, 1)


def epoch_day(d: date) -> int:
    """Seconds from the epoch to midnight (UTC) of ``d``.

    Example:
        >>> epoch_day(date(1970, 1, 2))
        86400
    """
    return (d - _EPOCH).days * DAY


def _last_sunday(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def tz_offsets(d: date) -> npt.NDArray[np.int64]:
    """UTC offset in seconds of every zone in :data:`vocab.TIMEZONES` on day ``d``.

    Summer time is applied per day (the switching hour itself is not modelled).

    Example:
        >>> [int(o) // 3600 for o in tz_offsets(date(2026, 7, 1))]
        [3, 5, 7, 1, 2]
    """
    summer = _last_sunday(d.year, 3) <= d < _last_sunday(d.year, 10)
    return np.array(
        [(tz.std_offset_h + (1 if tz.eu_dst and summer else 0)) * 3600 for tz in TIMEZONES],
        dtype=np.int64,
    )


def offset_text(seconds: int) -> str:
    """``+03:00`` for 10800.

    Example:
        >>> offset_text(-5400)
        '-01:30'
    """
    sign = "-" if seconds < 0 else "+"
    h, m = divmod(abs(seconds) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def _two_digits(x: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    return np.stack([x // 10 + 48, x % 10 + 48], axis=1).astype(np.uint8)


def _const(n: int, text: bytes) -> npt.NDArray[np.uint8]:
    return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (n, len(text)))


def _format(
    seconds: npt.NDArray[np.int64],
    sep: bytes,
    millis: npt.NDArray[np.int64] | None = None,
    suffix: npt.NDArray[np.uint8] | None = None,
) -> list[str]:
    # Builds the characters of all timestamps as one uint8 matrix and decodes it once: about
    # ten times faster than datetime_as_string + per-row concatenation on millions of events.
    n = len(seconds)
    days = seconds // DAY
    sod = seconds - days * DAY
    uniq, inverse = np.unique(days, return_inverse=True)
    table = np.frombuffer(
        "".join(str(np.datetime64(int(d), "D")) for d in uniq.tolist()).encode("ascii"),
        dtype=np.uint8,
    ).reshape(len(uniq), 10)
    parts = [
        table[inverse.reshape(-1)],
        _const(n, sep),
        _two_digits(sod // 3600),
        _const(n, b":"),
        _two_digits(sod // 60 % 60),
        _const(n, b":"),
        _two_digits(sod % 60),
    ]
    if millis is not None:
        parts += [
            _const(n, b"."),
            _two_digits(millis // 10),
            (millis % 10 + 48)[:, None].astype(np.uint8),
        ]
    if suffix is not None:
        parts.append(suffix)
    return rows_to_str(np.concatenate(parts, axis=1))


def iso_local(utc: npt.NDArray[np.int64], offset: npt.NDArray[np.int64]) -> list[str]:
    """ISO 8601 local time with explicit offset, e.g. ``2026-01-05T14:03:11+03:00``.

    Example:
        >>> iso_local(np.array([1767225600]), np.array([0]))
        ['2026-01-01T00:00:00+00:00']
    """
    if len(utc) == 0:
        return []
    codes, inverse = np.unique(offset, return_inverse=True)
    table = np.frombuffer(
        "".join(offset_text(int(c)) for c in codes.tolist()).encode("ascii"), dtype=np.uint8
    ).reshape(len(codes), 6)
    return _format(utc + offset, b"T", suffix=table[inverse.reshape(-1)])


def iso_utc_ms(utc_ms: npt.NDArray[np.int64]) -> list[str]:
    """ISO 8601 UTC with milliseconds and ``Z``, e.g. ``2026-01-05T11:03:11.250Z``.

    Example:
        >>> iso_utc_ms(np.array([1500]))
        ['1970-01-01T00:00:01.500Z']
    """
    if len(utc_ms) == 0:
        return []
    seconds = utc_ms // 1000
    return _format(seconds, b"T", millis=utc_ms - seconds * 1000, suffix=_const(len(utc_ms), b"Z"))


def naive(seconds: npt.NDArray[np.int64]) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS`` without zone (the caller decides which wall clock it is).

    Example:
        >>> naive(np.array([3661]))
        ['1970-01-01 01:01:01']
    """
    if len(seconds) == 0:
        return []
    return _format(np.asarray(seconds, dtype=np.int64), b" ")


# --- seasonality --------------------------------------------------------------------------------
# Relative demand by weekday (Monday first) per channel: shops peak on Saturday, web shopping on
# Sunday evening, browsing is flat with a Sunday bump.
WEEKLY = {
    "online": (1.00, 0.95, 0.95, 1.00, 1.05, 1.10, 1.25),
    "pos": (0.80, 0.85, 0.90, 0.95, 1.15, 1.45, 1.10),
    "web": (1.05, 1.00, 1.00, 1.00, 0.90, 0.95, 1.15),
}
# (month, day, height, width in days): Feb 23, Mar 8, Sep 1, Black Friday, New Year gifts.
_BUMPS = ((2, 20, 0.25, 3.0), (3, 6, 0.55, 3.0), (8, 28, 0.30, 5.0), (11, 27, 0.90, 4.0),
          (12, 22, 0.70, 7.0))  # fmt: skip


def season(d: date, channel: str) -> float:
    """Demand multiplier for ``channel`` ("online", "pos" or "web") on day ``d``.

    A winter-high yearly wave, holiday bumps (Black Friday, New Year, 8 March...), the January
    holiday lull and the weekly shape.

    Example:
        >>> season(date(2026, 11, 27), "online") > 1.5 > season(date(2026, 7, 15), "online")
        True
    """
    doy = d.timetuple().tm_yday
    yearly = 1.0 + 0.15 * math.cos(2 * math.pi * (doy - 355) / 365.25)
    for month, day, height, width in _BUMPS:
        centre = date(d.year, month, day)
        gap = min(abs((d - centre).days), abs((d - centre.replace(year=d.year - 1)).days),
                  abs((d - centre.replace(year=d.year + 1)).days))  # fmt: skip
        yearly += height * math.exp(-0.5 * (gap / width) ** 2)
    if d.month == 1 and d.day <= 8 and channel == "pos":
        yearly *= 0.7  # Russian New Year holidays: shops quiet, people at home online
    return yearly * WEEKLY[channel][d.weekday()]


# Hour-of-day weights (local time) per activity.
HOURLY = {
    "web": (1, 0.6, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 3.5, 3.5, 3.5, 4, 4, 3.5, 3.5, 3.5, 4, 5, 6, 7,
            7, 5, 2.5),
    "online": (1, 0.5, 0.2, 0.1, 0.1, 0.3, 0.8, 1.5, 2.5, 3, 3.5, 3.5, 4, 4, 3.5, 3.5, 3.5, 4, 5,
               6, 7, 7, 5, 2.5),
    "pos": (0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 4, 3.5, 3.5, 4, 5, 6, 6, 5, 3, 1, 0),
    "support": (0, 0, 0, 0, 0, 0, 0, 0.5, 2, 4, 5, 5, 4, 4, 4.5, 4.5, 4, 3.5, 3, 2, 1.5, 1, 0.5, 0),
}  # fmt: skip
HOURLY_CUM = {k: np.cumsum(np.array(v) / sum(v)) for k, v in HOURLY.items()}
for _cum in HOURLY_CUM.values():
    _cum[-1] = 1.0


def seconds_of_day(rng: np.random.Generator, n: int, activity: str) -> npt.NDArray[np.int64]:
    """``n`` random local times of day (seconds) following :data:`HOURLY` for ``activity``.

    Example:
        >>> s = seconds_of_day(np.random.default_rng(0), 1000, "pos")
        >>> bool((s >= 9 * 3600).all() and (s < 23 * 3600).all())
        True
    """
    hours = np.searchsorted(HOURLY_CUM[activity], rng.random(n), side="right")
    return hours.astype(np.int64) * 3600 + rng.integers(0, 3600, n)
