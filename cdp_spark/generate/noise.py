"""The ways real exports spell the same thing differently.

Each function takes a canonical value and one or two uniform numbers in [0, 1) and returns the
value as one source system would have written it. Passing the numbers in (instead of drawing
them) keeps every choice reproducible: a CRM contact gets numbers hashed from its id, so a
re-export of an unchanged contact is byte-identical.

Example:
    >>> phone_variant("7", "9123456789", 0.30)
    '+7 (912) 345-67-89'
    >>> email_variant("ilya.ivanov7@gmail.com", 0.82, 0.0)
    'ilyaivanov7@gmail.com'
"""

from __future__ import annotations

from cdp_spark.generate.vocab import (
    CITIES,
    COUNTRIES,
    DE_STREETS,
    GB_POSTCODE_AREAS,
    GB_STREET_KINDS,
    GB_STREETS,
    PLUS_TAGS,
    RU_STREET_KINDS,
    RU_STREETS,
    fold_german,
    transliterate,
)

# --- e-mail -----------------------------------------------------------------------------------
EMAIL_NOISE_KINDS = ("as_is", "case", "whitespace", "gmail_dots", "plus_tag")


def email_variant(canon: str, u: float, v: float) -> str:
    """``canon`` with at most one kind of noise chosen by ``u``; ``v`` picks the details.

    Shares: 62% unchanged, 12% case (``Ivan.Petrov@Mail.RU``), 6% surrounding whitespace, and
    for Gmail 10% dots moved (``i.van.petrov``) and 10% a ``+tag``. Other domains keep their
    dots and plus signs: only Gmail is known to ignore them.

    Example:
        >>> email_variant("anna@yandex.ru", 0.65, 0.2)
        'ANNA@YANDEX.RU'
    """
    local, _, domain = canon.partition("@")
    if u < 0.62:
        return canon
    if u < 0.74:
        if v < 0.5:
            return canon.upper()
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    if u < 0.80:
        return (" " if v < 0.5 else "") + canon + (" " if v >= 0.25 else "")
    if domain != "gmail.com":
        return canon
    if u < 0.90:
        bare = local.replace(".", "")
        if v < 0.3 or len(bare) < 3:
            return bare + "@" + domain
        cut = 1 + int(v * 997) % (len(bare) - 1)
        return bare[:cut] + "." + bare[cut:] + "@" + domain
    return f"{local}+{PLUS_TAGS[int(v * len(PLUS_TAGS))]}@{domain}"


# --- phones -----------------------------------------------------------------------------------
def phone_e164(cc: str, national: str) -> str:
    """The canonical form: ``+79123456789``.

    Example:
        >>> phone_e164("44", "2079460958")
        '+442079460958'
    """
    return f"+{cc}{national}"


def phone_variant(cc: str, national: str, u: float) -> str:
    """The phone as a person or a clerk typed it, chosen by ``u``.

    Russia (``national`` has 10 digits): ``+79123456789``, ``+7 (912) 345-67-89``,
    ``89123456789``, ``8 (912) 345-67-89``, ``912-345-6789``, ``+7 912 345 67 89``.
    UK: ``+447700900123``, ``+44 7700 900123``, ``07700 900123``, London landlines as
    ``+44 20 7946 0958`` / ``020 7946 0958``. Germany: ``+49 151 23456789``, ``0151 23456789``.

    Example:
        >>> phone_variant("7", "9123456789", 0.5), phone_variant("44", "2079460958", 0.4)
        ('89123456789', '+44 20 7946 0958')
    """
    n = national
    forms: tuple[str, ...]
    weights: tuple[float, ...]
    if cc == "7":
        forms = (
            f"+7{n}",
            f"+7 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}",
            f"8{n}",
            f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}",
            f"{n[:3]}-{n[3:6]}-{n[6:]}",
            f"+7 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}",
        )
        weights = (0.25, 0.25, 0.2, 0.1, 0.1, 0.1)
    elif cc == "44":
        head, tail = (n[:2], n[2:]) if n.startswith("2") else (n[:4], n[4:])
        spaced_tail = f"{tail[:4]} {tail[4:]}" if n.startswith("2") else tail
        forms = (f"+44{n}", f"+44 {head} {spaced_tail}", f"0{head} {spaced_tail}", f"0{n}")
        weights = (0.3, 0.3, 0.3, 0.1)
    else:
        head, tail = n[:3], n[3:]
        forms = (f"+49{n}", f"+49 {head} {tail}", f"0{head} {tail}", f"0{head}/{tail}")
        weights = (0.3, 0.3, 0.3, 0.1)
    acc = 0.0
    for form, w in zip(forms, weights, strict=True):
        acc += w
        if u < acc:
            return form
    return forms[-1]


# --- names ------------------------------------------------------------------------------------
def typo(text: str, u: float) -> str:
    """One keyboard slip in ``text``: a swapped, dropped or doubled letter.

    Example:
        >>> typo("Ivanov", 0.1), typo("Ivanov", 0.5), typo("Ivanov", 0.9)
        ('Iavnov', 'Ivanv', 'Ivaanov')
    """
    if len(text) < 3:
        return text
    pos = int(u * 7919) % (len(text) - 1)
    kind = int(u * 3)
    if kind == 0:
        return text[:pos] + text[pos + 1] + text[pos] + text[pos + 2 :]
    if kind == 1:
        return text[:pos] + text[pos + 1 :]
    return text[: pos + 1] + text[pos] + text[pos + 1 :]


def latin_name(native: str, common: str, country: int, scheme_u: float) -> str:
    """A Latin spelling of a name: the customary one or one of four transliterations.

    Example:
        >>> latin_name("Юлия", "Julia", 0, 0.1), latin_name("Юлия", "Julia", 0, 0.5)
        ('Julia', 'Yuliya')
    """
    if country == 2:
        return fold_german(native, 0 if scheme_u < 0.6 else 1)
    if country != 0:
        return native
    if common and scheme_u < 0.4:
        return common
    return transliterate(native, int(scheme_u * 997) % 4)


def display_name(
    native: str, common: str, country: int, script_u: float, scheme_u: float, typo_u: float,
    case_u: float,
) -> str:  # fmt: skip
    """A name as stored in one CRM record.

    Russians: 62% Cyrillic, the rest Latin (:func:`latin_name`). Then 3% carry a typo, 2% are
    upper-cased and 1% keep a trailing space. Germans: umlauts kept, or folded to ``ue``/``u``.

    Example:
        >>> display_name("Илья", "", 0, 0.1, 0.0, 0.5, 0.5)
        'Илья'
        >>> display_name("Илья", "", 0, 0.9, 0.3, 0.5, 0.5)
        'Ilja'
    """
    if (country == 0 and script_u < 0.62) or (country == 2 and script_u < 0.7):
        text = native
    else:
        text = latin_name(native, common, country, scheme_u)
    if typo_u < 0.03:
        text = typo(text, typo_u / 0.03)
    if case_u < 0.02:
        text = text.upper()
    elif case_u > 0.99:
        text = text + " "
    return text


# --- addresses --------------------------------------------------------------------------------
def street_line(country: int, street: int, house: int, flat: int, style_u: float) -> str:
    """The street address in one of the spellings seen for the country.

    Russia: ``ул. Ленина, д. 5, кв. 12`` / ``ул Ленина 5-12`` / ``Lenina st 5, apt 12`` /
    ``ul. Lenina, 5, kv. 12`` / ``улица Ленина, дом 5, квартира 12`` / ``Ленина ул., 5``.
    UK: ``12 Baker Street`` / ``12 Baker St`` / ``Flat 3, 12 Baker St.``.
    Germany: ``Hauptstraße 5`` / ``Hauptstr. 5`` / ``Hauptstrasse 5``.

    Example:
        >>> street_line(0, 0, 5, 12, 0.0), street_line(0, 0, 5, 0, 0.5)
        ('ул. Ленина, д. 5, кв. 12', 'Lenina st 5')
    """
    k = int(style_u * 6)
    if country == 0:
        s = RU_STREETS[street]
        abbr, full, translit, english = RU_STREET_KINDS[s.kind]
        forms = (
            (f"{abbr} {s.native}, д. {house}", ", кв. {f}"),
            (f"{abbr.rstrip('.')} {s.native} {house}", "-{f}"),
            (f"{s.native} {abbr}, {house}", ", {f}"),
            (f"{s.latin} {english} {house}", ", apt {f}"),
            (f"{translit[:2]}. {s.latin}, {house}", ", kv. {f}"),
            (f"{full} {s.native}, дом {house}", ", квартира {f}"),
        )
        base, flat_fmt = forms[k]
        return base + (flat_fmt.format(f=flat) if flat else "")
    if country == 1:
        kind_full, kind_short = GB_STREET_KINDS[street % len(GB_STREET_KINDS)]
        name = GB_STREETS[street % len(GB_STREETS)]
        line = (f"{house} {name} {kind_full}", f"{house} {name} {kind_short}",
                f"{house}, {name} {kind_short}.")[k % 3]  # fmt: skip
        return (f"Flat {flat}, " if flat else "") + line
    name = DE_STREETS[street % len(DE_STREETS)]
    return (f"{name}straße {house}", f"{name}str. {house}", f"{name}strasse {house}")[k % 3]


def city_name(city: int, style_u: float) -> str:
    """The city as written: ``Москва`` / ``г. Москва`` / ``Moscow`` / ``Moskva``.

    Example:
        >>> city_name(0, 0.0), city_name(0, 0.7), city_name(7, 0.9)
        ('Москва', 'Moscow', 'LONDON')
    """
    c = CITIES[city]
    if c.country == 0:
        if style_u < 0.55:
            return c.native
        if style_u < 0.65:
            return "г. " + c.native
        return c.latin[int((style_u - 0.65) / 0.35 * len(c.latin))]
    if style_u < 0.85:
        return c.native
    return c.latin[int((style_u - 0.85) / 0.15 * len(c.latin))]


def country_name(country: int, u: float) -> str:
    """Mostly the ISO code (``RU``), sometimes a name (``Russia``, ``Россия``, ``UK``).

    Example:
        >>> country_name(0, 0.1), country_name(1, 0.99)
        ('RU', 'England')
    """
    c = COUNTRIES[country]
    if u < 0.9:
        return c.code
    return c.variants[int((u - 0.9) / 0.1 * len(c.variants))]


def gb_postcode(h: int, city: int) -> str:
    """A UK-looking postcode (``SW1 2BD``) for ``city`` from a hash.

    Example:
        >>> gb_postcode(12345, 8)[0]
        'M'
    """
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    areas = GB_POSTCODE_AREAS.get(city, ("SW", "NW", "E", "N", "SE", "W"))
    area = areas[h % len(areas)]
    return (f"{area}{1 + h // 8 % 19} {h // 160 % 9 + 1}"
            f"{letters[h // 1440 % 20]}{letters[h // 28800 % 20]}")  # fmt: skip
