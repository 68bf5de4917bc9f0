"""The simulated people of one shard: households, traits, identifiers and starting state.

A shard is a fixed block of :data:`SHARD_SIZE` consecutive people (households never cross a
shard), so the people and everything they do depend only on ``(seed, shard)``, never on how
many worker processes run. Per-person data are numpy columns; the few strings (current e-mail,
phone) are kept in Python lists of shard size.

Example:
    >>> from cdp_spark.generate.catalog import Catalog
    >>> p = People.build(Plan.make(seed=1, customers=500, days=10), Catalog.build(1), shard=0)
    >>> p.n, p.person_ids()[:2]
    (500, ['P0000000', 'P0000001'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from cdp_spark.generate.catalog import Catalog
from cdp_spark.generate.clock import DAY, epoch_day
from cdp_spark.generate.ids import Bijection, mix, unit, uuids
from cdp_spark.generate.vocab import (
    CATEGORIES,
    CITIES,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    RU_STREETS,
    SURNAMES,
    WORK_DOMAINS,
    female_surname,
    fold_german,
    transliterate,
)

SHARD_SIZE = 10_000
NEVER = 1_000_000  # a day number beyond any simulation
SEGMENTS = ("loyal", "regular", "occasional", "at_risk")

IntArr = npt.NDArray[np.int64]
FloatArr = npt.NDArray[np.float64]
BoolArr = npt.NDArray[np.bool_]

# Salts that keep the hash streams of different identifiers apart.
_S_EMAIL, _S_PHONE, _S_CARD, _S_CID, _S_COOKIE, _S_DEVICE, _S_TABLET, _S_LANDLINE = range(8)


@dataclass(frozen=True)
class Plan:
    """Run-wide parameters every shard needs (small and picklable)."""

    seed: int
    customers: int
    days: int
    start: date = date(2026, 1, 1)
    malformed_rate: float = 0.005
    shard_size: int = SHARD_SIZE
    # Decided once per run (see :func:`make`): e-mail campaigns per day and late-file routing.
    campaigns: dict[int, tuple[str, int, float, float]] = field(default_factory=dict)
    late: dict[tuple[str, int], int] = field(default_factory=dict)  # (source, day) -> arrival
    cp1251_file: str = ""

    @property
    def shards(self) -> int:
        return -(-self.customers // self.shard_size)

    def day(self, t: int) -> date:
        return self.start + timedelta(days=t)

    @classmethod
    def make(
        cls, *, seed: int, customers: int, days: int, start: date = date(2026, 1, 1),
        malformed_rate: float = 0.005, shard_size: int = SHARD_SIZE,
    ) -> Plan:  # fmt: skip
        """The plan for a run: campaign calendar, late files and the cp1251 file.

        Example:
            >>> plan = Plan.make(seed=7, customers=100, days=30)
            >>> all(0 <= t < 30 for t in plan.campaigns)
            True
        """
        rng = np.random.default_rng([seed, 3])
        campaigns: dict[int, tuple[str, int, float, float]] = {}
        for t in range(days):
            d = start + timedelta(days=t)
            # Newsletters on Tuesday and Friday; extra pushes before big shopping days.
            special = (d.month, d.day) in {(2, 20), (3, 5), (11, 24), (11, 27), (12, 15), (12, 22)}
            if d.weekday() in (1, 4) or special:
                send = 6 * 3600 + int(rng.integers(0, 3 * 3600))  # 06:00-09:00 UTC
                strength = float(rng.uniform(0.7, 1.3)) * (1.3 if special else 1.0)
                share = float(rng.uniform(0.25, 0.45))
                campaigns[t] = (
                    f"cmp_{d:%Y%m%d}_{'promo' if special else 'news'}",
                    send,
                    strength,
                    share,
                )
        late: dict[tuple[str, int], int] = {}
        if days >= 4:
            for source in ("pos_sales", "orders", "web_events"):
                n_late = max(1, days // 25)
                for t in sorted(
                    rng.choice(np.arange(days - 3), size=min(n_late, days - 3), replace=False)
                ):
                    late[(source, int(t))] = int(t) + int(rng.integers(1, 4))
        cp1251 = ""
        if days >= 3:
            from cdp_spark.generate.schema import SOURCES

            cp1251 = SOURCES["support_tickets"].filename(start + timedelta(days=days // 2))
        return cls(
            seed, customers, days, start, malformed_rate, shard_size, campaigns, late, cp1251
        )


class Identity:
    """Deterministic identifier strings, shared by all shards of a run.

    Example:
        >>> ident = Identity(seed=1, customers=1000)
        >>> ident.customer_id(np.array([0, 1]))[0] != ident.customer_id(np.array([0, 1]))[1]
        True
    """

    def __init__(self, seed: int, customers: int) -> None:
        self.seed = seed
        digits = max(4, len(str(customers * 4)))
        self._email_num = Bijection(10**digits, key=seed * 31 + _S_EMAIL)
        self._mobile = Bijection(10**8, key=seed * 31 + _S_PHONE)
        self._landline = Bijection(10**7, key=seed * 31 + _S_LANDLINE)
        self._card = Bijection(10**10, key=seed * 31 + _S_CARD)
        self._cid = Bijection(10**8, key=seed * 31 + _S_CID)
        self._cookie = Bijection(10**10, key=seed * 31 + _S_COOKIE)
        # The store's own loyalty card that cashiers scan for customers without one: a slot no
        # person can ever get, so it looks like any other card number.
        self.shared_card = self.card(np.array([10**10 - 1], dtype=np.uint64))[0]

    def customer_id(self, slot: npt.ArrayLike) -> list[str]:
        """``C`` + 8 digits for account slots ``person * 2 + account``."""
        return [f"C{x:08d}" for x in self._cid(slot).tolist()]

    def email_number(self, slot: npt.ArrayLike) -> list[int]:
        """Unique numbers for e-mail slots ``person * 4 + version`` (3 = work address)."""
        out: list[int] = self._email_num(slot).tolist()
        return out

    def mobiles(self, country: IntArr, slot: IntArr) -> list[str]:
        """National mobile numbers (no trunk 0/8) for slots ``person * 2 + version``."""
        xs = self._mobile(slot).tolist()
        forms = ("9{}{:08d}", "7{}{:08d}", "151{}{:07d}")
        return [forms[c].format(x % 10, x // 10) for c, x in zip(country.tolist(), xs, strict=True)]

    def landline(self, city: int, household: int) -> str:
        """National landline number (10 digits, area code first) of a household in ``city``."""
        x = int(self._landline(household)[0])
        area = CITIES[city].area_code
        return f"{area}{x:0{10 - len(area)}d}"

    def card(self, slot: npt.ArrayLike) -> list[str]:
        """13-digit loyalty card numbers for slots ``person * 2`` (own) / ``first * 2 + 1``."""
        return [f"260{x:010d}" for x in self._card(slot).tolist()]

    def cookie(self, gidx: IntArr, slot: IntArr, version: IntArr, born: IntArr) -> list[str]:
        """Google-Analytics-style client ids ``<10 digits>.<first-seen epoch seconds>``."""
        key = gidx.astype(np.uint64) * np.uint64(64) + slot.astype(np.uint64) * np.uint64(16)
        nums = self._cookie(key + np.minimum(version, 15).astype(np.uint64)).tolist()
        return [f"{a:010d}.{b}" for a, b in zip(nums, born.tolist(), strict=True)]

    def device(self, gidx: IntArr, version: IntArr, ios: BoolArr) -> list[str]:
        """App device ids: iOS IDFV (upper-case UUID) or Android id (16 hex digits)."""
        hi = mix(self.seed, _S_DEVICE, gidx, version)
        lo = mix(self.seed, _S_DEVICE + 100, gidx, version)
        ids = uuids(hi, lo, upper=True)
        return [
            u if i else f"{h:016x}" for u, i, h in zip(ids, ios.tolist(), hi.tolist(), strict=True)
        ]

    def tablet(self, first: IntArr) -> list[str]:
        """Device id of a household's shared tablet (an iPad: upper-case UUID)."""
        return uuids(
            mix(self.seed, _S_TABLET, first), mix(self.seed, _S_TABLET + 100, first), upper=True
        )


def _ascii_name(native: str, country: int) -> str:
    if country == 0:
        text = transliterate(native, 2)
    elif country == 2:
        text = fold_german(native, 0)
    else:
        text = native
    return "".join(c for c in text.lower() if c.isascii() and c.isalpha())


_ASCII_FIRST = [_ascii_name(f.native, f.country) or "x" for f in FIRST_NAMES]
# (male form, female form) of each surname in ASCII, as used in e-mail addresses.
_ASCII_LAST = [
    (_ascii_name(s, c) or "x", _ascii_name(female_surname(s) if c == 0 else s, c) or "x")
    for s, c in SURNAMES
]


@dataclass
class People:
    """Columns of one shard's people (index ``i`` is person ``lo + i``)."""

    plan: Plan
    shard: int
    lo: int
    n: int
    ident: Identity
    # household columns (index = household)
    hh: IntArr  # person -> household
    hh_first: IntArr  # household -> global index of its first member
    hh_city: IntArr
    hh_street: IntArr
    hh_house: IntArr
    hh_flat: IntArr
    hh_addr_ver: IntArr
    hh_tablet: BoolArr
    hh_store: IntArr  # home store index or -1 (no shop in the city)
    hh_card_shared: BoolArr
    # person columns
    country: IntArr
    city: IntArr
    tz: IntArr
    gender: IntArr
    first: IntArr  # index into FIRST_NAMES
    last: IntArr  # index into SURNAMES
    birth_day: IntArr  # epoch day number
    segment: IntArr
    base_rate: FloatArr  # purchases per day when active
    online_share: FloatArr
    web_rate: FloatArr  # browsing sessions per day
    eng: FloatArr  # e-mail open probability
    click: FloatArr  # click probability given open
    complaint: FloatArr  # support contacts per day
    temper: FloatArr  # tendency to write negatively
    h0: FloatArr  # baseline churn hazard per day
    fav: IntArr  # favourite category
    has_email: BoolArr
    has_work_email: BoolArr
    phone_kind: IntArr  # 0 none, 1 own mobile, 2 household landline
    has_app: BoolArr
    ios: BoolArr
    n_browsers: IntArr
    card: IntArr  # 0 none, 1 own card, 2 household card
    reg_day: IntArr  # -1 registered before the start, NEVER for guests
    created_at: IntArr  # account creation time (UTC seconds)
    dup_day: IntArr  # day a second CRM account appears (-1 before start, NEVER none)
    dup_created_at: IntArr
    # mutable state
    email_ver: IntArr
    phone_ver: IntArr
    app_ver: IntArr
    cookie_ver: IntArr  # (n, 3)
    cookie_born: IntArr  # (n, 3) epoch seconds of the cookie's first visit
    active: BoolArr
    churn_day: IntArr
    eng_ewma: FloatArr
    neg_recent: FloatArr
    issue_recent: FloatArr
    last_purchase: IntArr  # day number (negative: before the start)
    last_click: IntArr
    unsub: BoolArr
    consent_email: BoolArr
    consent_sms: BoolArr
    consent_ads: BoolArr
    updated_at: IntArr  # (n, 2) last CRM update per account (UTC seconds)
    n_orders: IntArr = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_pos: IntArr = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_neg_tickets: IntArr = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    email: list[str] = field(default_factory=list)  # current canonical primary e-mail
    work_email: list[str] = field(default_factory=list)
    phone: list[tuple[str, str]] = field(default_factory=list)  # (country code, national)
    cards: list[str] = field(default_factory=list)  # loyalty card number or ""

    @classmethod
    def build(cls, plan: Plan, catalog: Catalog, shard: int) -> People:
        """Draw the people of ``shard`` and their starting state."""
        rng = np.random.default_rng([plan.seed, 1, shard])
        lo = shard * plan.shard_size
        n = min(plan.shard_size, plan.customers - lo)
        ident = Identity(plan.seed, plan.customers)
        start_s = epoch_day(plan.start)

        # Households of 1-4 people, consecutive in the shard.
        sizes = rng.choice([1, 2, 3, 4], size=n, p=[0.42, 0.32, 0.16, 0.10])
        ends = np.cumsum(sizes)
        n_hh = int(np.searchsorted(ends, n) + 1)
        hh = np.repeat(np.arange(n_hh), sizes[:n_hh])[:n]
        hh_first = lo + np.concatenate([[0], ends[: n_hh - 1]])
        hh_country = rng.choice(len(COUNTRIES), size=n_hh, p=COUNTRY_WEIGHTS)
        hh_city = np.empty(n_hh, dtype=np.int64)
        for c in range(len(COUNTRIES)):
            cities = [i for i, city in enumerate(CITIES) if city.country == c]
            w = np.array([CITIES[i].weight for i in cities])
            mask = hh_country == c
            hh_city[mask] = rng.choice(cities, size=int(mask.sum()), p=w / w.sum())
        hh_street = rng.integers(0, len(RU_STREETS), n_hh)
        hh_house = rng.integers(1, 160, n_hh)
        flat_p = np.array([0.8, 0.25, 0.0])[hh_country]
        hh_flat = np.where(rng.random(n_hh) < flat_p, rng.integers(1, 300, n_hh), 0)
        hh_size = np.bincount(hh, minlength=n_hh)
        hh_tablet = rng.random(n_hh) < np.where(hh_size > 1, 0.35, 0.04)
        hh_store = np.full(n_hh, -1, dtype=np.int64)
        for ci, stores in catalog.stores_by_city.items():
            mask = hh_city == ci
            hh_store[mask] = np.array(stores)[rng.integers(0, len(stores), int(mask.sum()))]
        hh_card_shared = rng.random(n_hh) < 0.3
        hh_landline = rng.random(n_hh) < 0.12
        hh_surname = np.empty(n_hh, dtype=np.int64)
        for c in range(len(COUNTRIES)):
            pool = [i for i, (_, sc) in enumerate(SURNAMES) if sc == c]
            mask = hh_country == c
            hh_surname[mask] = np.array(pool)[rng.integers(0, len(pool), int(mask.sum()))]

        country = hh_country[hh]
        city = hh_city[hh]
        tz = np.array([c.tz for c in CITIES])[city]
        gender = (rng.random(n) < 0.52).astype(np.int64)
        first = np.empty(n, dtype=np.int64)
        last = hh_surname[hh].copy()
        for c in range(len(COUNTRIES)):
            for g in (0, 1):
                names = [i for i, f in enumerate(FIRST_NAMES) if f.country == c and f.gender == g]
                mask = (country == c) & (gender == g)
                first[mask] = np.array(names)[rng.integers(0, len(names), int(mask.sum()))]
            sur = np.array([i for i, (_, sc) in enumerate(SURNAMES) if sc == c])
            other = (country == c) & (rng.random(n) < 0.2)
            last[other] = sur[rng.integers(0, len(sur), int(other.sum()))]
        age_days = ((18 + rng.beta(2.0, 3.0, n) * 62) * 365.25).astype(np.int64)
        birth_day = start_s // DAY - age_days

        segment = rng.choice(4, size=n, p=[0.18, 0.42, 0.30, 0.10])
        rate_median = np.array([0.035, 0.015, 0.006, 0.010])[segment]
        base_rate = rate_median * np.exp(rng.normal(0, 0.5, n))
        has_store = hh_store[hh] >= 0
        online_share = np.where(has_store, rng.beta(2.0, 2.0, n), 1.0)
        web_rate = (
            0.07
            * (0.4 + online_share)
            * np.exp(rng.normal(0, 0.6, n))
            * np.array([1.5, 1.0, 0.7, 0.9])[segment]
        )
        eng = np.clip(
            rng.beta(2.0, 5.0, n) + np.array([0.10, 0.0, -0.05, -0.05])[segment], 0.01, 0.95
        )
        click = rng.beta(2.0, 6.0, n)
        complaint = 0.0006 * np.exp(rng.normal(0, 0.7, n))
        temper = rng.beta(2.0, 3.0, n)
        h0 = np.array([0.0003, 0.0009, 0.0014, 0.0045])[segment] * np.exp(rng.normal(0, 0.3, n))
        fav = rng.choice(len(CATEGORIES), size=n)

        has_email = rng.random(n) < 0.95
        has_work_email = has_email & (rng.random(n) < 0.15)
        phone_kind = np.where(
            hh_landline[hh] & (rng.random(n) < 0.7), 2, np.where(rng.random(n) < 0.88, 1, 0)
        )
        has_app = rng.random(n) < np.clip(0.45 * (online_share + 0.2), 0, 0.9)
        ios = rng.random(n) < 0.45
        n_browsers = 1 + rng.binomial(2, 0.35, n)
        card = np.where(has_store & (rng.random(n) < 0.5), np.where(hh_card_shared[hh], 2, 1), 0)

        u_reg = rng.random(n)
        reg_day = np.where(
            u_reg < 0.82, -1, np.where(u_reg < 0.92, rng.integers(1, max(plan.days, 2), n), NEVER)
        )
        created_at = start_s - rng.integers(DAY, 5 * 365 * DAY, n)
        during = (reg_day >= 0) & (reg_day < NEVER)
        created_at[during] = (
            start_s + reg_day[during] * DAY + rng.integers(8 * 3600, 22 * 3600, int(during.sum()))
        )
        u_dup = rng.random(n)
        dup_day = np.full(n, NEVER, dtype=np.int64)
        dup_mask = (reg_day < NEVER) & (u_dup < 0.07)
        early = dup_mask & (reg_day < 0) & (u_dup < 0.042)
        dup_day[early] = -1
        later = dup_mask & ~early
        dup_day[later] = np.maximum(reg_day[later], 0) + rng.integers(
            1, max(plan.days, 2), int(later.sum())
        )
        dup_created_at = np.where(
            dup_day < 0,
            start_s - rng.integers(DAY, 2 * 365 * DAY, n),
            start_s + dup_day * DAY + rng.integers(9 * 3600, 21 * 3600, n),
        )

        cookie_born = start_s - rng.integers(DAY, 400 * DAY, (n, 3))
        last_purchase = -np.minimum(rng.exponential(1.0 / base_rate), 400).astype(np.int64) - 1
        updated = np.stack(
            [np.maximum(created_at, start_s - rng.integers(DAY, 300 * DAY, n)), dup_created_at],
            axis=1,
        )

        people = cls(
            plan=plan, shard=shard, lo=lo, n=n, ident=ident,
            hh=hh, hh_first=hh_first, hh_city=hh_city, hh_street=hh_street, hh_house=hh_house,
            hh_flat=hh_flat, hh_addr_ver=np.zeros(n_hh, dtype=np.int64), hh_tablet=hh_tablet,
            hh_store=hh_store, hh_card_shared=hh_card_shared,
            country=country, city=city, tz=tz, gender=gender, first=first, last=last,
            birth_day=birth_day, segment=segment, base_rate=base_rate,
            online_share=online_share, web_rate=web_rate, eng=eng, click=click,
            complaint=complaint, temper=temper, h0=h0, fav=fav, has_email=has_email,
            has_work_email=has_work_email, phone_kind=phone_kind, has_app=has_app, ios=ios,
            n_browsers=n_browsers, card=card, reg_day=reg_day, created_at=created_at,
            dup_day=dup_day, dup_created_at=dup_created_at,
            email_ver=np.zeros(n, dtype=np.int64), phone_ver=np.zeros(n, dtype=np.int64),
            app_ver=np.zeros(n, dtype=np.int64), cookie_ver=np.zeros((n, 3), dtype=np.int64),
            cookie_born=cookie_born, active=np.ones(n, dtype=np.bool_),
            churn_day=np.full(n, -1, dtype=np.int64), eng_ewma=eng.copy(),
            neg_recent=np.zeros(n), issue_recent=np.zeros(n), last_purchase=last_purchase,
            last_click=np.full(n, -100, dtype=np.int64), unsub=np.zeros(n, dtype=np.bool_),
            consent_email=has_email & (rng.random(n) < 0.72),
            consent_sms=(phone_kind > 0) & (rng.random(n) < 0.4),
            consent_ads=rng.random(n) < 0.5,
            updated_at=updated,
            n_orders=np.zeros(n, dtype=np.int64), n_pos=np.zeros(n, dtype=np.int64),
            n_neg_tickets=np.zeros(n, dtype=np.int64),
        )  # fmt: skip
        everyone = np.arange(n)
        people.email = [
            e if ok else ""
            for e, ok in zip(people.make_emails(everyone, 0), has_email.tolist(), strict=True)
        ]
        people.work_email = [
            e if ok else ""
            for e, ok in zip(people.make_emails(everyone, 3), has_work_email.tolist(), strict=True)
        ]
        people.phone = people.make_phones(everyone)
        slots = np.where(card == 1, (lo + everyone) * 2, hh_first[hh] * 2 + 1)
        people.cards = [
            c if k else "" for c, k in zip(ident.card(slots), card.tolist(), strict=True)
        ]
        return people

    # --- identifiers --------------------------------------------------------------------------
    def gidx(self, i: npt.ArrayLike) -> IntArr:
        return self.lo + np.asarray(i, dtype=np.int64)

    def person_ids(self, i: npt.ArrayLike | None = None) -> list[str]:
        idx = np.arange(self.n) if i is None else np.asarray(i)
        return [f"P{x:07d}" for x in (self.lo + idx).tolist()]

    def names(self, i: int) -> tuple[str, str, str, str]:
        """(native first, customary Latin first, native last, ascii first) of person ``i``."""
        f = FIRST_NAMES[int(self.first[i])]
        sur, _ = SURNAMES[int(self.last[i])]
        if self.gender[i] == 1 and f.country == 0:
            sur = female_surname(sur)
        return f.native, f.common, sur, _ascii_name(f.native, f.country)

    def make_emails(self, idx: npt.ArrayLike, version: npt.ArrayLike) -> list[str]:
        """Canonical addresses of people ``idx``: versions 0-2 personal, 3 work.

        Every (person, version) slot gets a distinct number, so no two people ever share an
        address by accident (sharing is modelled explicitly, never by collision).

        Example:
            >>> from cdp_spark.generate.catalog import Catalog
            >>> p = People.build(Plan.make(seed=1, customers=20, days=1), Catalog.build(1), 0)
            >>> a, b = p.make_emails([0, 0], [0, 1])
            >>> a != b and a.split("@")[0].rstrip("0123456789") != ""
            True
        """
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        ver = np.broadcast_to(np.asarray(version, dtype=np.int64), idx.shape)
        g = self.lo + idx
        nums = self.ident.email_number(g * 4 + ver)
        h = mix(self.plan.seed, _S_EMAIL, g, ver)
        styles = (h % np.uint64(6)).tolist()
        work_pick = ((h >> np.uint64(8)) % np.uint64(len(WORK_DOMAINS))).tolist()
        u = unit(h)
        country = self.country[idx]
        domain_idx = np.zeros(len(idx), dtype=np.int64)
        for c, domains in enumerate(EMAIL_DOMAINS):
            m = country == c
            cum = np.cumsum([w for _, w in domains])
            domain_idx[m] = np.searchsorted(cum / cum[-1], u[m], side="right").clip(
                0, len(domains) - 1
            )
        out = []
        for j, i in enumerate(idx.tolist()):
            a_first = _ASCII_FIRST[self.first[i]]
            a_last = _ASCII_LAST[self.last[i]][self.gender[i]]
            local = (f"{a_first}.{a_last}", f"{a_first}{a_last}", f"{a_first[0]}{a_last}",
                     f"{a_first}_{a_last}", f"{a_last}.{a_first}", a_last)[styles[j]]  # fmt: skip
            c = int(country[j])
            domain = (
                WORK_DOMAINS[work_pick[j]] if ver[j] == 3 else EMAIL_DOMAINS[c][domain_idx[j]][0]
            )
            out.append(f"{local}{nums[j]}@{domain}")
        return out

    def make_phones(self, idx: npt.ArrayLike) -> list[tuple[str, str]]:
        """(country code, national number) of people ``idx``; national is "" for no phone.

        Example:
            >>> from cdp_spark.generate.catalog import Catalog
            >>> p = People.build(Plan.make(seed=1, customers=20, days=1), Catalog.build(1), 0)
            >>> p.make_phones([0])[0][0] in ("7", "44", "49")
            True
        """
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        mobiles = self.ident.mobiles(self.country[idx], (self.lo + idx) * 2 + self.phone_ver[idx])
        out = []
        for j, i in enumerate(idx.tolist()):
            kind = int(self.phone_kind[i])
            cc = ("7", "44", "49")[int(self.country[i])]
            if kind == 0:
                out.append((cc, ""))
            elif kind == 2:
                out.append(
                    (cc, self.ident.landline(int(self.city[i]), int(self.hh_first[self.hh[i]])))
                )
            else:
                out.append((cc, mobiles[j]))
        return out

    def card_number(self, i: int) -> str:
        """Loyalty card of person ``i`` (own or the household's), "" for none."""
        return self.cards[i]

    def cookies(self, i: IntArr, slot: IntArr) -> list[str]:
        """Current cookie of browser ``slot`` (0-2) of people ``i``; slot 3 is the tablet."""
        tablet = slot == 3
        gidx = np.where(tablet, self.hh_first[self.hh[i]], self.lo + i)
        s = np.minimum(slot, 2)
        ver = np.where(tablet, 0, self.cookie_ver[i, s])
        born = np.where(
            tablet,
            epoch_day(self.plan.start) - 200 * DAY + (gidx % 7919) * 97,
            self.cookie_born[i, s],
        )
        return self.ident.cookie(gidx, slot, ver, born)

    def devices(self, i: IntArr) -> list[str]:
        return self.ident.device(self.lo + i, self.app_ver[i], self.ios[i])

    def tablets(self, i: IntArr) -> list[str]:
        return self.ident.tablet(self.hh_first[self.hh[i]])
