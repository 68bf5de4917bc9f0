"""Deterministic hashing, bijections and fast (vectorised) id formatting.

Identifiers are functions of ``(seed, person, version)`` rather than stored strings: a person's
fourth cookie or second e-mail address can be rebuilt anywhere, in any worker, without keeping
millions of strings in memory, and the same seed always gives the same identifiers.

Example:
    >>> import numpy as np
    >>> h = mix(42, np.arange(3))
    >>> bool((mix(42, np.arange(3)) == h).all()), len(set(h.tolist()))
    (True, 3)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _splitmix(x: U64) -> U64:
    # splitmix64's finaliser: a fast, well-mixed bijection of 64-bit words.
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def mix(*parts: int | npt.ArrayLike) -> U64:
    """A 64-bit hash of non-negative integers (scalars or broadcastable arrays), at least 1-d.

    Example:
        >>> int(mix(1, 2)[0]) == int(mix(1, 2)[0]) != int(mix(2, 1)[0])
        True
    """
    h: U64 = np.zeros(1, dtype=np.uint64)
    for part in parts:
        arr = np.atleast_1d(np.asarray(part)).astype(np.uint64)
        h = _splitmix(h ^ arr)
    return h


def unit(h: U64) -> F64:
    """Uniform floats in [0, 1) from hashes (53 high bits).

    Example:
        >>> bool(((unit(mix(7, range(100))) >= 0) & (unit(mix(7, range(100))) < 1)).all())
        True
    """
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def pick(h: U64, cum: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Index into a categorical distribution given by cumulative weights ``cum`` (last = 1).

    Example:
        >>> pick(mix(1, range(5)), np.array([0.0, 1.0])).tolist()
        [1, 1, 1, 1, 1]
    """
    return np.searchsorted(cum, unit(h), side="right").clip(0, len(cum) - 1)


def cumulative(weights: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Normalised cumulative weights for :func:`pick` and ``searchsorted`` sampling.

    Example:
        >>> cumulative([1, 1, 2]).tolist()
        [0.25, 0.5, 1.0]
    """
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


class Bijection:
    """A keyed permutation of ``[0, modulus)`` for ``modulus`` a power of ten.

    Used to turn (person, slot) numbers into ids that look random yet can never collide: two
    distinct inputs below ``modulus`` always give distinct outputs.

    Example:
        >>> b = Bijection(10**6, key=3)
        >>> out = b(np.arange(10**6))
        >>> len(np.unique(out)) == 10**6
        True
    """

    def __init__(self, modulus: int, key: int) -> None:
        if modulus > 10**10:
            raise ValueError("modulus must be at most 10**10 (64-bit products)")
        self.modulus = modulus
        h = int(mix(key, 0xB1)[0])
        # Coprime with 10**k: odd and not a multiple of 5. Below 1.6e9 so x*a fits in 64 bits.
        a = h % 1_600_000_000 | 1
        if a % 5 == 0:
            a += 2
        self._a = np.uint64(a)
        self._b = np.uint64((h >> 32) % modulus)
        self._m = np.uint64(modulus)

    def __call__(self, x: npt.ArrayLike) -> U64:
        arr = np.atleast_1d(np.asarray(x)).astype(np.uint64)
        with np.errstate(over="ignore"):
            return (arr * self._a + self._b) % self._m


def hex_words(words: U64, width: int = 16) -> list[str]:
    """Lower-case hex strings of 64-bit words, the last ``width`` digits of each.

    Example:
        >>> hex_words(np.array([255], dtype=np.uint64), 4)
        ['00ff']
    """
    n = len(words)
    raw = words.astype(">u8").view(np.uint8).reshape(n, 8)
    nib = np.empty((n, 16), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 15
    return rows_to_str(np.take(_HEX, nib)[:, 16 - width :])


def uuids(hi: U64, lo: U64, *, upper: bool = False) -> list[str]:
    """RFC 4122 version-4 UUID strings from two 64-bit words each (vectorised).

    Example:
        >>> uuids(np.array([0], dtype=np.uint64), np.array([0], dtype=np.uint64))
        ['00000000-0000-4000-8000-000000000000']
    """
    n = len(hi)
    raw = np.concatenate(
        [
            hi.astype(">u8").view(np.uint8).reshape(n, 8),
            lo.astype(">u8").view(np.uint8).reshape(n, 8),
        ],
        axis=1,
    )
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nib = np.empty((n, 32), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 15
    table = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8) if upper else _HEX
    hexed = np.take(table, nib)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src, length in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst : dst + length] = hexed[:, src : src + length]
    return rows_to_str(out)


def rows_to_str(chars: npt.NDArray[np.uint8]) -> list[str]:
    """One ASCII string per row of a character matrix.

    Decoding one big buffer and slicing it is ~4x faster than ``astype("U..").tolist()``.

    Example:
        >>> rows_to_str(np.frombuffer(b"abcd", dtype=np.uint8).reshape(2, 2))
        ['ab', 'cd']
    """
    n, width = chars.shape
    text = np.ascontiguousarray(chars).tobytes().decode("ascii")
    return [text[i : i + width] for i in range(0, n * width, width)]
