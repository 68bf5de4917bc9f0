"""Normalisation of identifiers and raw values: pure ``Column -> Column`` functions.

Silver standardisation types and cleans what the sources send; identity resolution then matches
on the results, so two spellings of one identifier must come out equal and junk must not. Every
function here takes a column (or a column name) and returns a column: no I/O, no actions. They
are Spark built-ins, except :func:`normalize_phone`, which needs Google's numbering plans (the
``phonenumbers`` library) and runs as a vectorised pandas UDF.

A value that cannot be normalised becomes null. The caller quarantines the rows where the input
was not null but the result is (DESIGN.md: bad input is never silently dropped)::

    df = df.withColumn("email_norm", normalize_email("email"))
    bad = df.where(F.col("email").isNotNull() & F.col("email_norm").isNull())

Overview:

=========================  ====================================================================
``normalize_email``        lower-cased, unwrapped, provider rules (gmail dots, ``+tags``)
``normalize_phone``        E.164 (``+79123456789``) through ``phonenumbers``
``normalize_name``         folded for matching: Latin script, no accents or punctuation
``name_match_key``         aggressive key for blocking: transliteration variants folded
``normalize_address``      folded, abbreviations in English and Russian to one token each
``address_match_key``      order-free key for blocking
``normalize_postcode``     compact upper-case form, checked per country where known
``normalize_country``      ISO 3166-1 alpha-2 from codes and English or Russian names
``parse_timestamp_utc``    ISO 8601, epoch and common local formats to a UTC timestamp
``parse_date``             the same for dates
``parse_amount``           ``"1 234,50"`` / ``"1,234.50"`` to ``decimal(12,2)``
``is_junk_email``          placeholder and disposable addresses
``is_junk_phone``          placeholder numbers (``0000000000``, ``1234567890``...)
=========================  ====================================================================
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from functools import reduce

import pandas as pd
import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

__all__ = [
    "ADDRESS_TOKENS",
    "DEFAULT_DATE_FORMATS",
    "DEFAULT_EMAIL_BLOCKLIST",
    "DEFAULT_PHONE_BLOCKLIST",
    "DEFAULT_TIMESTAMP_FORMATS",
    "EMAIL_DOMAIN_ALIASES",
    "EPOCH_MILLIS",
    "EPOCH_SECONDS",
    "ISO_8601",
    "PLUS_TAG_DOMAINS",
    "POSTCODE_FORMATS",
    "RFC_2822",
    "EmailBlocklist",
    "PhoneBlocklist",
    "address_match_key",
    "is_junk_email",
    "is_junk_phone",
    "name_match_key",
    "normalize_address",
    "normalize_country",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "normalize_postcode",
    "parse_amount",
    "parse_date",
    "parse_timestamp_utc",
]

ColumnOrName = Column | str


def _col(col: ColumnOrName) -> Column:
    return F.col(col) if isinstance(col, str) else col


# Spark's trim() removes ASCII spaces only; exports from Excel and web forms carry tabs,
# no-break spaces (U+00A0), narrow no-break spaces (U+202F, the Russian thousands separator),
# zero-width spaces and byte-order marks. btrim() takes them as a set: no regular expression.
_WHITESPACE = (
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def _strip(col: Column) -> Column:
    return F.btrim(col, F.lit(_WHITESPACE))


def _null_if_empty(col: Column) -> Column:
    return F.nullif(col, F.lit(""))


def _literal_map(mapping: Mapping[str, str]) -> Column:
    return F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv])


def _any(conditions: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a | b, conditions) if conditions else F.lit(False)


def _keep_if(value: Column, condition: Column) -> Column:
    """``value`` where ``condition`` is true, else null, computing ``value`` once.

    ``F.when(condition, value)`` would compute what ``value`` and ``condition`` share twice:
    Spark's subexpression elimination does not look into a CASE branch without ELSE. Here the
    value is in an always-evaluated position (an array), so the shared part is computed once.
    """
    return F.try_element_at(F.array(value), F.when(condition, F.lit(1)))


# ---------------------------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------------------------

# Domains of one mailbox provider that deliver to the same mailbox: mapped to one spelling.
# Yandex: every mailbox answers on all its domains (Yandex Mail help, "mailbox aliases").
EMAIL_DOMAIN_ALIASES: Mapping[str, str] = {
    "googlemail.com": "gmail.com",
    "ya.ru": "yandex.ru",
    "yandex.com": "yandex.ru",
    "yandex.by": "yandex.ru",
    "yandex.kz": "yandex.ru",
    "yandex.ua": "yandex.ru",
}

# Providers that deliver ``name+anything@domain`` to ``name@domain`` (sub-addressing), checked
# after EMAIL_DOMAIN_ALIASES. On any other domain the ``+`` may be a real part of the mailbox
# name, so it is kept. Yahoo is left out: its disposable addresses use ``-``, not ``+``.
PLUS_TAG_DOMAINS: frozenset[str] = frozenset(
    {
        # Google
        "gmail.com",
        # Microsoft Outlook.com
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "outlook.de",
        "outlook.fr",
        "hotmail.co.uk",
        "hotmail.de",
        "hotmail.fr",
        "hotmail.it",
        "live.ru",
        # Apple iCloud
        "icloud.com",
        "me.com",
        "mac.com",
        # Proton
        "protonmail.com",
        "protonmail.ch",
        "proton.me",
        "pm.me",
        # Fastmail
        "fastmail.com",
        "fastmail.fm",
        # Yandex (all of its domains map to yandex.ru first)
        "yandex.ru",
    }
)

# Dot-atom local part (RFC 5322 without quoted strings, which no consumer mailbox uses) and a
# domain of letter/digit labels with a letter TLD or an IDNA (xn--) TLD. Unicode letters are
# allowed (RFC 6531): почта.рф addresses exist and must not be dropped.
_EMAIL_ATOM = r"[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LABEL = r"[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?"
_EMAIL_RE = (
    "^" + _EMAIL_ATOM + r"(?:\." + _EMAIL_ATOM + ")*"
    "@(?:" + _EMAIL_LABEL + r"\.)+(?:\p{L}{2,63}|xn--[a-z0-9-]{1,59})$"
)
# Quotes and brackets that exports and copy-paste leave around an address.
_EMAIL_WRAPPERS = tuple("<>\"'`«»“”‘’()[]")


def normalize_email(
    col: ColumnOrName, *, plus_tag_domains: Iterable[str] = PLUS_TAG_DOMAINS
) -> Column:
    """Normalise an email address for matching; null when it is not a plausible address.

    Steps: trim (Unicode spaces too), lower-case, take the address out of a
    ``"Name <address>"`` form and a ``mailto:`` prefix, strip surrounding quotes and brackets,
    check the syntax (dot-atom local part of at most 64 characters, dotted domain with a
    letter or ``xn--`` top-level domain, at most 254 characters), map provider domain aliases
    (:data:`EMAIL_DOMAIN_ALIASES`: googlemail.com to gmail.com, Yandex domains to yandex.ru),
    drop the ``+tag`` on the domains in ``plus_tag_domains`` (default
    :data:`PLUS_TAG_DOMAINS`), and drop the dots of a gmail.com local part. The result still
    delivers to the same mailbox.

    Not handled (null): quoted local parts (``"john doe"@x.com``), IP-literal domains, several
    addresses in one value.

    Example:
        >>> df.select(normalize_email("email"))   # doctest: +SKIP
        ' <Ivan.Petrov+shop@GoogleMail.com> '  ->  'ivanpetrov@gmail.com'
        'Ivan <ivan@Mail.RU>'                  ->  'ivan@mail.ru'
        'ivan@mail'                            ->  None
    """
    s = F.lower(_strip(_col(col).cast("string")))
    # Rare repairs run behind a cheap test (contains, startswith): a regular expression pass
    # costs a few times more. CASE values that all hold `s` let Spark compute it once.
    # "Ivan Petrov <ivan@x.ru>": the address is what the angle brackets hold.
    s = F.when(s.contains("<"), F.regexp_replace(s, r"^.*<([^<>]+@[^<>]+)>\W*$", "$1")).otherwise(s)
    s = F.when(s.startswith("mailto:"), F.substring(s, 8, 1 << 16)).otherwise(s)
    wrapped = F.substring(s, 1, 1).isin(list(_EMAIL_WRAPPERS)) | F.substring(s, -1, 1).isin(
        list(_EMAIL_WRAPPERS)
    )
    s = F.when(wrapped, F.btrim(s, F.lit("".join(_EMAIL_WRAPPERS) + _WHITESPACE))).otherwise(s)
    local = F.substring_index(s, "@", 1)
    valid = s.rlike(_EMAIL_RE) & (F.length(s) <= 254) & (F.length(local) <= 64)
    domain = F.substring_index(s, "@", -1)
    domain = F.coalesce(F.try_element_at(_literal_map(EMAIL_DOMAIN_ALIASES), domain), domain)
    plus_domains = sorted({d.strip().lower() for d in plus_tag_domains} - {""})
    if plus_domains:
        local = F.when(domain.isin(plus_domains), F.substring_index(local, "+", 1)).otherwise(local)
    # Gmail ignores dots in the local part (Google: "Dots don't matter in Gmail addresses").
    local = F.when(domain == "gmail.com", F.replace(local, F.lit("."), F.lit(""))).otherwise(local)
    return _keep_if(F.concat(local, F.lit("@"), domain), valid & (local != ""))


def _alternatives(words: Iterable[str]) -> str:
    # Longest first, so that a word that is a prefix of another cannot match in its place.
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


# ---------------------------------------------------------------------------------------------
# Phone
# ---------------------------------------------------------------------------------------------

# Phone numbers that went through Excel or a float column: "79123456789.0", "7.9123456789E10".
_FLOAT_EXPORT = re.compile(r"\d+\.0+|\d(?:\.\d+)?[eE]\+?\d{1,2}")
# Entries larger than this are never phone numbers; phonenumbers rejects them slowly.
_MAX_PHONE_CHARS = 64
# Parsed values kept per Python worker task; reset when full so memory stays bounded.
_PHONE_CACHE_SIZE = 100_000


def _to_e164(raw: str | None, region: str | None) -> str | None:
    """E.164 for one raw value, or None when it is not a valid number (runs in the worker)."""
    if raw is None:
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_PHONE_CHARS:
        return None
    if _FLOAT_EXPORT.fullmatch(text):
        try:
            value = Decimal(text)
        except InvalidOperation:
            return None
        if value != value.to_integral_value():
            return None
        text = str(int(value))
    # "00" is the international call prefix almost everywhere, but phonenumbers only knows the
    # default region's own prefix (Russia's is 810), and would read "00 44 ..." as national.
    text = re.sub(r"^\(?00\)?\s*(?=[1-9])", "+", text)
    number = _parse_valid(text, region or None)
    if number is None and not text.startswith("+") and len(re.sub(r"\D", "", text)) >= 11:
        # International numbers written without the "+" ("380441234567", "79123456789" for a
        # US default region): tried only when the national reading is not valid, and only for
        # 11 digits or more, so that a mistyped national number does not become a foreign one.
        number = _parse_valid("+" + text, None)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_valid(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _e164_batches(batches: Iterator[tuple[pd.Series, pd.Series]]) -> Iterator[pd.Series]:
    # Iterator form: the cache lives for the whole task (partition), not only for one Arrow
    # batch, because the same numbers recur across batches (events of one customer).
    cache: dict[tuple[str | None, str | None], str | None] = {}
    for values, regions in batches:
        if len(cache) > _PHONE_CACHE_SIZE:
            cache.clear()
        out = []
        for key in zip(values.tolist(), regions.tolist(), strict=True):
            if key not in cache:
                cache[key] = _to_e164(*key)
            out.append(cache[key])
        yield pd.Series(out, dtype=object)


def normalize_phone(col: ColumnOrName, default_region: str | Column = "RU") -> Column:
    """Normalise a phone number to E.164 (``+79123456789``); null when invalid.

    Parsing and validation are Google's libphonenumber rules (the ``phonenumbers`` package):
    a number must be valid for its numbering plan, not merely have a plausible length.
    Numbers without a country code are read in ``default_region`` (ISO 3166 alpha-2, e.g. the
    store's country), which may also be a column to use each record's own country. Handled:
    spaces, brackets and dashes (``+7 (912) 345-67-89``), national trunk prefixes (Russian
    ``8 912 ...``), ``00`` and ``810`` international prefixes, international numbers written
    without ``+`` (when the national reading is invalid and there are 11 digits or more),
    numbers that went through a float column (``79123456789.0``), text around the number
    (``тел. 8-912-...``). Extensions (``ext. 12``, ``доб. 123``, ``#12``) are dropped: E.164
    has none. Repeated values are parsed once per Spark task. A region column that is null
    or unknown leaves only numbers written with their country code.

    Raises ValueError when ``default_region`` is a string that phonenumbers does not know.

    Example:
        >>> df.select(normalize_phone("phone"))   # doctest: +SKIP
        '8 (912) 345-67-89'     ->  '+79123456789'
        '00 44 20 7946 0958'    ->  '+442079460958'
        '0000000000'            ->  None
        >>> df.select(normalize_phone("phone", default_region="GB"))   # doctest: +SKIP
        '020 7946 0958'         ->  '+442079460958'
    """
    if isinstance(default_region, str):
        region = default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"default_region {default_region!r} is not a region phonenumbers knows; "
                "use an ISO 3166 alpha-2 code such as 'RU' or 'GB'"
            )
        region_col = F.lit(region)
    else:
        region_col = F.upper(F.trim(default_region))
    # Built per call, not at import: workers import this module without a Spark context.
    e164 = pandas_udf(_e164_batches, StringType())  # type: ignore[call-overload]
    result: Column = e164(_col(col).cast("string"), region_col)
    return result


# ---------------------------------------------------------------------------------------------
# Names: transliteration and folding (shared with addresses and countries)
# ---------------------------------------------------------------------------------------------

# Russian Cyrillic to Latin as in ICAO Doc 9303, the scheme of Russian international passports
# since 2014 (so it matches the Latin names customers copy from their passports and airline
# bookings): ё->e, й->i, х->kh, ц->ts, щ->shch, ъ->ie, ь dropped, ю->iu, я->ia. Letters of
# Ukrainian, Belarusian and Kazakh are added by their Russian reading.
_CYRILLIC_SINGLE: Mapping[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "з": "z", "и": "i",
    "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s",
    "т": "t", "у": "u", "ф": "f", "ы": "y", "э": "e",
    "і": "i", "ї": "i", "ґ": "g", "ў": "u",
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
}  # fmt: skip
_CYRILLIC_MULTI: Mapping[str, str] = {
    "ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "ie", "ю": "iu",
    "я": "ia", "є": "ie",
}  # fmt: skip
_DELETED = "ь"

# Latin letters that Unicode does not decompose into a base letter and accents.
_LATIN_SPECIAL: Mapping[str, str] = {
    "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o",
    "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th",
    "ı": "i", "ħ": "h", "Ħ": "h", "ŧ": "t", "Ŧ": "t", "ŋ": "ng", "Ŋ": "ng", "ƒ": "f",
    "ĸ": "k", "ƶ": "z", "Ƶ": "z", "ǥ": "g", "Ǥ": "g", "ɨ": "i", "Ɨ": "i", "ƀ": "b",
}  # fmt: skip


def _latin_folds() -> dict[str, str]:
    # Accented Latin letters (Latin-1, Extended-A/B, Extended Additional for Vietnamese) to their
    # base letters, from the Unicode decomposition: a table of the standard library's Unicode
    # data, so it does not change with a third-party package's version.
    table: dict[str, str] = {}
    for block in (range(0x00C0, 0x0250), range(0x1E00, 0x1F00)):
        for code in block:
            char = chr(code)
            # Keep the letters of the decomposition: drops accents, and the middle dot of ŀ and
            # the apostrophe of ŉ; ǽ and ǿ decompose to æ and ø, folded as below.
            letters = [c for c in unicodedata.normalize("NFKD", char) if c.isalpha()]
            base = "".join(_LATIN_SPECIAL.get(c, c) for c in letters).lower()
            if base and base.isascii() and base != char:
                table[char] = base
    table.update(_LATIN_SPECIAL)
    return table


_FOLDS: dict[str, str] = {**_latin_folds(), **_CYRILLIC_SINGLE, **_CYRILLIC_MULTI}
_SINGLE = {k: v for k, v in _FOLDS.items() if len(v) == 1}
# Spark lower-cases before these apply, so upper-case keys of multi-letter folds are not needed.
_MULTI = {k: v for k, v in _FOLDS.items() if len(v) > 1 and k == k.lower()}
# translate() deletes the characters of `matching` that have no counterpart in `replace`.
_TRANSLATE_FROM = "".join(_SINGLE) + _DELETED
_TRANSLATE_TO = "".join(_SINGLE.values())
# Apostrophes join (O'Brien, Il'ya, d'Artagnan); every other non-letter separates words.
_APOSTROPHES = r"['’‘ʼ`´ʻ]"


def _transliterate(col: Column) -> Column:
    """Lower-case, Cyrillic to Latin (ICAO), accents and apostrophes removed.

    Letters of other scripts pass through. Punctuation and spaces are kept.
    """
    s = F.translate(F.lower(col), _TRANSLATE_FROM, _TRANSLATE_TO)
    for src, dst in _MULTI.items():
        s = F.replace(s, F.lit(src), F.lit(dst))
    # Combining marks (decomposed input e + U+0301, the dot lower() leaves on Turkish İ) and
    # apostrophes, in one pass.
    return F.regexp_replace(s, r"[\p{M}" + _APOSTROPHES[1:-1] + "]+", "")


def _fold(col: Column) -> Column:
    s = F.trim(F.regexp_replace(_transliterate(col), r"[^\p{L}\p{N}]+", " "))
    return _null_if_empty(s)


def _fold_py(text: str) -> str:
    """Python twin of ``_fold`` for the lookup tables built on the driver (country names)."""
    s = "".join(_FOLDS.get(ch, ch) for ch in text.lower() if ch != _DELETED)
    s = "".join(ch for ch in s if not unicodedata.category(ch).startswith("M"))
    s = re.sub(_APOSTROPHES, "", s)
    return re.sub(r"[\W_]+", " ", s).strip()


def normalize_name(col: ColumnOrName) -> Column:
    """Fold a person's name for matching and display: one Latin, lower-case spelling.

    Cyrillic is transliterated as in Russian passports (ICAO Doc 9303: Илья -> ilia,
    Юлия -> iuliia, Щукин -> shchukin), accents are stripped (José -> jose, Łukasz -> lukasz,
    Straße -> strasse), apostrophes are removed (O'Brien -> obrien, Il'ya -> ilya), every
    other punctuation becomes a space (Anna-Maria -> anna maria), whitespace is collapsed.
    Letters of other scripts (Greek, CJK, Arabic...) are kept, lower-cased. Word order and
    transliteration variants are kept: see :func:`name_match_key` for those. Null when
    nothing is left.

    Example:
        >>> df.select(normalize_name("first_name"))   # doctest: +SKIP
        '  ИЛЬЯ '          ->  'ilia'
        "D'Artagnan-José"  ->  'dartagnan jose'
        ' - '              ->  None
    """
    return _fold(_col(col).cast("string"))


# Folds of the variants that transliteration schemes (ICAO, BGN/PCGN, GOST, German, French,
# passports of 1997-2013) produce for one Russian name, applied in this order to a folded name.
# Plain replacements and translate() where they suffice: a regular expression pass costs more.
_NAME_KEY_STEPS: Sequence[tuple[str, str, str]] = (
    ("replace", "kh", "h"),  # Х: Mikhail (ICAO, BGN) / Mihail
    ("replace", "x", "ks"),  # Alexei / Aleksei, Xenia / Kseniia
    ("replace", "tc", "ts"),  # Ц in 2010-2013 passports: Kuznetcov / Kuznetsov
    # German w (Wladimir / Vladimir); Й, Ы, Я (ya/ia/ja), Ю (yu/iu/ju), endings -iy/-ij/-y
    ("translate", "wjy", "vii"),
    ("regex", r"c(?![eih])", "k"),  # Nicolai / Nikolai, Victor / Viktor (not ch, ce, ci)
    ("replace", "shch", "sh"),  # Щ: Shchukin / Schukin / Shukin
    ("replace", "sch", "sh"),
    # Е as ye/ie at a word start or after a vowel (Yelena / Elena, Andreyev / Andreev), and
    # Ё as yo/io after a consonant, inside a word (Fyodor / Fedor, Artyom / Artem)
    ("regex", r"(?<!\p{L})ie|(?<=[aeiou])ie|(?<=[bdfghklmnprstvz])io(?=\p{L})", "e"),
    ("regex", r"(\p{L})\1+", "$1"),  # doubled letters: Kirill / Kiril, Iuliia / Iulia
)


def _variant_fold(col: Column) -> Column:
    for kind, old, new in _NAME_KEY_STEPS:
        if kind == "replace":
            col = F.replace(col, F.lit(old), F.lit(new))
        elif kind == "translate":
            col = F.translate(col, old, new)
        else:
            col = F.regexp_replace(col, old, new)
    return col


def _sorted_tokens(col: Column) -> Column:
    return _null_if_empty(F.trim(F.array_join(F.array_sort(F.split(col, " +")), " ")))


def name_match_key(col: ColumnOrName) -> Column:
    """An aggressive name key for blocking and exact-key matching; lossy by design.

    :func:`normalize_name`, then the transliteration variants of Russian names folded (see
    ``_NAME_KEY_STEPS``: kh->h, x->ks, w->v, tc->ts, c->k, shch/sch->sh, y/j->i, ye/ie->e at
    the start of a word or after a vowel, yo/io->e after a consonant, doubled letters single),
    then the words sorted, so that surname-first and given-name-first orders agree. Илья, Ilya,
    Ilia, Il'ya and Ilja all give ``ilia``; Юлия, Yulia, Iuliia and Julia give ``iulia``;
    "Иванов Иван" and "Ivan Ivanov" give ``ivan ivanov``. Unrelated names can share a key
    (Ian / Jan): use it to find candidates, not as proof of a match. Not folded: different
    forms of a name (Alexander / Aleksandr, Peter / Petr), German ch for Х (Michail), patronymics
    present on one side only.

    Example:
        >>> df.select(name_match_key("full_name"))   # doctest: +SKIP
        'Юлия Щукина'     ->  'iulia shukina'
        'SHCHUKINA Yulia' ->  'iulia shukina'
    """
    return _sorted_tokens(_variant_fold(normalize_name(col)))


# ---------------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------------

# Canonical token -> the forms that mean it, after transliteration (so Russian forms are in their
# ICAO Latin spelling: улица -> ulitsa, ул. -> ul). A form matches a whole token, with or
# without a trailing dot.
ADDRESS_TOKENS: Mapping[str, tuple[str, ...]] = {
    "st": ("street", "strasse", "str", "st", "ulitsa", "ulica", "ul"),
    "ave": ("avenue", "ave", "av", "prospekt", "prosp", "pr-kt", "pr-t", "pr"),
    "rd": ("road", "rd"),
    "hwy": ("highway", "hwy", "shosse", "sh"),
    "ln": ("lane", "ln", "pereulok", "per"),
    "blvd": ("boulevard", "blvd", "bulvar", "b-r", "bul"),
    "sq": ("square", "sq", "ploshchad", "pl"),
    "emb": ("embankment", "naberezhnaia", "nab", "emb"),
    "dr": ("drive", "dr"),
    "mkr": ("mikroraion", "mkrn", "mkr"),
    "obl": ("oblast", "obl"),
    "raion": ("raion", "r-n"),
    "apt": ("apartments", "apartment", "apt", "flat", "kvartira", "kv"),
    "bldg": ("building", "bldg", "bld", "korpus", "korp"),
    "stroenie": ("stroenie",),
    "office": ("office", "ofis", "ofc"),
}
# Street-type tokens: dropped by address_match_key, where "Lenina 5" must meet "ul. Lenina 5".
_STREET_TYPES = ("st", "ave", "rd", "hwy", "ln", "blvd", "sq", "emb", "dr", "mkr")
# Tokens whose value follows them: kept glued to it by address_match_key.
_UNIT_TOKENS = ("apt", "bldg", "stroenie", "office")
# Tokens read with the next one: a house marker before a number (д. 5, дом 5, No. 5) is
# dropped, к. 2 is a korpus and оф. 4 an office only before a number.
_HOUSE_MARKERS = ("d", "dom", "house", "no", "nr")
_NUMBER_MARKERS: Mapping[str, str] = {"k": "bldg", "of": "office"}
# Tokens that mark a city before its name: г. Москва.
_CITY_MARKERS = ("g", "gor", "gorod")
# Form -> canonical token; hyphenated forms (pr-t, b-r) are joined before the lookup.
_ADDRESS_LOOKUP = {
    form.replace("-", ""): canonical
    for canonical, forms in ADDRESS_TOKENS.items()
    for form in forms
}
_HYPHENATED = [
    form.split("-") for forms in ADDRESS_TOKENS.values() for form in forms if "-" in form
]

_B = r"(?<![\p{L}\p{N}])"  # token start (Java's \b is ASCII-only on JDK 19+)
_E = r"(?![\p{L}\p{N}])"  # token end


def _address_tokens(col: Column) -> Column:
    """The tokens of an address, transliterated and canonical (array<string>, may hold null)."""
    s = F.lower(col.cast("string"))
    # стр. is a "structure" (строение); transliterated it would read as a German Straße (str.).
    s = F.regexp_replace(s, r"стр(?<![\p{L}\p{N}]стр)" + _E, "stroenie")
    s = _transliterate(s)
    heads = "|".join(sorted({h for h, _ in _HYPHENATED}))
    tails = "|".join(sorted({t for _, t in _HYPHENATED}))
    s = F.regexp_replace(s, _B + "(" + heads + ")-(" + tails + ")" + _E, "$1$2")
    # Markers read with their neighbour, while the text is whole: a house marker before a
    # number and a city marker before a name go; к. and оф. before a number become the tokens
    # knr and ofnr, which the lookup below maps.
    house, city = "|".join(_HOUSE_MARKERS), "|".join(_CITY_MARKERS)
    sep = r"[^\p{L}\p{N}]"
    s = F.regexp_replace(s, _B + f"(?:(?:{house}){sep}*(?=\\d)|(?:{city}){sep}+(?=\\p{{L}}))", "")
    s = F.regexp_replace(s, _B + "(" + "|".join(_NUMBER_MARKERS) + f"){sep}*(?=\\d)", "$1nr ")
    # Cut at every non-letter-or-digit, and between a letter and a digit (кв12 -> kv 12; 5а
    # stays whole). Then one lookup per token: cheaper than a regular expression per form. A
    # hash test first, as most tokens are names and numbers; empty tokens become null, which
    # array_join skips.
    tokens = F.split(s, sep + r"+|(?<=\p{L})(?=\p{N})")
    table = {**_ADDRESS_LOOKUP, **{k + "nr": v for k, v in _NUMBER_MARKERS.items()}}
    lookup = _literal_map(table)
    return F.transform(
        tokens,
        lambda tok: F.when(tok.isin(sorted(table)), lookup[tok]).when(tok != "", tok),
    )


def _join_address(tokens: Column) -> Column:
    s = F.array_join(tokens, " ")
    # A letter after a house number belongs to it: 5 а, 5-А -> 5a.
    s = F.regexp_replace(s, r"(\d) (\p{L})(?![\p{L}\p{N}])", "$1$2")
    return _null_if_empty(s)


def normalize_address(col: ColumnOrName) -> Column:
    """Fold a street address so that spellings of one address agree.

    Guaranteed equal for the same address: letter case; Cyrillic or its ICAO transliteration;
    accents; punctuation and spacing; any form in :data:`ADDRESS_TOKENS` in English or Russian,
    full or abbreviated, with or without a dot (ул. / улица / ul / street / st. -> ``st``,
    пр-т / проспект / avenue -> ``ave``, кв. / apartment / flat -> ``apt``, корп. / к. before
    a number -> ``bldg``, стр. -> ``stroenie``, оф. before a number -> ``office``);
    house-number markers д. / дом / No. / № before a number dropped (``д. 5`` -> ``5``); a
    letter after a house number joined (5 а / 5-А / 5a -> ``5a``); г. / гор. / город before a
    name dropped (a one-letter ``g`` token before a word goes too).

    Not guaranteed: word order (English puts the number first and the street type last), a
    missing street type, transliteration variants of the street name (Tverskaya / Tverskaia).
    :func:`address_match_key` folds those too. So "ул. Ленина, д. 5" and "ul Lenina, 5" both
    give ``st lenina 5``, and "Lenina st 5" gives ``lenina st 5``: the same tokens.

    Example:
        >>> df.select(normalize_address("address"))   # doctest: +SKIP
        'ул. Ленина, д. 5, кв. 12'  ->  'st lenina 5 apt 12'
        'Lenina St., 5, Apt 12'     ->  'lenina st 5 apt 12'
    """
    return _join_address(_address_tokens(_col(col)))


def address_match_key(col: ColumnOrName) -> Column:
    """An order-free address key for blocking; lossy by design.

    :func:`normalize_address`, then street-type tokens dropped (``st``, ``ave``, ``rd``...),
    unit markers glued to their value (``apt 12`` -> ``apt12``, so that apartment 12 of house
    5 differs from apartment 5 of house 12), the name-variant folds of :func:`name_match_key`
    applied (Tverskaya / Tverskaia, Leninsky / Leninskii), and the tokens sorted. "ул. Ленина,
    д. 5", "Lenina st 5", "5 Lenina Street" and "ul Lenina, 5" all give ``5 lenina``.

    Example:
        >>> df.select(address_match_key("address"))   # doctest: +SKIP
        'ул. Тверская, д. 7, кв. 3'   ->  '7 apt3 tverskaia'
        '7 Tverskaya St, Apt 3'       ->  '7 apt3 tverskaia'
    """
    street_types = F.array(*[F.lit(x) for x in _STREET_TYPES])
    tokens = F.filter(_address_tokens(_col(col)), lambda tok: ~F.array_contains(street_types, tok))
    s = _join_address(tokens)
    s = F.regexp_replace(s, _B + "(" + "|".join(_UNIT_TOKENS) + r") (?=[\p{L}\p{N}])", "$1")
    return _sorted_tokens(_variant_fold(s))


# ---------------------------------------------------------------------------------------------
# Postcodes and countries
# ---------------------------------------------------------------------------------------------

# Compact postcode formats (upper case, no spaces or hyphens), as Java regular expressions.
POSTCODE_FORMATS: Mapping[str, str] = {
    "RU": r"[1-6]\d{5}",
    "BY": r"2\d{5}",
    "KZ": r"\d{6}|[A-Z]\d{2}[A-Z]\d[A-Z]\d",
    "UA": r"\d{5}",
    "UZ": r"\d{6}",
    "KG": r"\d{6}",
    "AM": r"\d{4}",
    "GE": r"\d{4}",
    "US": r"\d{5}",
    "CA": r"[A-Z]\d[A-Z]\d[A-Z]\d",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}",
    "IE": r"[A-Z]\d[\dW][A-Z\d]{4}",
    "NL": r"\d{4}[A-Z]{2}",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "IT": r"\d{5}",
    "ES": r"\d{5}",
    "FI": r"\d{5}",
    "SE": r"\d{5}",
    "CZ": r"\d{5}",
    "SK": r"\d{5}",
    "PL": r"\d{5}",
    "TR": r"\d{5}",
    "AT": r"\d{4}",
    "BE": r"\d{4}",
    "CH": r"\d{4}",
    "DK": r"\d{4}",
    "NO": r"\d{4}",
    "HU": r"\d{4}",
    "AU": r"\d{4}",
    "PT": r"\d{7}",
    "IL": r"\d{7}",
    "JP": r"\d{7}",
    "BR": r"\d{8}",
    "CN": r"\d{6}",
    "IN": r"\d{6}",
}
# Without a known country: 3 to 10 letters and digits, at least one digit.
_GENERIC_POSTCODE = r"^(?=.*\d)[A-Z0-9]{3,10}$"
# Every known format at once, over the text "CC:postcode".
_TAGGED_POSTCODE = (
    "^(?:" + "|".join(f"{code}:(?:{fmt})" for code, fmt in POSTCODE_FORMATS.items()) + ")$"
)
# Countries whose 5-digit postcodes can start with 0 and lose it in a numeric column.
_POSTCODE_ZERO_PAD = ("US", "DE", "FR", "IT", "ES")

# ISO 3166-1 alpha-2, all 249 officially assigned codes.
_ISO_ALPHA2_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ
    BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR
    CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
    PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI
    SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR
    TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
_ISO_ALPHA2 = frozenset(_ISO_ALPHA2_CODES.split())


def normalize_postcode(col: ColumnOrName, country: str | Column | None = None) -> Column:
    """Normalise a postcode to its compact upper-case form; null when implausible.

    Upper-cased, spaces and hyphens removed (``sw1a 1aa`` -> ``SW1A1AA``, ``1234 ab`` ->
    ``1234AB``), a float-export ``.0`` suffix dropped. With ``country`` (an alpha-2 code, or a
    column of them, e.g. from :func:`normalize_country`), the result must match that country's
    format in :data:`POSTCODE_FORMATS`; US ZIP+4 becomes the 5-digit ZIP and a leading zero lost
    in a numeric column is restored for US, DE, FR, IT and ES. Without a country, or for a
    country not in the table: 3 to 10 letters and digits with at least one digit.

    Raises ValueError when ``country`` is a string that is not an ISO 3166-1 alpha-2 code.

    Example:
        >>> df.select(normalize_postcode("zip", country="US"))   # doctest: +SKIP
        '02134-1234'  ->  '02134'
        '2134'        ->  '02134'
        >>> df.select(normalize_postcode("postcode", F.col("country_iso2")))   # doctest: +SKIP
    """
    s = F.upper(_strip(_col(col).cast("string")))
    # A float-export ".0" suffix, spaces and hyphens go; what is left must be letters/digits.
    s = F.regexp_replace(s, r"\.0+$|[\s\p{Z}-]+", "")
    if country is None:
        return _keep_if(s, s.rlike(_GENERIC_POSTCODE))
    if isinstance(country, str):
        code = country.strip().upper()
        if code not in _ISO_ALPHA2:
            raise ValueError(f"country {country!r} is not an ISO 3166-1 alpha-2 code")
        cc = F.lit(code)
    else:
        cc = F.upper(F.trim(country))
    # One expression for every country, on the text "CC:postcode" (a CASE with a branch per
    # country would copy the value into each branch and outgrow the JVM's 64 KB method limit):
    # repairs by regular expression, then one regular expression that holds every format.
    tagged = F.concat(F.coalesce(cc, F.lit("")), F.lit(":"), s)
    tagged = F.regexp_replace(tagged, r"^US:(\d{5})\d{4}$", "US:$1")  # ZIP+4
    padded = "|".join(_POSTCODE_ZERO_PAD)
    tagged = F.regexp_replace(tagged, rf"^({padded}):(\d{{3}})$", "$1:00$2")
    tagged = F.regexp_replace(tagged, rf"^({padded}):(\d{{4}})$", "$1:0$2")
    value = F.regexp_extract(tagged, r"^[^:]*:(.*)$", 1)
    known = F.substring_index(tagged, ":", 1).isin(list(POSTCODE_FORMATS))
    valid = tagged.rlike(_TAGGED_POSTCODE) | (~known & value.rlike(_GENERIC_POSTCODE))
    return _keep_if(value, valid)


# Alpha-2 -> alpha-3 and the English and Russian names (short, official and colloquial).
_COUNTRY_NAMES: Mapping[str, tuple[str, ...]] = {
    "RU": ("RUS", "Russia", "Russian Federation", "Россия", "Российская Федерация", "РФ"),
    "BY": ("BLR", "Belarus", "Byelorussia", "Беларусь", "Белоруссия", "Республика Беларусь"),
    "UA": ("UKR", "Ukraine", "Украина"),
    "KZ": ("KAZ", "Kazakhstan", "Казахстан", "Республика Казахстан"),
    "UZ": ("UZB", "Uzbekistan", "Узбекистан"),
    "KG": ("KGZ", "Kyrgyzstan", "Kirghizia", "Кыргызстан", "Киргизия"),
    "TJ": ("TJK", "Tajikistan", "Таджикистан"),
    "TM": ("TKM", "Turkmenistan", "Туркменистан", "Туркмения"),
    "AZ": ("AZE", "Azerbaijan", "Азербайджан"),
    "AM": ("ARM", "Armenia", "Армения"),
    "GE": ("GEO", "Georgia", "Грузия"),
    "MD": ("MDA", "Moldova", "Republic of Moldova", "Молдова", "Молдавия"),
    "LT": ("LTU", "Lithuania", "Литва"),
    "LV": ("LVA", "Latvia", "Латвия"),
    "EE": ("EST", "Estonia", "Эстония"),
    "DE": ("DEU", "Germany", "Deutschland", "Германия"),
    "FR": ("FRA", "France", "Франция"),
    "GB": (
        "GBR", "United Kingdom", "Great Britain", "Britain", "UK", "England", "Scotland",
        "Wales", "Northern Ireland", "Великобритания", "Соединённое Королевство", "Англия",
    ),
    "IT": ("ITA", "Italy", "Italia", "Италия"),
    "ES": ("ESP", "Spain", "España", "Испания"),
    "PT": ("PRT", "Portugal", "Португалия"),
    "NL": ("NLD", "Netherlands", "Holland", "Нидерланды", "Голландия"),
    "BE": ("BEL", "Belgium", "Бельгия"),
    "LU": ("LUX", "Luxembourg", "Люксембург"),
    "CH": ("CHE", "Switzerland", "Schweiz", "Швейцария"),
    "AT": ("AUT", "Austria", "Österreich", "Австрия"),
    "PL": ("POL", "Poland", "Polska", "Польша"),
    "CZ": ("CZE", "Czechia", "Czech Republic", "Чехия"),
    "SK": ("SVK", "Slovakia", "Словакия"),
    "HU": ("HUN", "Hungary", "Венгрия"),
    "RO": ("ROU", "Romania", "Румыния"),
    "BG": ("BGR", "Bulgaria", "Болгария"),
    "RS": ("SRB", "Serbia", "Сербия"),
    "HR": ("HRV", "Croatia", "Хорватия"),
    "SI": ("SVN", "Slovenia", "Словения"),
    "GR": ("GRC", "Greece", "Греция"),
    "CY": ("CYP", "Cyprus", "Кипр"),
    "TR": ("TUR", "Turkey", "Türkiye", "Турция"),
    "FI": ("FIN", "Finland", "Финляндия"),
    "SE": ("SWE", "Sweden", "Швеция"),
    "NO": ("NOR", "Norway", "Норвегия"),
    "DK": ("DNK", "Denmark", "Дания"),
    "IS": ("ISL", "Iceland", "Исландия"),
    "IE": ("IRL", "Ireland", "Ирландия"),
    "MT": ("MLT", "Malta", "Мальта"),
    "ME": ("MNE", "Montenegro", "Черногория"),
    "MK": ("MKD", "North Macedonia", "Macedonia", "Северная Македония", "Македония"),
    "BA": ("BIH", "Bosnia and Herzegovina", "Босния и Герцеговина"),
    "AL": ("ALB", "Albania", "Албания"),
    "US": (
        "USA", "United States", "United States of America", "America", "США",
        "Соединённые Штаты", "Соединённые Штаты Америки", "Америка",
    ),
    "CA": ("CAN", "Canada", "Канада"),
    "MX": ("MEX", "Mexico", "Мексика"),
    "CU": ("CUB", "Cuba", "Куба"),
    "BR": ("BRA", "Brazil", "Brasil", "Бразилия"),
    "AR": ("ARG", "Argentina", "Аргентина"),
    "CL": ("CHL", "Chile", "Чили"),
    "CO": ("COL", "Colombia", "Колумбия"),
    "PE": ("PER", "Peru", "Перу"),
    "CN": ("CHN", "China", "People's Republic of China", "PRC", "Китай", "КНР"),
    "HK": ("HKG", "Hong Kong", "Гонконг"),
    "TW": ("TWN", "Taiwan", "Тайвань"),
    "JP": ("JPN", "Japan", "Япония"),
    "KR": (
        "KOR", "South Korea", "Korea", "Republic of Korea", "Korea, Republic of",
        "Южная Корея", "Республика Корея", "Корея",
    ),
    "KP": ("PRK", "North Korea", "Северная Корея", "КНДР"),
    "MN": ("MNG", "Mongolia", "Монголия"),
    "IN": ("IND", "India", "Индия"),
    "LK": ("LKA", "Sri Lanka", "Шри-Ланка"),
    "MV": ("MDV", "Maldives", "Мальдивы"),
    "ID": ("IDN", "Indonesia", "Индонезия"),
    "TH": ("THA", "Thailand", "Таиланд", "Тайланд"),
    "VN": ("VNM", "Vietnam", "Viet Nam", "Вьетнам"),
    "MY": ("MYS", "Malaysia", "Малайзия"),
    "SG": ("SGP", "Singapore", "Сингапур"),
    "PH": ("PHL", "Philippines", "Филиппины"),
    "AE": (
        "ARE", "United Arab Emirates", "UAE", "Emirates", "ОАЭ",
        "Объединённые Арабские Эмираты", "Эмираты",
    ),
    "SA": ("SAU", "Saudi Arabia", "Саудовская Аравия"),
    "QA": ("QAT", "Qatar", "Катар"),
    "IL": ("ISR", "Israel", "Израиль"),
    "IR": ("IRN", "Iran", "Иран"),
    "EG": ("EGY", "Egypt", "Египет"),
    "MA": ("MAR", "Morocco", "Марокко"),
    "TN": ("TUN", "Tunisia", "Тунис"),
    "NG": ("NGA", "Nigeria", "Нигерия"),
    "ZA": ("ZAF", "South Africa", "ЮАР", "Южно-Африканская Республика", "Южная Африка"),
    "AU": ("AUS", "Australia", "Австралия"),
    "NZ": ("NZL", "New Zealand", "Новая Зеландия"),
}  # fmt: skip


def _country_key_py(text: str) -> str:
    return re.sub(r"^the ", "", _fold_py(text)).replace(" ", "")


def _country_lookup() -> dict[str, str]:
    table = {code.lower(): code for code in _ISO_ALPHA2}
    table["uk"] = "GB"  # not ISO, but what people and some systems write
    for code, names in _COUNTRY_NAMES.items():
        for name in names:
            table[_country_key_py(name)] = code
    return table


_COUNTRY_LOOKUP = _country_lookup()


def normalize_country(col: ColumnOrName) -> Column:
    """Map a country code or name to its ISO 3166-1 alpha-2 code; null when unknown.

    Accepted: every alpha-2 code (and ``UK`` for GB), and for about 90 countries (the CIS,
    Europe, the Americas' and Asia's largest, see ``_COUNTRY_NAMES``) the alpha-3 code and the
    English and Russian names in their usual forms, in any case, with or without accents,
    punctuation, spaces or a leading "The" (``U.S.A.``, ``Российская Федерация``,
    ``the Netherlands``). Placeholders that are also codes stay codes (``NA`` is Namibia).

    Example:
        >>> df.select(normalize_country("country"))   # doctest: +SKIP
        'Россия'        ->  'RU'
        'u.s.a.'        ->  'US'
        'DEU'           ->  'DE'
        'Atlantis'      ->  None
    """
    key = F.replace(F.regexp_replace(_fold(_col(col).cast("string")), r"^the ", ""), F.lit(" "))
    return F.try_element_at(_literal_map(_COUNTRY_LOOKUP), key)


# ---------------------------------------------------------------------------------------------
# Timestamps and dates
# ---------------------------------------------------------------------------------------------

# Pseudo-formats, usable in ``formats`` next to Spark datetime patterns.
ISO_8601 = "iso8601"
EPOCH_SECONDS = "epoch_seconds"
EPOCH_MILLIS = "epoch_millis"
RFC_2822 = "rfc2822"

# Tried in order; the first that parses wins. Only unambiguous formats: "01/05/2026" is January
# in the US and May elsewhere, so slash day-month formats are left for callers who know their
# source (formats=("MM/dd/yyyy HH:mm",)). Dots mean day first (Russian and European usage).
DEFAULT_TIMESTAMP_FORMATS: tuple[str, ...] = (
    ISO_8601,
    EPOCH_SECONDS,
    EPOCH_MILLIS,
    "d.M.yyyy[ H:mm[:ss]]",
    "yyyy/M/d[ H:mm[:ss]]",
    "yyyyMMdd",
    "yyyyMMddHHmmss",
    RFC_2822,
)
DEFAULT_DATE_FORMATS: tuple[str, ...] = (
    ISO_8601,
    "d.M.yyyy",
    "yyyy/M/d",
    "yyyyMMdd",
    "d MMM yyyy",
)

_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_ISO_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
_ISO_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)"
_ISO_NAIVE = rf"^{_ISO_DATE}(?:[T ]{_ISO_TIME})?$"
_ISO_ZONED = rf"^{_ISO_DATE}[T ]{_ISO_TIME} ?{_ISO_ZONE}$"
_OFFSET = re.compile(r"[+-]\d{2}:?\d{2}|[+-]\d{2}")
_ZONE_LETTERS = re.compile(r"[XxZOVz]")


def _check_tz(tz: str) -> None:
    if tz.upper() in ("UTC", "Z", "GMT") or _OFFSET.fullmatch(tz):
        return
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"default_tz {tz!r} is not a time zone: use an IANA name such as 'Europe/Moscow', "
            "'UTC' or an offset such as '+03:00'"
        ) from exc


def _has_zone(pattern: str) -> bool:
    # Zone letters outside quoted literals: such a pattern parses its own offset.
    return bool(_ZONE_LETTERS.search(re.sub(r"'[^']*'", "", pattern)))


def _in_years(ts: Column, valid_years: tuple[int, int]) -> Column:
    low, high = valid_years
    return _keep_if(ts, F.year(ts).between(low, high))


def parse_timestamp_utc(
    col: ColumnOrName,
    *,
    formats: Sequence[str] = DEFAULT_TIMESTAMP_FORMATS,
    default_tz: str | Column = "UTC",
    valid_years: tuple[int, int] = (1900, 2100),
) -> Column:
    """Parse a string to a timestamp (an instant, shown in UTC); null when it does not parse.

    ``formats`` are tried in order; the first that parses wins. Besides Spark datetime patterns
    they may hold :data:`ISO_8601` (``2026-01-05T10:00:00+03:00``, ``...Z``, ``+0300``,
    ``2026-01-05 10:00:00.123``, ``2026-01-05``: fast, no pattern matching),
    :data:`EPOCH_SECONDS` (9 to 10 digits, optional fraction), :data:`EPOCH_MILLIS` (13
    digits) and :data:`RFC_2822` (email headers: ``Mon, 05 Jan 2026 10:00:00 +0300`` or
    ``GMT``). A value with an offset or zone keeps it; a naive value is wall-clock time in
    ``default_tz`` (an IANA zone such as ``"Europe/Moscow"``, ``"UTC"`` or ``"+03:00"``, or a
    column of them, e.g. each POS store's zone), so the result does not depend on the session
    time zone. In a daylight-saving gap a naive time moves forward by the gap; in an overlap
    the earlier instant wins. Results outside ``valid_years`` (inclusive) are null: a 1800 or
    year-12026 date is an export error, not an event.

    Raises ValueError when ``default_tz`` is a string that is not a time zone.

    Example:
        >>> df.select(parse_timestamp_utc("ts", default_tz="Europe/Moscow"))   # doctest: +SKIP
        '2026-01-05T10:00:00+03:00'  ->  2026-01-05 07:00:00
        '2026-01-05 10:00:00'        ->  2026-01-05 07:00:00   (naive: Moscow time)
        '05.01.2026 10:00'           ->  2026-01-05 07:00:00
        '1767607200'                 ->  2026-01-05 10:00:00   (epoch: always UTC)
        'yesterday'                  ->  None
    """
    if isinstance(default_tz, str):
        _check_tz(default_tz)
    tz = F.lit(default_tz) if isinstance(default_tz, str) else default_tz
    s = _strip(_col(col).cast("string"))
    # ISO candidates: "t"/"z" as "T"/"Z", a decimal comma ("10:00:00,5") as a point; the ISO
    # regular expressions below reject anything else this may touch.
    upper = F.upper(F.translate(s, ",", "."))
    attempts: list[Column] = []
    for fmt in formats:
        if fmt == ISO_8601:
            # Spark's own cast is the ISO parser; a zone appended to a naive value is applied.
            with_time = F.regexp_replace(upper, r"^(" + _ISO_DATE + ")$", "$1 00:00:00")
            attempts.append(
                F.when(upper.rlike(_ISO_ZONED), upper.try_cast("timestamp")).when(
                    upper.rlike(_ISO_NAIVE),
                    F.concat_ws(" ", with_time, tz).try_cast("timestamp"),
                )
            )
        elif fmt == EPOCH_SECONDS:
            attempts.append(
                F.when(
                    s.rlike(r"^\d{9,10}(?:\.\d{1,6})?$"),
                    F.timestamp_seconds(s.try_cast("decimal(16,6)")),
                )
            )
        elif fmt == EPOCH_MILLIS:
            attempts.append(F.when(s.rlike(r"^\d{13}$"), F.timestamp_millis(s.try_cast("long"))))
        elif fmt == RFC_2822:
            # Spark parses no day names (pattern E): the weekday goes. GMT/UT are zone ids (VV).
            rfc = F.regexp_replace(s, r"^[A-Za-z]{3},\s*", "")
            attempts.append(F.try_to_timestamp(rfc, F.lit("d MMM yyyy H:mm[:ss] Z")))
            attempts.append(F.try_to_timestamp(rfc, F.lit("d MMM yyyy H:mm[:ss] VV")))
        elif _has_zone(fmt):
            attempts.append(F.try_to_timestamp(s, F.lit(fmt)))
        else:
            # The zone goes into the parsed text (pattern VV), so no session setting applies.
            attempts.append(F.try_to_timestamp(F.concat_ws(" ", s, tz), F.lit(fmt + " VV")))
    if not attempts:
        raise ValueError("formats is empty")
    return _in_years(F.coalesce(*attempts), valid_years)


def parse_date(
    col: ColumnOrName,
    *,
    formats: Sequence[str] = DEFAULT_DATE_FORMATS,
    valid_years: tuple[int, int] = (1900, 2100),
) -> Column:
    """Parse a string to a date; null when it does not parse or falls outside ``valid_years``.

    ``formats`` are tried in order: Spark datetime patterns and :data:`ISO_8601`, which takes
    the date as written from ``2026-01-05`` and from an ISO date-time (``2026-01-05T23:30:00
    +03:00`` gives 2026-01-05: the local date, no zone conversion). Defaults: ISO, ``d.M.yyyy``
    (05.01.2026, 5.1.2026), ``yyyy/M/d``, ``yyyyMMdd``, ``d MMM yyyy`` (5 Jan 2026); no
    two-digit years and no slash day-month formats, which are ambiguous.

    Example:
        >>> df.select(parse_date("birth_date"))   # doctest: +SKIP
        '05.01.1990'  ->  1990-01-05
        '1990-01-05'  ->  1990-01-05
        '31.02.1990'  ->  None
    """
    s = _strip(_col(col).cast("string"))
    attempts: list[Column] = []
    for fmt in formats:
        if fmt == ISO_8601:
            upper = F.upper(s)
            iso = upper.rlike(_ISO_NAIVE) | upper.rlike(_ISO_ZONED)
            attempts.append(F.when(iso, F.try_to_date(F.substring(s, 1, 10), "yyyy-MM-dd")))
        else:
            attempts.append(F.try_to_date(s, fmt))
    if not attempts:
        raise ValueError("formats is empty")
    return _in_years(F.coalesce(*attempts), valid_years)


# ---------------------------------------------------------------------------------------------
# Amounts
# ---------------------------------------------------------------------------------------------

_CURRENCY = r"(?:[$€£¥₽₸₴]|rub|rur|usd|eur|gbp|kzt|uah|byn|руб\.?|р\.)"
_GROUP_SEP = r"[ '’\x{A0}\x{202F}]"
_AMOUNT_RE = (
    r"^([\s(+-]*(?:" + _CURRENCY + r")?[\s+-]*)"  # sign, bracket, currency
    r"(\d(?:[\d.,'’\s\x{A0}\x{202F}]*\d)?)"  # the number
    r"(\s*(?:" + _CURRENCY + r")?[\s)-]*)$"  # currency, trailing minus or bracket
)


def _decimal_point(col: Column) -> Column:
    return F.replace(col, F.lit(","), F.lit("."))


def parse_amount(col: ColumnOrName) -> Column:
    """Parse a money amount to ``decimal(12,2)``; null when invalid or ambiguous.

    Accepts thousands separators (space, no-break space, apostrophe, comma or dot, in groups
    of three) and a decimal comma or point: ``1 234,50``, ``1,234.50``, ``1.234,50``,
    ``1'234.50``, ``1234.5``; a currency sign or code before or after (₽ $ € £ ¥ ₸ ₴, RUB,
    руб., USD, EUR...); a minus before or after, or accounting brackets ``(12.30)``. More than
    two decimals are rounded half up. Null: ``1,234`` and ``1.234`` (a thousand or one point
    two three four: a silent 1000x error is worse than a quarantined row), exponents, badly
    grouped digits (``1 23``), values beyond 10 digits before the point, text.

    Example:
        >>> df.select(parse_amount("total"))   # doctest: +SKIP
        '1 234,50 ₽'  ->  Decimal('1234.50')
        '$1,234.5'    ->  Decimal('1234.50')
        '(12.30)'     ->  Decimal('-12.30')
        '1,234'       ->  None
    """
    s = F.lower(_strip(_col(col).cast("string")))
    s = F.replace(s, F.lit("−"), F.lit("-"))  # U+2212 minus sign
    matched = s.rlike(_AMOUNT_RE)
    edges = F.concat(F.regexp_extract(s, _AMOUNT_RE, 1), F.regexp_extract(s, _AMOUNT_RE, 3))
    negative = edges.contains("-") | edges.contains("(")
    number = F.regexp_extract(s, _AMOUNT_RE, 2)
    ambiguous = number.rlike(r"^[1-9]\d{0,2}[.,]\d{3}$")
    # Grouped digits: 1 to 3 digits, not starting with 0 ("0,500" is a half), then groups of 3.
    spaced = rf"^[1-9]\d{{0,2}}(?:{_GROUP_SEP}\d{{3}})+(?:[.,]\d+)?$"  # 1 234 567,89
    comma_groups = r"^[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$"  # 1,234,567.89
    dot_groups = r"^[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?$"  # 1.234.567,89
    plain = (
        F.when(number.rlike(spaced), _decimal_point(F.regexp_replace(number, _GROUP_SEP, "")))
        .when(number.rlike(comma_groups), F.replace(number, F.lit(",")))
        .when(number.rlike(dot_groups), _decimal_point(F.replace(number, F.lit("."))))
        .when(number.rlike(r"^\d+(?:[.,]\d+)?$"), _decimal_point(number))
    )
    signed = F.concat(F.when(negative, F.lit("-")).otherwise(F.lit("")), plain)
    return _keep_if(signed.try_cast("decimal(12,2)"), matched & ~ambiguous)


# ---------------------------------------------------------------------------------------------
# Junk identifiers
# ---------------------------------------------------------------------------------------------


def _as_tuples(obj: object) -> None:
    # Frozen dataclasses built from YAML get lists; store tuples so instances stay hashable.
    for field in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, field.name)
        if isinstance(value, str):
            raise TypeError(f"{field.name} must be a list of strings, not one string")
        object.__setattr__(obj, field.name, tuple(value))


@dataclass(frozen=True)
class EmailBlocklist:
    """Email values that must never link two people (placeholders, disposable inboxes).

    Compared with normalised addresses (:func:`normalize_email`), in lower case.

    Attributes:
        addresses: whole addresses.
        domains: domains; their subdomains too. A bare top-level domain (``test``) blocks
            every address under it.
        local_parts: exact local parts (before the ``@``), on any domain.
        local_part_patterns: Java regular expressions searched in the local part.

    Example:
        >>> EmailBlocklist(**cfg["identity"]["junk_emails"])   # doctest: +SKIP
    """

    addresses: Sequence[str] = ()
    domains: Sequence[str] = ()
    local_parts: Sequence[str] = ()
    local_part_patterns: Sequence[str] = ()

    def __post_init__(self) -> None:
        _as_tuples(self)


@dataclass(frozen=True)
class PhoneBlocklist:
    """Phone values that must never link two people.

    Attributes:
        numbers: numbers in E.164 (``+78005553535``); compared on their digits.
        patterns: Java regular expressions matched against the digits of the number.

    Example:
        >>> PhoneBlocklist(numbers=["+74951234567"], patterns=[r"^7495000"])   # doctest: +SKIP
    """

    numbers: Sequence[str] = ()
    patterns: Sequence[str] = ()

    def __post_init__(self) -> None:
        _as_tuples(self)


DEFAULT_EMAIL_BLOCKLIST = EmailBlocklist(
    addresses=(
        "test@test.com",
        "mail@mail.ru",
        "test@mail.ru",
        "email@email.com",
        "user@domain.com",
        "name@domain.com",
        "no@email.com",
        "none@none.com",
        "noemail@gmail.com",
    ),
    domains=(
        # RFC 2606 / 6761 reserved names
        "example.com",
        "example.org",
        "example.net",
        "example",
        "test",
        "invalid",
        "localhost",
        "local",
        # placeholders typed into forms
        "test.com",
        "test.ru",
        "domain.com",
        "noemail.com",
        "nomail.com",
        # disposable inboxes: anyone can read them, so they identify nobody
        "mailinator.com",
        "yopmail.com",
        "guerrillamail.com",
        "10minutemail.com",
        "temp-mail.org",
        "trashmail.com",
        "sharklasers.com",
    ),
    local_parts=(
        "test",
        "testing",
        "none",
        "null",
        "nil",
        "na",
        "n-a",
        "noemail",
        "no-email",
        "nomail",
        "no-mail",
        "unknown",
        "asdf",
        "qwerty",
        "fake",
        "spam",
        "abuse",
        "postmaster",
        "mailer-daemon",
    ),
    local_part_patterns=(
        r"^(?:no|do-?not)[-_.]?reply",  # noreply, no-reply, donotreply, do-not-reply...
        r"^test\d*$",  # test1, test123
        r"^(.)\1{2,}$",  # aaa, xxxx, 1111
        r"^\d{1,3}$",  # 1@mail.ru, 123@...
    ),
)

DEFAULT_PHONE_BLOCKLIST = PhoneBlocklist(
    numbers=(
        "+78005553535",  # the advertising jingle number, typed as a placeholder
    ),
    patterns=(
        r"^(\d)\1*$",  # one digit repeated: 0000000000
        r"^\d{1,3}(\d)\1{6,}$",  # a country code then one digit repeated: +7 999 999 99 99
        r"^\d{0,3}(?:0123456789|1234567890|9876543210|0987654321)$",  # runs: 1234567890
        r"^0?12345678?9?$",  # shorter runs: 123456789, 12345678
    ),
)


def is_junk_email(col: ColumnOrName, blocklist: EmailBlocklist = DEFAULT_EMAIL_BLOCKLIST) -> Column:
    """True when an email is a placeholder or disposable address; never null (null -> False).

    Pass the normalised address (:func:`normalize_email`), so that ``No.Reply+x@GMail.com`` is
    seen as ``noreply@gmail.com``. The default :data:`DEFAULT_EMAIL_BLOCKLIST` holds RFC 2606
    reserved domains (example.com, .test...), placeholder addresses and local parts (test@,
    noreply@, none@, asdf@...), and common disposable-inbox domains. Role addresses (info@,
    sales@) are not in it: add them to ``local_parts`` if shared company inboxes over-merge.

    Example:
        >>> df.where(~is_junk_email("email_norm"))   # doctest: +SKIP
        'test@test.com'  ->  True
        'ivan@sub.example.com' -> True
        'ivan@mail.ru'   ->  False
    """
    s = F.lower(_strip(_col(col).cast("string")))
    local = F.substring_index(s, "@", 1)
    domain = F.substring_index(s, "@", -1)
    conditions: list[Column] = []
    if blocklist.addresses:
        conditions.append(s.isin([a.strip().lower() for a in blocklist.addresses]))
    if blocklist.domains:
        domains = sorted({d.strip().lower().lstrip("@.") for d in blocklist.domains})
        depth = max(d.count(".") + 1 for d in domains)
        # The domain and each of its parents (a.b.example.com -> example.com, com).
        conditions += [
            F.substring_index(domain, ".", -k).isin(domains) for k in range(1, depth + 1)
        ]
    if blocklist.local_parts:
        conditions.append(local.isin([p.strip().lower() for p in blocklist.local_parts]))
    conditions += [local.rlike(p) for p in blocklist.local_part_patterns]
    # AND/OR, unlike CASE, let Spark compute the shared parts (s, local, domain) once.
    return F.coalesce(s.contains("@") & _any(conditions), F.lit(False))


def is_junk_phone(col: ColumnOrName, blocklist: PhoneBlocklist = DEFAULT_PHONE_BLOCKLIST) -> Column:
    """True when a phone number is a placeholder; never null (null -> False).

    Works on the digits of the value, so pass the E.164 form (:func:`normalize_phone`): the
    same number written nationally has other digits. :data:`DEFAULT_PHONE_BLOCKLIST` flags one
    digit repeated (``0000000000``, ``+7 999 999-99-99``), runs (``1234567890``,
    ``+7 123 456 78 90``, ``0987654321``) and ``+7 800 555-35-35``. A real number such as
    ``+7 912 345-67-89`` is not flagged: only whole runs after a country code are.

    Example:
        >>> df.where(~is_junk_phone("phone_e164"))   # doctest: +SKIP
        '+79999999999'  ->  True
        '+71234567890'  ->  True
        '+79123456789'  ->  False
    """
    digits = F.regexp_replace(_col(col).cast("string"), r"\D", "")
    conditions: list[Column] = []
    numbers = sorted({re.sub(r"\D", "", n) for n in blocklist.numbers} - {""})
    if numbers:
        conditions.append(digits.isin(numbers))
    conditions += [digits.rlike(p) for p in blocklist.patterns]
    return F.coalesce((digits != "") & _any(conditions), F.lit(False))
