"""One shard of people living through the simulated days, written as source-system records.

Each day, vectorised over the shard's people:

1. life events: sign-ups, second CRM accounts, house moves, new e-mail or phone, cookie resets,
   new phones with the app;
2. the day's e-mail campaign: sends, bounces, opens, clicks, unsubscribes;
3. purchases online and in store at a rate driven by the person's base rate, seasonality, a
   recent e-mail click and their mood; browsing sessions, some of which log in;
4. support tickets, more likely and more negative after a cancellation or a return;
5. the churn hazard: ``h0 * exp(0.8*negative_tickets + 0.5*recent_issues
   - 3*(email_engagement - 0.25) + 0.35*recency + 0.7*unsubscribed)``; people who churn buy
   at 5% of their rate, browse a quarter as much and stop opening e-mail.

Randomness comes from ``numpy.random.default_rng([seed, 2, shard, day, stream])``, one stream
per source, so a shard's output depends only on the seed and the shard.

Example:
    >>> from cdp_spark.generate.catalog import Catalog
    >>> plan = Plan.make(seed=1, customers=300, days=3)
    >>> shard = Shard(plan, Catalog.build(1), 0)
    >>> chunks, truth = shard.step(0)
    >>> sorted({c.spec.name for c in chunks})[:3]
    ['consent_events', 'crm_contacts', 'email_events']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from cdp_spark.generate.catalog import Catalog
from cdp_spark.generate.clock import (
    DAY,
    epoch_day,
    iso_local,
    iso_utc_ms,
    naive,
    season,
    seconds_of_day,
    tz_offsets,
)
from cdp_spark.generate.ids import hex_words, mix, unit, uuids
from cdp_spark.generate.noise import (
    city_name,
    country_name,
    display_name,
    email_variant,
    gb_postcode,
    phone_e164,
    phone_variant,
    street_line,
)
from cdp_spark.generate.population import SEGMENTS, People, Plan
from cdp_spark.generate.schema import SOURCES
from cdp_spark.generate.vocab import (
    CATEGORIES,
    CITIES,
    COUNTRIES,
    DOMAIN_TYPOS,
    JUNK_EMAILS,
    JUNK_PHONES,
    NEG_BODY_EN,
    NEG_BODY_RU,
    NEG_CLOSE_EN,
    NEG_CLOSE_RU,
    NEG_OPEN_EN,
    NEG_OPEN_RU,
    POS_BODY_EN,
    POS_BODY_RU,
    POS_OPEN_EN,
    POS_OPEN_RU,
    PROMO_PAGES,
    SEARCH_QUERIES,
    TICKET_TOPICS,
    TIMEZONES,
    UTM_SOURCES,
    UTM_WEIGHTS,
)
from cdp_spark.generate.writer import Chunk, CsvChunk, JsonChunk

IntArr = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]

# Daily probabilities of life events.
P_MOVE = 0.0007  # per household
P_EMAIL_CHANGE = 0.0004
P_PHONE_CHANGE = 0.00025
P_COOKIE_RESET = 0.004  # per browser
P_NEW_PHONE = 0.0008  # new handset: new app device id
P_APP_INSTALL = 0.0004
P_CONSENT_CHANGE = 0.0006
P_CRM_RESEND = 0.0015  # unchanged contacts re-exported by a sync glitch
CHURNED_BUY = 0.05  # purchase rate after churn, relative to before
CHURNED_WEB = 0.25

_EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search", "login")
_TYPE_P = (0.40, 0.38, 0.10, 0.12)
# JSON fragments of the optional keys of web events, looked up by index (numpy object arrays).
_QUERY_FRAG = np.array(
    [f',"query":{json.dumps(q, ensure_ascii=False)}' for q in SEARCH_QUERIES], dtype=object
)
_PAGE_FRAG = np.array(
    [',"page":"/"']
    + [f',"page":"/catalog/{c.code}"' for c in CATEGORIES]
    + [f',"page":"{page}"' for page in PROMO_PAGES],
    dtype=object,
)
_UTM_CUM = np.cumsum(UTM_WEIGHTS) / sum(UTM_WEIGHTS)
_TOPIC_P = (0.30, 0.15, 0.12, 0.15, 0.10, 0.08, 0.10)
_CONSENT_SOURCES = ("web_form", "app", "pos_paper_form", "call_centre")
_CONSENT_SOURCE_P = (0.5, 0.2, 0.2, 0.1)
_CRM_OFFSET = 3 * 3600  # the CRM server writes Moscow time with its offset
# Hash fields of a CRM account, so that its spelling of things is stable across exports.
(_F_SCRIPT, _F_SCHEME, _F_TYPO_FIRST, _F_TYPO_LAST, _F_CASE_FIRST, _F_CASE_LAST, _F_EMAIL_KIND,
 _F_EMAIL_U, _F_EMAIL_V, _F_PHONE_FMT, _F_PHONE_MISSING, _F_ADDR, _F_CITY, _F_COUNTRY,
 _F_DOB_KNOWN, _F_DOB_FMT, _F_POSTCODE, _F_ACC1_EMAIL) = range(18)  # fmt: skip
_N_FIELDS = 18
_ACC_SALT = 77


def _q(text: str) -> str:
    """A JSON string literal (keeps Cyrillic as UTF-8)."""
    return json.dumps(text, ensure_ascii=False)


def _group_starts(counts: IntArr) -> IntArr:
    """Index of the first element of each group of the given sizes."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.cumsum(counts) - counts


def _within(counts: IntArr) -> IntArr:
    """0..c-1 for each count c, concatenated (position inside each group)."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(_group_starts(counts), counts)


# A consent event to write: (person, identifier type, channel, purpose, status, UTC time,
# source, identifier as written or "" to spell the person's current one).
_ConsentReq = tuple[int, str, str, str, str, int, str, str]


@dataclass
class _Orders:
    """Today's online orders (arrays) and what the web sessions need from them."""

    person: IntArr
    utc: IntArr
    guest: BoolArr
    account: IntArr
    app: BoolArr
    n_lines: IntArr
    line_start: IntArr
    line_sku: IntArr
    cancelled: BoolArr
    returned_today: BoolArr  # per person: a return was processed today


class Shard:
    """The people of one shard and everything they do, one :meth:`step` per day."""

    def __init__(self, plan: Plan, catalog: Catalog, shard: int) -> None:
        self.plan = plan
        self.cat = catalog
        self.shard = shard
        self.p = People.build(plan, catalog, shard)
        self.pids = self.p.person_ids()
        self._sku_frag = np.array([f',"sku":"{sku}"' for sku in catalog.skus], dtype=object)
        self.start_s = epoch_day(plan.start)
        self.crm_cache: dict[tuple[int, int], list[str]] = {}
        self.pending_returns: dict[int, list[tuple[int, list[str]]]] = {}
        self.pending_tickets: dict[int, list[tuple[int, list[str], str]]] = {}
        self.shared_card_users: set[int] = set()
        self.final_hazard = np.zeros(self.p.n)
        self.n_sessions = np.zeros(self.p.n, dtype=np.int64)
        self.n_opens = np.zeros(self.p.n, dtype=np.int64)

    def _rng(self, t: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.plan.seed, 2, self.shard, t, stream])

    # --- the day ----------------------------------------------------------------------------
    def step(self, t: int) -> tuple[list[Chunk], list[str]]:
        """Simulate day ``t``: the chunks to write and the ground-truth lines (CSV text).

        Days must be stepped in order (0, 1, 2...): each day starts from the previous state.

        Example:
            >>> from cdp_spark.generate.catalog import Catalog
            >>> shard = Shard(Plan.make(seed=1, customers=50, days=2), Catalog.build(1), 0)
            >>> chunks, truth = shard.step(0)
            >>> truth[0].split(",")[:2]
            ['identity', 'email']
        """
        p, plan = self.p, self.plan
        d = plan.day(t)
        day0 = epoch_day(d)
        off = tz_offsets(d)[p.tz]
        truth: list[str] = []
        crm: dict[tuple[int, int], int] = {}  # accounts to export today -> updated_at
        consent: list[_ConsentReq] = []
        if t == 0:
            truth += self._initial_truth()
            for i in np.flatnonzero(p.reg_day < 0).tolist():
                crm[(i, 0)] = int(p.updated_at[i, 0])
            for i in np.flatnonzero(p.dup_day < 0).tolist():
                crm[(i, 1)] = int(p.updated_at[i, 1])
            consent += self._consent_snapshot(np.flatnonzero(p.reg_day < 0), self._rng(t, 7))
        else:
            truth += self._life_events(t, day0, off, crm, consent)
        registered = p.reg_day <= t
        # The CRM export first: the e-mail platform syncs its addresses from it.
        crm_rows, crm_keys = self._crm_rows(t, crm, truth)

        emails, clicked, unsub_rows = self._campaign(t, day0, off, registered)
        consent += unsub_rows
        orders, order_chunks = self._orders(t, day0, off, registered, truth)
        web_chunks = self._web(t, day0, off, registered, clicked, orders, truth)
        pos_chunks = self._pos(t, day0, truth)
        tickets = self._tickets(t, day0, off, orders, truth)
        consent += self._consent_changes(t, day0, off, registered, orders)
        self._churn(t)

        chunks: list[Chunk] = [
            CsvChunk(
                SOURCES["crm_contacts"], SOURCES["crm_contacts"].filename(d), crm_rows, crm_keys
            )
        ]
        chunks += order_chunks + web_chunks
        chunks.append(emails)
        chunks.append(tickets)
        chunks += pos_chunks
        spec = SOURCES["consent_events"]
        rows = self._render_consents(t, off, consent)
        chunks.append(CsvChunk(spec, spec.filename(d), rows, [r[0] for r in rows]))
        return chunks, truth

    # --- identity ----------------------------------------------------------------------------
    def _initial_truth(self) -> list[str]:
        p = self.p
        rows: list[str] = []
        pid = self.pids
        for i in range(p.n):
            for e in (p.email[i], p.work_email[i]):
                if e:
                    rows.append(f"identity,email,{e},{pid[i]}\n")
            cc, nat = p.phone[i]
            if nat:
                rows.append(f"identity,phone,{phone_e164(cc, nat)},{pid[i]}\n")
            card = p.card_number(i)
            if card:
                rows.append(f"identity,loyalty_card,{card},{pid[i]}\n")
        for slot in range(3):
            idx = np.flatnonzero(p.n_browsers > slot)
            for i, c in zip(idx.tolist(), p.cookies(idx, np.full(len(idx), slot)), strict=True):
                rows.append(f"identity,cookie_id,{c},{pid[i]}\n")
        idx = np.flatnonzero(p.has_app)
        for i, dev in zip(idx.tolist(), p.devices(idx), strict=True):
            rows.append(f"identity,device_id,{dev},{pid[i]}\n")
        idx = np.flatnonzero(p.hh_tablet[p.hh])
        for i, dev, c in zip(
            idx.tolist(), p.tablets(idx), p.cookies(idx, np.full(len(idx), 3)), strict=True
        ):
            rows.append(f"identity,device_id,{dev},{pid[i]}\n")
            rows.append(f"identity,cookie_id,{c},{pid[i]}\n")
        for k, mask in ((0, p.reg_day < 0), (1, p.dup_day < 0)):
            idx = np.flatnonzero(mask)
            for i, cid in zip(idx.tolist(), p.ident.customer_id((p.lo + idx) * 2 + k), strict=True):
                rows.append(f"crm_contacts,customer_id,{cid},{pid[i]}\n")
        return rows

    def _life_events(
        self,
        t: int,
        day0: int,
        off: IntArr,
        crm: dict[tuple[int, int], int],
        consent: list[_ConsentReq],
    ) -> list[str]:
        p, pid = self.p, self.pids
        rng = self._rng(t, 1)
        rows: list[str] = []
        when = day0 - off + rng.integers(8 * 3600, 22 * 3600, p.n)  # time of any change today
        registered = p.reg_day <= t
        # Sign-ups and second accounts (a person who forgot they had one).
        for k, mask, created in (
            (0, p.reg_day == t, p.created_at),
            (1, p.dup_day == t, p.dup_created_at),
        ):
            idx = np.flatnonzero(mask)
            for i, cid in zip(idx.tolist(), p.ident.customer_id((p.lo + idx) * 2 + k), strict=True):
                crm[(i, k)] = int(created[i])
                rows.append(f"crm_contacts,customer_id,{cid},{pid[i]}\n")
        new = np.flatnonzero(p.reg_day == t)
        consent += self._consent_snapshot(new, rng, at=p.created_at[new])
        # House moves (the whole household; 15% to another city of the same country).
        moved_hh = np.flatnonzero(rng.random(len(p.hh_first)) < P_MOVE)
        for h in moved_hh.tolist():
            p.hh_addr_ver[h] += 1
            p.hh_street[h] = rng.integers(0, 20)
            p.hh_house[h] = rng.integers(1, 160)
            p.hh_flat[h] = rng.integers(1, 300) if p.hh_flat[h] else 0
            if rng.random() < 0.15:
                country = CITIES[int(p.hh_city[h])].country
                options = [c for c, city in enumerate(CITIES) if city.country == country]
                p.hh_city[h] = options[int(rng.integers(0, len(options)))]
                stores = self.cat.stores_by_city.get(int(p.hh_city[h]), [])
                p.hh_store[h] = stores[int(rng.integers(0, len(stores)))] if stores else -1
        if len(moved_hh):
            members = np.flatnonzero(np.isin(p.hh, moved_hh))
            p.city[members] = p.hh_city[p.hh[members]]
            p.tz[members] = np.array([c.tz for c in CITIES])[p.city[members]]
            for i in members[registered[members]].tolist():
                crm[(i, 0)] = int(when[i])  # only the main account is kept up to date
        # New e-mail address, new phone number.
        chg = np.flatnonzero((rng.random(p.n) < P_EMAIL_CHANGE) & p.has_email & (p.email_ver < 2))
        if len(chg):
            p.email_ver[chg] += 1
            for i, e in zip(chg.tolist(), p.make_emails(chg, p.email_ver[chg]), strict=True):
                p.email[i] = e
                rows.append(f"identity,email,{e},{pid[i]}\n")
                if registered[i]:
                    crm[(i, 0)] = int(when[i])
                    if p.consent_email[i]:
                        consent.append(
                            (
                                i,
                                "email",
                                "email",
                                "marketing",
                                "granted",
                                int(when[i]),
                                "account_settings",
                                "",
                            )
                        )
        chg = np.flatnonzero(
            (rng.random(p.n) < P_PHONE_CHANGE) & (p.phone_kind == 1) & (p.phone_ver < 1)
        )
        if len(chg):
            p.phone_ver[chg] += 1
            for i, ph in zip(chg.tolist(), p.make_phones(chg), strict=True):
                p.phone[i] = ph
                rows.append(f"identity,phone,{phone_e164(*ph)},{pid[i]}\n")
                if registered[i]:
                    crm[(i, 0)] = int(when[i])
        # Cleared cookies and new handsets: new anonymous ids the pipeline has to re-link.
        reset = (rng.random((p.n, 3)) < P_COOKIE_RESET) & (
            np.arange(3)[None, :] < p.n_browsers[:, None]
        )
        reset &= p.cookie_ver < 15
        ri, rs = np.nonzero(reset)
        if len(ri):
            p.cookie_ver[ri, rs] += 1
            p.cookie_born[ri, rs] = when[ri]
            for i, c in zip(ri.tolist(), p.cookies(ri, rs), strict=True):
                rows.append(f"identity,cookie_id,{c},{pid[i]}\n")
        new_dev = (p.has_app & (rng.random(p.n) < P_NEW_PHONE)) | (
            ~p.has_app & (rng.random(p.n) < P_APP_INSTALL)
        )
        idx = np.flatnonzero(new_dev)
        if len(idx):
            p.app_ver[idx] += p.has_app[idx]
            p.has_app[idx] = True
            for i, dev in zip(idx.tolist(), p.devices(idx), strict=True):
                rows.append(f"identity,device_id,{dev},{pid[i]}\n")
        # Contacts re-exported unchanged (identical rows: the pipeline must deduplicate).
        for i in np.flatnonzero(registered & (rng.random(p.n) < P_CRM_RESEND)).tolist():
            crm.setdefault((i, 0), -1)
        return rows

    # --- CRM --------------------------------------------------------------------------------
    def _crm_rows(
        self, t: int, accounts: dict[tuple[int, int], int], truth: list[str]
    ) -> tuple[list[list[str]], list[str]]:
        p = self.p
        keys = sorted(accounts)
        fresh = [(i, k) for i, k in keys if accounts[(i, k)] >= 0 or (i, k) not in self.crm_cache]
        if fresh:
            idx = np.array([i for i, _ in fresh], dtype=np.int64)
            acc = np.array([k for _, k in fresh], dtype=np.int64)
            slot = (p.lo + idx) * 2 + acc
            cids = p.ident.customer_id(slot)
            u = unit(
                mix(self.plan.seed, _ACC_SALT, slot[:, None], np.arange(_N_FIELDS)[None, :])
            ).tolist()
            created = np.where(acc == 0, p.created_at[idx], p.dup_created_at[idx])
            updated = np.array(
                [accounts[key] if accounts[key] >= 0 else created[j] for j, key in enumerate(fresh)]
            )
            created_s = iso_local(created, np.full(len(idx), _CRM_OFFSET))
            updated_s = iso_local(updated, np.full(len(idx), _CRM_OFFSET))
            hh = p.hh[idx]
            pc_hash = (
                mix(self.plan.seed, 5, p.hh_first[hh], p.hh_addr_ver[hh]) % np.uint64(10**9)
            ).tolist()
            dob = np.datetime_as_string(p.birth_day[idx].astype("datetime64[D]")).tolist()
            for j, (i, k) in enumerate(fresh):
                self.crm_cache[(i, k)] = self._crm_row(
                    i, k, cids[j], u[j], created_s[j], updated_s[j], int(pc_hash[j]), dob[j], truth
                )
        rows = [list(self.crm_cache[key]) for key in keys]
        # A sync that sends some of today's rows twice.
        rng = self._rng(t, 8)
        dup = np.flatnonzero(rng.random(len(rows)) < 0.03).tolist()
        for j in reversed(dup):
            rows.insert(j + 1, list(rows[j]))
        return rows, [r[0] for r in rows]

    def _crm_row(
        self, i: int, k: int, cid: str, u: list[float], created: str, updated: str, pc_hash: int,
        dob_iso: str, truth: list[str],
    ) -> list[str]:  # fmt: skip
        p = self.p
        country = int(p.country[i])
        native_first, common, native_last, _ = p.names(i)
        first = display_name(
            native_first,
            common,
            country,
            u[_F_SCRIPT],
            u[_F_SCHEME],
            u[_F_TYPO_FIRST],
            u[_F_CASE_FIRST],
        )
        last = display_name(
            native_last, "", country, u[_F_SCRIPT], u[_F_SCHEME], u[_F_TYPO_LAST], u[_F_CASE_LAST]
        )
        if u[_F_CASE_FIRST] > 0.995:
            first = ""  # the form's first-name field left empty
        # E-mail: the main account follows the person's current address; a second account
        # has a work address, the same address, or none.
        base = p.email[i]
        if k == 1:
            pick = u[_F_ACC1_EMAIL]
            base = (p.work_email[i] or base) if pick < 0.4 else base if pick < 0.7 else ""
        kind = u[_F_EMAIL_KIND]
        email = ""
        if kind < 0.006:
            email = JUNK_EMAILS[int(kind / 0.006 * len(JUNK_EMAILS))]
        elif base and kind < 0.012 and k == 0 and p.email_ver[i] == 0:
            local, _, domain = base.partition("@")
            email = f"{local}@{DOMAIN_TYPOS.get(domain, domain)}"
            if email != base:
                truth.append(f"identity,email,{email},{self.pids[i]}\n")
        elif base and kind >= 0.05:
            email = email_variant(base, u[_F_EMAIL_U], u[_F_EMAIL_V])
        cc, nat = p.phone[i]
        pm = u[_F_PHONE_MISSING]
        if pm < 0.12 or not nat:
            phone = ""
        elif pm < 0.125:
            phone = JUNK_PHONES[int(pm * 1000) % 2]
        else:
            phone = phone_variant(cc, nat, u[_F_PHONE_FMT])
        dob = ""
        if u[_F_DOB_KNOWN] < 0.65:
            dob = (
                f"{dob_iso[8:10]}.{dob_iso[5:7]}.{dob_iso[:4]}" if u[_F_DOB_FMT] < 0.12 else dob_iso
            )
        h = p.hh[i]
        city = int(p.hh_city[h])
        street = street_line(
            country, int(p.hh_street[h]), int(p.hh_house[h]), int(p.hh_flat[h]), u[_F_ADDR]
        )
        prefix = CITIES[city].postcode_prefix
        if country == 0:
            postcode = (prefix + f"{pc_hash:06d}")[:6]
        elif country == 1:
            postcode = gb_postcode(pc_hash, city)
        else:
            postcode = (prefix + f"{pc_hash:05d}")[:5]
        if u[_F_POSTCODE] < 0.08:
            postcode = ""
        return [cid, first, last, email, phone, dob, street, city_name(city, u[_F_CITY]), postcode,
                country_name(country, u[_F_COUNTRY]), created, updated]  # fmt: skip

    def _esp_email(self, i: int) -> str:
        """The address the e-mail platform holds: the CRM's, trimmed and lower-cased."""
        row = self.crm_cache.get((i, 0))
        if not row:
            return ""
        email = row[3].strip().lower()
        return "" if email in JUNK_EMAILS else email

    # --- e-mail -----------------------------------------------------------------------------
    def _campaign(
        self, t: int, day0: int, off: IntArr, registered: BoolArr
    ) -> tuple[CsvChunk, BoolArr, list[_ConsentReq]]:
        p = self.p
        spec = SOURCES["email_events"]
        path = spec.filename(self.plan.day(t))
        clicked = p.last_click >= t - 1
        campaign = self.plan.campaigns.get(t)
        if campaign is None:
            return CsvChunk(spec, path, [], []), clicked, []
        cid, send_s, strength, share = campaign
        rng = self._rng(t, 2)
        n = p.n
        cand = np.flatnonzero(registered & p.consent_email & ~p.unsub & (rng.random(n) < share))
        addr = [self._esp_email(i) for i in cand.tolist()]
        keep = np.array([bool(a) for a in addr], dtype=np.bool_)
        targets = cand[keep]
        addr = [a for a in addr if a]
        m = len(targets)
        sent = day0 + send_s + rng.integers(0, 1800, m)
        bounced = np.array([a.split("@")[1] in DOMAIN_TYPOS.values() for a in addr], dtype=np.bool_)
        bounced |= rng.random(m) < 0.008
        delivered_at = sent + rng.integers(2, 90, m)
        mood = np.exp(-0.4 * p.neg_recent[targets])
        p_open = np.clip(
            p.eng[targets] * strength * mood * np.where(p.active[targets], 1.0, 0.12), 0, 0.97
        )
        opened = ~bounced & (rng.random(m) < p_open)
        day_end = day0 + DAY - 1
        open_at = np.minimum(
            delivered_at + rng.exponential(3 * 3600, m).astype(np.int64), day_end - 600
        )
        open_at = np.maximum(open_at, delivered_at + 1)
        clicks = opened & (rng.random(m) < p.click[targets] * np.where(p.active[targets], 1.0, 0.3))
        click_at = np.minimum(open_at + rng.integers(5, 600, m), day_end)
        p_unsub = (
            0.0015 + 0.03 * np.minimum(p.neg_recent[targets], 1) + 0.004 * (1 - p.eng[targets])
        )
        unsub = ~bounced & (rng.random(m) < p_unsub)
        unsub_at = np.minimum(
            np.where(opened, open_at, delivered_at) + rng.integers(10, 300, m), day_end
        )
        events: list[tuple[int, int, str, str]] = []  # (time, order, email, event)
        for j, a in enumerate(addr):
            events.append((int(sent[j]), 0, a, "sent"))
            if bounced[j]:
                events.append((int(delivered_at[j]), 1, a, "bounce"))
                continue
            events.append((int(delivered_at[j]), 1, a, "delivered"))
            if opened[j]:
                events.append((int(open_at[j]), 2, a, "open"))
            if clicks[j]:
                events.append((int(click_at[j]), 3, a, "click"))
            if unsub[j]:
                events.append((int(unsub_at[j]), 4, a, "unsubscribe"))
        events.sort(key=lambda e: (e[0], e[1]))
        stamps = naive(np.array([e[0] for e in events], dtype=np.int64))
        rows = [[e[2], cid, e[3], s] for e, s in zip(events, stamps, strict=True)]
        # State: realised engagement, clicks that lift purchases, unsubscribes.
        p.eng_ewma[targets] = 0.85 * p.eng_ewma[targets] + 0.15 * opened
        p.last_click[targets[clicks]] = t
        self.n_opens[targets[opened]] += 1
        unsub_rows: list[_ConsentReq] = []
        for j in np.flatnonzero(unsub).tolist():
            i = int(targets[j])
            p.unsub[i] = True
            p.consent_email[i] = False
            unsub_rows.append(
                (
                    i,
                    "email",
                    "email",
                    "marketing",
                    "revoked",
                    int(unsub_at[j]),
                    "email_unsubscribe",
                    addr[j],
                )
            )
        return CsvChunk(spec, path, rows, [r[0] for r in rows]), p.last_click >= t - 1, unsub_rows

    # --- orders -----------------------------------------------------------------------------
    def _orders(
        self, t: int, day0: int, off: IntArr, registered: BoolArr, truth: list[str]
    ) -> tuple[_Orders, list[Chunk]]:
        p, cat = self.p, self.cat
        rng = self._rng(t, 3)
        d = self.plan.day(t)
        clicked = p.last_click >= t - 1
        lam = p.base_rate * np.where(p.active, 1.0, CHURNED_BUY) * (1 + 1.5 * clicked)
        lam *= np.exp(-0.3 * p.neg_recent)
        self._lam = lam
        n_on = rng.poisson(lam * p.online_share * season(d, "online"))
        person = np.repeat(np.arange(p.n), n_on)
        k = len(person)
        utc = day0 - off[person] + seconds_of_day(rng, k, "online")
        guest = ~registered[person] | (rng.random(k) < 0.08)
        account = np.where((p.dup_day[person] <= t) & (rng.random(k) < 0.25), 1, 0)
        app = p.has_app[person] & (rng.random(k) < 0.55)
        n_lines = 1 + np.minimum(rng.poisson(0.7, k), 5)
        line_start = _group_starts(n_lines)
        lp = np.repeat(person, n_lines)
        sku = cat.sample(rng, p.fav[lp])
        qty = rng.choice([1, 2, 3], size=len(lp), p=[0.82, 0.14, 0.04])
        rate = np.array([c.rub_rate for c in COUNTRIES])[p.country[lp]]
        price = cat.price_in(sku, rate)
        discounted = rng.random(len(lp)) < 0.1
        price = np.where(discounted, np.round(price * rng.uniform(0.7, 0.9, len(lp)), 2), price)
        totals = np.add.reduceat(qty * price, line_start) if k else np.zeros(0)
        cancelled = rng.random(k) < 0.03 + 0.04 * p.temper[person]
        returns = ~cancelled & (rng.random(k) < 0.04 + 0.08 * p.temper[person])
        return_day = t + rng.integers(3, 21, k)
        updated = np.where(cancelled, utc + rng.integers(300, 3 * 3600, k), utc)
        ordered_s = iso_local(utc, off[person])
        updated_s = iso_local(updated, off[person])
        cids = p.ident.customer_id((p.lo + person) * 2 + account)
        u_mail = rng.random((k, 3))
        skus = cat.skus
        rows: list[list[str]] = []
        for j in range(k):
            i = int(person[j])
            order_id = f"ORD{t:04d}{self.shard:04d}{j:05d}"
            if guest[j]:
                base = p.work_email[i] if p.work_email[i] and u_mail[j, 0] < 0.1 else p.email[i]
                junk = not base or u_mail[j, 0] > 0.97
                mail = JUNK_EMAILS[0] if junk else email_variant(base, u_mail[j, 1], u_mail[j, 2])
                cust, gmail = "null", _q(mail)
            else:
                cust, gmail = f'"{cids[j]}"', "null"
            s0 = int(line_start[j])
            lines = ",".join(
                f'{{"sku":"{skus[sku[x]]}","qty":{qty[x]},"unit_price":{price[x]:.2f}}}'
                for x in range(s0, s0 + int(n_lines[j]))
            )
            status = "cancelled" if cancelled[j] else "paid"
            currency = COUNTRIES[int(p.country[i])].currency
            row = [
                order_id,
                cust,
                gmail,
                ordered_s[j],
                updated_s[j],
                status,
                currency,
                f"{totals[j]:.2f}",
                f"[{lines}]",
                "app" if app[j] else "web",
            ]
            rows.append(row)
            truth.append(f"orders,order_id,{order_id},{self.pids[i]}\n")
            if returns[j] and return_day[j] < self.plan.days:
                self.pending_returns.setdefault(int(return_day[j]), []).append((i, row))
        paid = person[~cancelled]
        p.last_purchase[paid] = t
        np.add.at(p.n_orders, paid, 1)
        p.issue_recent[person[cancelled]] += 1
        # Returns processed today: the order is exported again with its new status.
        returned_today = np.zeros(p.n, dtype=np.bool_)
        resent: list[list[str]] = []
        for i, row in self.pending_returns.pop(t, []):
            when = day0 - int(off[i]) + int(rng.integers(9 * 3600, 20 * 3600))
            new = list(row)
            new[4] = iso_local(np.array([when]), off[i : i + 1])[0]
            new[5] = "returned"
            resent.append(new)
            returned_today[i] = True
            p.issue_recent[i] += 1
        dup = np.flatnonzero(rng.random(len(rows)) < 0.003).tolist()
        for j in reversed(dup):
            rows.insert(j + 1, list(rows[j]))
        late_mask = np.zeros(len(rows), dtype=np.bool_)
        arrival = self.plan.late.get(("orders", t))
        if arrival is not None:
            # The night batch (orders before 08:00 local) failed and was re-sent days later.
            late_mask = np.array([int(r[3][11:13]) < 8 for r in rows], dtype=np.bool_)
        spec = SOURCES["orders"]
        chunks: list[Chunk] = [
            self._order_chunk(
                spec.filename(d),
                resent + [r for r, m in zip(rows, late_mask, strict=True) if not m],
            )
        ]
        if arrival is not None:
            chunks.append(
                self._order_chunk(
                    spec.filename(self.plan.day(arrival), late=True),
                    [r for r, m in zip(rows, late_mask, strict=True) if m],
                )
            )
        orders = _Orders(
            person, utc, guest, account, app, n_lines, line_start, sku, cancelled, returned_today
        )
        return orders, chunks

    @staticmethod
    def _order_chunk(path: str, rows: list[list[str]]) -> JsonChunk:
        fixed = [(r[0], r[1], r[2], r[4], r[5], r[6], r[8], r[9]) for r in rows]

        def render(cols: dict[str, list[str]]) -> list[str]:
            return [
                f'{{"order_id":"{a}","customer_id":{b},"guest_email":{c},"ordered_at":"{o}",'
                f'"updated_at":"{e}","status":"{f}","currency":"{g}","total_amount":{tot},'
                f'"lines":{h},"channel":"{ch}"}}'
                for (a, b, c, e, f, g, h, ch), o, tot in zip(
                    fixed, cols["ordered_at"], cols["total_amount"], strict=True
                )
            ]

        return JsonChunk(
            SOURCES["orders"], path,
            {"ordered_at": [r[3] for r in rows], "total_amount": [r[7] for r in rows]},
            render, [r[0] for r in rows],
        )  # fmt: skip

    # --- web --------------------------------------------------------------------------------
    def _web(
        self, t: int, day0: int, off: IntArr, registered: BoolArr, clicked: BoolArr,
        orders: _Orders, truth: list[str],
    ) -> list[Chunk]:  # fmt: skip
        p, cat = self.p, self.cat
        rng = self._rng(t, 5)
        d = self.plan.day(t)
        rate = (
            p.web_rate
            * season(d, "web")
            * np.where(p.active, 1.0, CHURNED_WEB)
            * (1 + 1.5 * clicked)
        )
        n_browse = rng.poisson(rate)
        buys = ~orders.cancelled | (rng.random(len(orders.person)) < 0.5)
        o_idx = np.flatnonzero(buys)
        s_person = np.concatenate([np.repeat(np.arange(p.n), n_browse), orders.person[o_idx]])
        s_order = np.concatenate([np.full(int(n_browse.sum()), -1), o_idx])
        purchase = s_order >= 0
        S = len(s_person)
        np.add.at(self.n_sessions, s_person, 1)
        # Device: 0 own browser, 1 own app, 2 household tablet browser, 3 tablet app.
        u = rng.random(S)
        tablet = p.hh_tablet[p.hh[s_person]] & (u < 0.2)
        kind = np.where(tablet, np.where(rng.random(S) < 0.5, 2, 3), 0)
        kind[(kind == 0) & p.has_app[s_person] & (u >= 0.2) & (u < 0.65)] = 1
        o_app = np.zeros(S, dtype=np.bool_)
        o_app[purchase] = orders.app[s_order[purchase]]
        kind[purchase & o_app] = 1
        kind[purchase & ~o_app & (kind % 2 == 1)] -= 1
        slot = np.minimum(rng.integers(0, 3, S), p.n_browsers[s_person] - 1)
        dev = np.empty(S, dtype=object)
        for code, fn in ((0, None), (1, p.devices), (2, None), (3, p.tablets)):
            m = np.flatnonzero(kind == code)
            if not len(m):
                continue
            if code in (0, 2):
                ids = p.cookies(s_person[m], slot[m] if code == 0 else np.full(len(m), 3))
                dev[m] = [f'"cookie_id":"{c}"' for c in ids]
            else:
                assert fn is not None
                dev[m] = [f'"device_id":"{c}"' for c in fn(s_person[m])]
        # Logins: a purchase by a customer always logs in; browsing sometimes does.
        p_login = np.array([0.22, 0.28, 0.22, 0.15])[kind]
        login = registered[s_person] & (rng.random(S) < p_login)
        login[purchase] = ~orders.guest[s_order[purchase]]
        account = np.where((p.dup_day[s_person] <= t) & (rng.random(S) < 0.25), 1, 0)
        account[purchase] = orders.account[s_order[purchase]]
        tail = np.zeros(S, dtype=np.int64)  # add_to_cart events closing a purchase session
        tail[purchase] = orders.n_lines[s_order[purchase]]
        n_ev = 1 + np.minimum(rng.geometric(1 / 4.5, S), 59)
        n_ev = np.maximum(n_ev, np.where(login, 2, 1) + tail + purchase)
        login_pos = 1 + np.floor(rng.random(S) * (n_ev - tail - 1)).astype(np.int64)
        E = int(n_ev.sum())
        e_s = np.repeat(np.arange(S), n_ev)
        pos = _within(n_ev)
        etype = rng.choice(4, size=E, p=_TYPE_P)
        etype[pos == 0] = 0
        etype[login[e_s] & (pos == login_pos[e_s])] = 4
        in_tail = pos >= (n_ev - tail)[e_s]
        etype[in_tail] = 2
        # Times: sessions start at a local hour drawn from the browsing curve; a purchase
        # session ends a minute or two before its order.
        gap = (rng.exponential(40.0, E) * 1000).astype(np.int64) + 500
        gap[pos == 0] = 0
        rel = np.cumsum(gap)
        rel -= np.repeat(rel[_group_starts(n_ev)], n_ev)
        duration = rel[_group_starts(n_ev) + n_ev - 1]
        start_ms = (day0 - off[s_person] + seconds_of_day(rng, S, "web")) * 1000 + rng.integers(
            0, 1000, S
        )
        o_utc = orders.utc[s_order[purchase]]
        start_ms[purchase] = (
            o_utc * 1000 - duration[purchase] - rng.integers(30_000, 180_000, int(purchase.sum()))
        )
        ts = start_ms[e_s] + rel
        # What each event carries besides its type.
        sku_idx = np.full(E, -1, dtype=np.int64)
        viewed = (etype == 1) | ((etype == 2) & ~in_tail)
        sku_idx[viewed] = cat.sample(rng, p.fav[s_person[e_s[viewed]]])
        t_ev = np.flatnonzero(in_tail)
        if len(t_ev):
            o_of = s_order[e_s[t_ev]]
            k_in = pos[t_ev] - (n_ev - tail)[e_s[t_ev]]
            sku_idx[t_ev] = orders.line_sku[orders.line_start[o_of] + k_in]
        extra = np.full(E, "", dtype=object)
        m = np.flatnonzero(sku_idx >= 0)
        extra[m] = self._sku_frag[sku_idx[m]]
        m = np.flatnonzero(etype == 3)
        extra[m] = _QUERY_FRAG[rng.integers(0, len(_QUERY_FRAG), len(m))]
        m = np.flatnonzero(etype == 0)
        # Pages: the home page 40%, a category 45%, a promotion 15% (see _PAGE_FRAG).
        page_kind = rng.random(len(m))
        cats = rng.integers(0, len(CATEGORIES), len(m))
        promo = rng.integers(0, len(PROMO_PAGES), len(m))
        page = np.where(
            page_kind < 0.4, 0, np.where(page_kind < 0.85, 1 + cats, 1 + len(CATEGORIES) + promo)
        )
        extra[m] = _PAGE_FRAG[page]
        m = np.flatnonzero(etype == 4)
        if len(m):
            sess = e_s[m]
            who = s_person[sess]
            cids = p.ident.customer_id((p.lo + who) * 2 + account[sess])
            form = rng.random((len(m), 3))
            parts = []
            for j, i in enumerate(who.tolist()):
                mail = p.email[i]
                text = ""
                if form[j, 0] < 0.75 or not mail:
                    text += f',"customer_id":"{cids[j]}"'
                if mail and form[j, 0] >= 0.4:
                    text += f',"email":{_q(email_variant(mail, form[j, 1], form[j, 2]))}'
                parts.append(text)
            extra[m] = np.array(parts, dtype=object) + extra[m]
        first = _group_starts(n_ev)
        has_utm = rng.random(S) < np.where(clicked[s_person], 0.6, 0.35)
        utm = np.searchsorted(_UTM_CUM, rng.random(S), side="right").clip(0, len(UTM_SOURCES) - 1)
        utm[clicked[s_person] & (rng.random(S) < 0.6)] = UTM_SOURCES.index("email")
        m = np.flatnonzero(has_utm)
        extra[first[m]] = extra[first[m]] + np.array(
            [f',"utm_source":"{UTM_SOURCES[x]}"' for x in utm[m].tolist()], dtype=object
        )
        # In time order, as a tracker exports; a few events delivered twice.
        order = np.argsort(ts, kind="stable")
        order = np.repeat(order, 1 + (rng.random(E) < 0.002))
        eid = uuids(rng.bit_generator.random_raw(E), rng.bit_generator.random_raw(E))
        sid = hex_words(rng.bit_generator.random_raw(S), 16)
        e_person = s_person[e_s]
        pids = self.pids
        if E:
            owners = itemgetter(*e_person.tolist())(pids) if E > 1 else (pids[int(e_person[0])],)
            truth.extend(map("web_events,event_id,%s,%s\n".__mod__, zip(eid, owners, strict=True)))
        spec = SOURCES["web_events"]
        late_at = self.plan.late.get(("web_events", t))
        groups = [(spec.filename(d), order)]
        if late_at is not None:
            # The app SDK's upload for the day arrived late.
            app_ev = (kind[e_s] % 2 == 1)[order]
            groups = [
                (spec.filename(d), order[~app_ev]),
                (spec.filename(self.plan.day(late_at), late=True), order[app_ev]),
            ]
        ts_text = iso_utc_ms(ts)
        names = _EVENT_TYPES
        return [
            self._web_chunk(path, sel, eid, ts_text, dev[e_s], etype, extra, sid, e_s, names)
            for path, sel in groups
        ]

    @staticmethod
    def _web_chunk(
        path: str, sel: IntArr, eid: list[str], ts_text: list[str], dev: npt.NDArray[np.object_],
        etype: IntArr, extra: npt.NDArray[np.object_], sid: list[str], e_s: IntArr,
        names: tuple[str, ...],
    ) -> JsonChunk:  # fmt: skip
        ids = [eid[x] for x in sel.tolist()]
        devs = dev[sel].tolist()
        types = [names[x] for x in etype[sel].tolist()]
        extras = extra[sel].tolist()
        sids = [sid[x] for x in e_s[sel].tolist()]

        def render(cols: dict[str, list[str]]) -> list[str]:
            return [
                f'{{"event_id":"{a}","ts":"{b}",{c},"event_type":"{e}"{f},"session_id":"{g}"}}'
                for a, b, c, e, f, g in zip(ids, cols["ts"], devs, types, extras, sids, strict=True)
            ]

        return JsonChunk(
            SOURCES["web_events"], path, {"ts": [ts_text[x] for x in sel.tolist()]}, render, ids
        )

    # --- stores -----------------------------------------------------------------------------
    def _pos(self, t: int, day0: int, truth: list[str]) -> list[Chunk]:
        p, cat = self.p, self.cat
        rng = self._rng(t, 4)
        d = self.plan.day(t)
        home = p.hh_store[p.hh]
        lam = self._lam * (1 - p.online_share) * season(d, "pos") * (home >= 0)
        n_tx = rng.poisson(lam)
        person = np.repeat(np.arange(p.n), n_tx)
        k = len(person)
        store = home[person].copy()
        away = rng.random(k) < 0.12
        store[away] = rng.integers(0, len(cat.stores), int(away.sum()))
        # Stores are all in Moscow time and print local wall-clock time without an offset.
        local = day0 + seconds_of_day(rng, k, "pos")
        stamps = naive(local)
        n_items = 1 + np.minimum(rng.poisson(1.3, k), 9)
        lp = np.repeat(person, n_items)
        sku = cat.sample(rng, p.fav[lp])
        qty = rng.choice([1, 2, 3, 4], size=len(lp), p=[0.78, 0.15, 0.05, 0.02])
        amount = qty * cat.price_rub[sku]
        line_no = _within(n_items) + 1
        u = rng.random((k, 3))
        shared = p.ident.shared_card
        rows: list[list[str]] = []
        keys: list[str] = []
        late_at = self.plan.late.get(("pos_sales", t))
        late_rows: list[list[str]] = []
        late_keys: list[str] = []
        x = 0
        for j in range(k):
            i = int(person[j])
            tx = f"TX{t:04d}{self.shard:04d}{j:05d}"
            if p.card[i] and u[j, 0] < 0.85:
                card = p.card_number(i)
            elif u[j, 1] < 0.2:
                card = shared  # the cashier scans the store's own card
                if i not in self.shared_card_users:
                    self.shared_card_users.add(i)
                    truth.append(f"identity,loyalty_card,{shared},{self.pids[i]}\n")
            else:
                card = ""
            cc, nat = p.phone[i]
            phone = phone_variant(cc, nat, u[j, 2] / 0.2) if nat and u[j, 2] < 0.2 else ""
            st = cat.stores[int(store[j])].store_id
            target_rows, target_keys = (
                (late_rows, late_keys)
                if late_at is not None and int(store[j]) % 3 == t % 3
                else (rows, keys)
            )
            for _ in range(int(n_items[j])):
                target_rows.append(
                    [
                        tx,
                        str(line_no[x]),
                        st,
                        card,
                        phone,
                        cat.skus[sku[x]],
                        str(qty[x]),
                        f"{amount[x]:.2f}",
                        "RUB",
                        stamps[j],
                    ]
                )
                target_keys.append(tx)
                x += 1
            truth.append(f"pos_sales,transaction_id,{tx},{self.pids[i]}\n")
        p.last_purchase[person] = t
        np.add.at(p.n_pos, person, 1)
        spec = SOURCES["pos_sales"]
        chunks: list[Chunk] = [CsvChunk(spec, spec.filename(d), rows, keys)]
        if late_at is not None:
            chunks.append(
                CsvChunk(
                    spec, spec.filename(self.plan.day(late_at), late=True), late_rows, late_keys
                )
            )
        return chunks

    # --- support ----------------------------------------------------------------------------
    def _tickets(
        self, t: int, day0: int, off: IntArr, orders: _Orders, truth: list[str]
    ) -> CsvChunk:
        p = self.p
        rng = self._rng(t, 6)
        spec = SOURCES["support_tickets"]
        cancelled_today = np.zeros(p.n, dtype=np.bool_)
        cancelled_today[orders.person[orders.cancelled]] = True
        trigger = (orders.returned_today | cancelled_today) & (rng.random(p.n) < 0.15)
        n_t = rng.poisson(p.complaint * (1 + 3 * np.minimum(p.issue_recent, 2))) + trigger
        person = np.repeat(np.arange(p.n), n_t)
        k = len(person)
        caused = trigger[person] & (_within(n_t) == 0)
        topic = rng.choice(len(TICKET_TOPICS), size=k, p=_TOPIC_P)
        topic[caused] = np.where(orders.returned_today[person[caused]], 1, 2)
        p_neg = np.clip(
            0.2 + 0.55 * p.temper[person] + 0.35 * np.minimum(p.issue_recent[person], 1), 0, 0.95
        )
        negative = rng.random(k) < p_neg
        channel = rng.choice(3, size=k, p=[0.35, 0.35, 0.30])
        opened = day0 - off[person] + seconds_of_day(rng, k, "support")
        resolve_after = np.where(
            channel == 2,
            rng.integers(300, 3600, k),
            np.exp(rng.normal(np.log(18 * 3600), 0.9, k)).astype(np.int64),
        )
        never = rng.random(k) < np.where(channel == 2, 0.03, 0.08)
        resolved = opened + resolve_after
        opened_s = iso_local(opened, off[person])
        resolved_s = iso_local(resolved, off[person])
        u = rng.random((k, 8))
        rows: list[list[str]] = []
        for j in range(k):
            i = int(person[j])
            ticket = f"TCK{t:04d}{self.shard:04d}{j:04d}"
            ch = ("phone", "email", "chat")[int(channel[j])]
            mail = p.work_email[i] if p.work_email[i] and u[j, 0] < 0.15 else p.email[i]
            email = (
                email_variant(mail, u[j, 1], u[j, 2])
                if mail and u[j, 3] < (0.2 if ch == "phone" else 0.92)
                else ""
            )
            cc, nat = p.phone[i]
            phone = (
                phone_variant(cc, nat, u[j, 4])
                if nat and u[j, 5] < (0.95 if ch == "phone" else 0.15)
                else ""
            )
            message = self._message(
                int(p.country[i]), TICKET_TOPICS[int(topic[j])], bool(negative[j]), u[j, 6], u[j, 7]
            )
            row = [
                ticket,
                email,
                phone,
                ch,
                TICKET_TOPICS[int(topic[j])],
                message,
                opened_s[j],
                "",
                opened_s[j],
            ]
            same_day = resolved[j] + int(off[i]) < day0 + DAY
            if not never[j] and same_day:
                row[7] = row[8] = resolved_s[j]
            elif not never[j]:
                when = (int(resolved[j]) + int(off[i]) - self.start_s) // DAY
                if when < self.plan.days:
                    self.pending_tickets.setdefault(when, []).append((i, row, resolved_s[j]))
            rows.append(row)
            truth.append(f"support_tickets,ticket_id,{ticket},{self.pids[i]}\n")
        neg = person[negative]
        p.neg_recent[neg] += 1
        np.add.at(p.n_neg_tickets, neg, 1)
        resent = []
        for _, row, res in self.pending_tickets.pop(t, []):
            new = list(row)
            new[7] = new[8] = res
            resent.append(new)
        rows = resent + rows
        return CsvChunk(spec, spec.filename(self.plan.day(t)), rows, [r[0] for r in rows])

    @staticmethod
    def _message(country: int, topic: str, negative: bool, u: float, v: float) -> str:
        russian = country == 0 and u < 0.85
        if negative:
            bodies = (NEG_BODY_RU if russian else NEG_BODY_EN)[topic]
            opening = (NEG_OPEN_RU if russian else NEG_OPEN_EN)[int(v * 5) % (5 if russian else 4)]
            closing = (NEG_CLOSE_RU if russian else NEG_CLOSE_EN)[
                int(v * 37) % (5 if russian else 4)
            ]
            body = bodies[int(v * 101) % len(bodies)]
        else:
            pool = POS_BODY_RU if russian else POS_BODY_EN
            body = pool[int(v * 101) % len(pool)]
            opening = (POS_OPEN_RU if russian else POS_OPEN_EN)[int(v * 7) % 3]
            closing = ""
        return " ".join(x for x in (opening, body + ("." if closing else ""), closing) if x)

    # --- consent ----------------------------------------------------------------------------
    def _render_consents(self, t: int, off: IntArr, reqs: list[_ConsentReq]) -> list[list[str]]:
        """Consent rows; the identifier is spelled as the person typed it on the form."""
        if not reqs:
            return []
        p = self.p
        rng = self._rng(t, 10)
        uv = rng.random((len(reqs), 2)).tolist()
        idx = np.array([r[0] for r in reqs], dtype=np.int64)
        at = np.array([r[5] for r in reqs], dtype=np.int64)
        iso = iso_local(at, off[idx])
        # Typed in from a paper form at the till: DD.MM.YYYY HH:MM, Moscow time, no seconds.
        paper = naive(at + _CRM_OFFSET)
        rows = []
        for j, (i, id_type, channel, purpose, status, _, source, ident) in enumerate(reqs):
            if not ident:
                u, v = uv[j]
                ident = (
                    email_variant(p.email[i], u, v)
                    if id_type == "email"
                    else phone_variant(*p.phone[i], u)
                )
            if source == "pos_paper_form":
                x = paper[j]
                stamp = f"{x[8:10]}.{x[5:7]}.{x[:4]} {x[11:16]}"
            else:
                stamp = iso[j]
            rows.append([ident, id_type, channel, purpose, status, stamp, source])
        return rows

    def _consent_snapshot(
        self, idx: IntArr, rng: np.random.Generator, at: IntArr | None = None
    ) -> list[_ConsentReq]:
        """Current consents of people ``idx`` (day one: the history; later: sign-ups)."""
        p = self.p
        reqs: list[_ConsentReq] = []
        u = rng.random((len(idx), 5)).tolist()
        cum = np.cumsum(_CONSENT_SOURCE_P)
        for j, i in enumerate(idx.tolist()):
            uj = u[j]
            when = (
                int(at[j])
                if at is not None
                else int(p.created_at[i] + uj[0] * (self.start_s - p.created_at[i]))
            )
            src = _CONSENT_SOURCES[min(int(np.searchsorted(cum, uj[1])), len(cum) - 1)]
            if src == "pos_paper_form" and p.hh_store[p.hh[i]] < 0:
                src = "web_form"
            email, phone = p.email[i], p.phone[i][1]
            c_email, c_sms, c_ads = (
                bool(p.consent_email[i]),
                bool(p.consent_sms[i]),
                bool(p.consent_ads[i]),
            )
            # Refusals are recorded only sometimes (a box left unticked leaves no trace).
            if email and (c_email or uj[2] < 0.6):
                reqs.append(
                    (
                        i,
                        "email",
                        "email",
                        "marketing",
                        "granted" if c_email else "revoked",
                        when,
                        src,
                        "",
                    )
                )
            if phone and (c_sms or uj[3] < 0.4):
                reqs.append(
                    (
                        i,
                        "phone",
                        "sms",
                        "marketing",
                        "granted" if c_sms else "revoked",
                        when,
                        src,
                        "",
                    )
                )
            if (email or phone) and (c_ads or uj[4] < 0.5):
                kind = "email" if email else "phone"
                reqs.append(
                    (
                        i,
                        kind,
                        "ads",
                        "profiling",
                        "granted" if c_ads else "revoked",
                        when + 1,
                        src,
                        "",
                    )
                )
        return reqs

    def _consent_changes(
        self, t: int, day0: int, off: IntArr, registered: BoolArr, orders: _Orders
    ) -> list[_ConsentReq]:
        p = self.p
        rng = self._rng(t, 7)
        reqs: list[_ConsentReq] = []
        when = day0 - off + rng.integers(7 * 3600, 23 * 3600, p.n)
        flip = np.flatnonzero(registered & (rng.random(p.n) < P_CONSENT_CHANGE))
        what = rng.integers(0, 3, len(flip)).tolist()
        via = rng.random(len(flip)).tolist()
        for i, w, v in zip(flip.tolist(), what, via, strict=True):
            src = "account_settings" if v < 0.7 else "call_centre"
            if w == 0 and p.email[i]:
                p.consent_email[i] = not p.consent_email[i] and not p.unsub[i]
                status = "granted" if p.consent_email[i] else "revoked"
                reqs.append((i, "email", "email", "marketing", status, int(when[i]), src, ""))
            elif w == 1 and p.phone[i][1]:
                p.consent_sms[i] = not p.consent_sms[i]
                status = "granted" if p.consent_sms[i] else "revoked"
                reqs.append((i, "phone", "sms", "marketing", status, int(when[i]), src, ""))
            elif w == 2 and (p.email[i] or p.phone[i][1]):
                p.consent_ads[i] = not p.consent_ads[i]
                status = "granted" if p.consent_ads[i] else "revoked"
                reqs.append(
                    (
                        i,
                        "email" if p.email[i] else "phone",
                        "ads",
                        "profiling",
                        status,
                        int(when[i]),
                        src,
                        "",
                    )
                )
        # Opt-in ticked at checkout.
        buyers, first_order = np.unique(orders.person[~orders.guest], return_index=True)
        order_utc = orders.utc[~orders.guest][first_order]
        chosen = ~p.consent_email[buyers] & ~p.unsub[buyers] & (rng.random(len(buyers)) < 0.05)
        for i, at in zip(buyers[chosen].tolist(), order_utc[chosen].tolist(), strict=True):
            if p.email[i]:
                p.consent_email[i] = True
                reqs.append((i, "email", "email", "marketing", "granted", int(at), "checkout", ""))
        return reqs

    # --- churn ------------------------------------------------------------------------------
    def hazard(self, t: int) -> npt.NDArray[np.float64]:
        """Today's churn hazard per person (see the module docstring).

        Example:
            >>> from cdp_spark.generate.catalog import Catalog
            >>> shard = Shard(Plan.make(seed=1, customers=100, days=3), Catalog.build(1), 0)
            >>> bool((shard.hazard(0) > 0).all())
            True
        """
        p = self.p
        recency = np.clip((t - p.last_purchase) / 30.0, 0, 3)
        return p.h0 * np.exp(
            0.8 * p.neg_recent
            + 0.5 * p.issue_recent
            - 3.0 * (p.eng_ewma - 0.25)
            + 0.3 * recency
            + 0.7 * p.unsub
        )

    def _churn(self, t: int) -> None:
        p = self.p
        rng = self._rng(t, 9)
        h = self.hazard(t)
        self.final_hazard = h
        churn = p.active & (rng.random(p.n) < -np.expm1(-h))
        p.active[churn] = False
        p.churn_day[churn] = t
        p.neg_recent *= 0.97
        p.issue_recent *= 0.95

    # --- ground truth about people -----------------------------------------------------------
    PEOPLE_COLUMNS = (
        "person_id", "household_id", "country", "city", "timezone", "gender", "birth_date",
        "segment", "registered", "registered_on", "crm_accounts", "has_app", "loyalty_card",
        "base_purchase_rate", "online_share", "web_rate", "email_open_prob", "email_click_prob",
        "complaint_rate", "temper", "base_hazard", "final_hazard", "email_engagement",
        "churned", "churn_date", "orders", "pos_transactions", "web_sessions", "email_opens",
        "negative_tickets",
    )  # fmt: skip

    def people_rows(self) -> list[list[str]]:
        """One row per person: latent traits, final state and outcome (``_truth/people.csv``).

        Example:
            >>> from cdp_spark.generate.catalog import Catalog
            >>> shard = Shard(Plan.make(seed=1, customers=10, days=1), Catalog.build(1), 0)
            >>> len(shard.people_rows()[0]) == len(Shard.PEOPLE_COLUMNS)
            True
        """
        p, plan = self.p, self.plan
        last = plan.days - 1
        reg = p.reg_day
        days = [plan.day(t).isoformat() for t in range(plan.days)]

        def num(values: npt.NDArray[np.float64], fmt: str) -> list[str]:
            return [format(v, fmt) for v in values.tolist()]

        def flag(values: BoolArr) -> list[str]:
            return ["true" if v else "false" for v in values.tolist()]

        columns = [
            self.pids,
            [f"H{x:07d}" for x in p.hh_first[p.hh].tolist()],
            [COUNTRIES[c].code for c in p.country.tolist()],
            [CITIES[c].native for c in p.city.tolist()],
            [TIMEZONES[z].name for z in p.tz.tolist()],
            ["FM"[g] for g in p.gender.tolist()],
            np.datetime_as_string(p.birth_day.astype("datetime64[D]")).tolist(),
            [SEGMENTS[x] for x in p.segment.tolist()],
            flag(reg <= last),
            [days[r] if 0 <= r <= last else "" for r in reg.tolist()],
            [str(x) for x in ((reg <= last).astype(int) + (p.dup_day <= last)).tolist()],
            flag(p.has_app),
            [("none", "own", "household")[c] for c in p.card.tolist()],
            num(p.base_rate, ".5f"), num(p.online_share, ".3f"), num(p.web_rate, ".4f"),
            num(p.eng, ".3f"), num(p.click, ".3f"), num(p.complaint, ".5f"), num(p.temper, ".3f"),
            num(p.h0, ".5f"), num(self.final_hazard, ".5f"), num(p.eng_ewma, ".3f"),
            flag(~p.active),
            [days[c] if c >= 0 else "" for c in p.churn_day.tolist()],
            [str(x) for x in p.n_orders.tolist()], [str(x) for x in p.n_pos.tolist()],
            [str(x) for x in self.n_sessions.tolist()], [str(x) for x in self.n_opens.tolist()],
            [str(x) for x in p.n_neg_tickets.tolist()],
        ]  # fmt: skip
        return [list(row) for row in zip(*columns, strict=True)]


__all__ = ["Shard"]
