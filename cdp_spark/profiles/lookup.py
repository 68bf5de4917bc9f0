"""Profile look-up for the call-centre screen: delta-rs only, no Spark start-up.

:func:`lookup_profile` finds a person by e-mail, phone or ``person_id`` and returns their
unified profile, recent activity across channels, segments and scores as plain Python objects.
It reads the Delta tables with the ``deltalake`` package and pushes every filter down to
pyarrow's dataset scanner (files whose statistics exclude the value are not read):

1. the e-mail or phone is normalised as silver normalises it (:func:`normalize_email_value`,
   the phone normaliser of :mod:`cdp_spark.normalize`) and resolved to a ``person_id`` through
   ``gold.identity_identifiers``;
2. ``gold.customer_profiles`` gives the profile row;
3. ``gold.person_activity`` gives the latest records of each kind (orders, till receipts,
   web events, e-mail events, tickets), kept per person by the profiles stage;
4. ``gold.segment_membership`` (its latest run, found from the Delta log) and
   ``gold.scored_profiles`` (latest score) when they exist.

Each of these tables is laid out by its look-up key (:mod:`cdp_spark.storage.layout`), so
the min/max statistics of the Delta log leave one file to read per table (per date
partition): the look-up costs the same at 100k and at 1M customers. A lakehouse written
before that layout is brought to it by ``cdp optimize``.

Arrow tables are converted to Python objects at once and dropped: holding a delta-rs Arrow
result at interpreter exit can abort the process (apache/arrow#34314).

Example:
    >>> found = lookup_profile(load_config("local"), email="Anna@X.ru ")   # doctest: +SKIP
    >>> found["profile"]["person_id"], found["resolved_by"]
    ('P1', {'email': 'anna@x.ru'})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.storage.base import split_table_name

PROFILES_TABLE = "gold.customer_profiles"
IDENTIFIERS_TABLE = "gold.identity_identifiers"
CLUSTERS_TABLE = "gold.identity_clusters"
SEGMENTS_TABLE = "gold.segment_membership"
SCORES_TABLE = "gold.scored_profiles"
ACTIVITY_TABLE = "gold.person_activity"
# The look-up key of each table it reads, as cdp_spark.storage.layout sorts them (repeated
# here because that module imports pyspark, and the look-up must not): files are pruned on
# these columns only, which keeps opening a table of many files cheap.
LOOKUP_KEYS: dict[str, tuple[str, ...]] = {
    IDENTIFIERS_TABLE: ("id_type", "id_value"),
    CLUSTERS_TABLE: ("person_id",),
    PROFILES_TABLE: ("person_id",),
    ACTIVITY_TABLE: ("person_id",),
    SCORES_TABLE: ("person_id",),
    SEGMENTS_TABLE: ("person_id",),
}

# What the screen shows of each activity source: (role, time column, columns).
ACTIVITY: dict[str, tuple[str, list[str]]] = {
    "orders": (
        "ordered_at",
        ["order_id", "ordered_at", "status", "currency", "total_amount", "channel"],
    ),
    "pos": (
        "purchased_at",
        [
            "transaction_id",
            "line_no",
            "store_id",
            "sku",
            "qty",
            "amount",
            "currency",
            "purchased_at",
        ],
    ),
    "web": ("ts", ["event_id", "ts", "event_type", "sku", "page", "session_id"]),
    "email": ("event_at", ["campaign_id", "event", "event_at"]),
    "support": (
        "opened_at",
        ["ticket_id", "opened_at", "resolved_at", "channel", "topic", "message"],
    ),
}


class ProfileLookupError(CdpError):
    """The look-up was asked wrongly (no key, two keys, a value that is not an e-mail)."""


# --- identifiers in pure Python (silver's Spark normalisers, value by value) ----------------

_WRAPPERS = "<>\"'`«»“”‘’()[]"
_WHITESPACE = (
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# Python's re has no \p{L}: [^\W_] is "a letter or a digit", [^\W\d_] "a letter".
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_EMAIL = re.compile(
    "^"
    + _ATOM
    + r"(?:\."
    + _ATOM
    + ")*@(?:"
    + _LABEL
    + r"\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})$"
)


def normalize_email_value(raw: str | None) -> str | None:
    """One e-mail normalised like :func:`cdp_spark.normalize.normalize_email` does in Spark.

    Trim, lower-case, take the address out of ``"Name <address>"`` and ``mailto:``, strip
    quotes and brackets, check the syntax, map provider aliases, drop ``+tags`` where the
    provider ignores them and the dots of a gmail.com local part. None when not an address.

    Example:
        >>> normalize_email_value(" <Ivan.Petrov+shop@GoogleMail.com> ")
        'ivanpetrov@gmail.com'
        >>> normalize_email_value("ivan@mail") is None
        True
    """
    from cdp_spark.normalize import EMAIL_DOMAIN_ALIASES, PLUS_TAG_DOMAINS

    if raw is None:
        return None
    s = raw.strip(_WHITESPACE).lower()
    if "<" in s:
        match = re.match(r"^.*<([^<>]+@[^<>]+)>\W*$", s, flags=re.DOTALL)
        if match:
            s = match.group(1)
    if s.startswith("mailto:"):
        s = s[7:]
    if s and (s[0] in _WRAPPERS or s[-1] in _WRAPPERS):
        s = s.strip(_WRAPPERS + _WHITESPACE)
    if not (_EMAIL.match(s) and len(s) <= 254 and len(s.split("@", 1)[0]) <= 64):
        return None
    local, domain = s.split("@", 1)  # the syntax allows exactly one "@"
    domain = EMAIL_DOMAIN_ALIASES.get(domain, domain)
    if domain in PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain == "gmail.com":
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def normalize_phone_value(raw: str | None, region: str) -> str | None:
    """One phone number in E.164, as silver's ``phone_e164`` (the same Python function).

    Example:
        >>> normalize_phone_value("8 (916) 123-45-67", "RU")
        '+79161234567'
    """
    from cdp_spark.normalize import _to_e164

    return _to_e164(raw, region)


# --- reading ---------------------------------------------------------------------------------


def table_uri(cfg: CdpConfig, table: str) -> str:
    """Where ``table`` lives under the configured lakehouse root.

    Example:
        >>> table_uri(load_config("local"), "gold.kpis")                  # doctest: +SKIP
        '/repo/lakehouse/gold/kpis'
    """
    layer, name = split_table_name(table)
    return f"{cfg.lakehouse_root.rstrip('/')}/{layer}/{name}"


def read_rows(
    cfg: CdpConfig,
    table: str,
    *,
    filter: Any = None,
    columns: Sequence[str] | None = None,
    equal: Mapping[str, str] | None = None,
) -> list[dict[str, Any]] | None:
    """Rows of ``table`` matching a pyarrow ``filter`` as dicts; None when the table is absent.

    ``equal`` (string column -> value, a part of ``filter``) lets the Delta log's statistics
    pick the files before any is opened (:func:`pruned_dataset`).

    Example:
        >>> import pyarrow.compute as pc
        >>> read_rows(cfg, "gold.customer_profiles", filter=pc.field("person_id") == "P1")
        ...                                                                # doctest: +SKIP
        [{'person_id': 'P1', ...}]
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(table_uri(cfg, table))
    except TableNotFoundError:
        return None
    dataset = pruned_dataset(dt, LOOKUP_KEYS.get(table), equal=equal)
    present = set(dataset.schema.names)
    cols = [c for c in columns if c in present] if columns is not None else None
    arrow = dataset.to_table(filter=filter, columns=cols)
    rows: list[dict[str, Any]] = arrow.to_pylist()
    del arrow, dataset, dt  # no Arrow buffers of delta-rs may outlive the call (arrow#34314)
    return rows


def pruned_dataset(
    dt: Any, prune_on: Sequence[str] | None = None, *, equal: Mapping[str, str] | None = None
) -> Any:
    """A pyarrow dataset of a Delta table whose files are skipped by the log's statistics.

    With ``equal`` (string column -> value), only the files whose statistics admit those
    values are listed at all (delta-rs's ``file_pruning_predicate``): building a fragment for
    every file of a 1M-customer table cost more than reading the one file that matters.

    ``DeltaTable.to_pyarrow_dataset()`` (deltalake 1.6) turns a missing maximum into
    ``column <= null``, which excludes the file from *any* filter on that column: the lakehouse
    leaves out the maximum of a string longer than 32 characters (a cut one is no upper
    bound), so a look-up by a long e-mail or a UUID silently found nothing. Here each file's
    guarantee uses only the bounds the log has (string, integer and date columns; only the
    ``prune_on`` columns when given) and its partition values.

    Example:
        >>> pruned_dataset(DeltaTable(uri)).to_table(filter=pc.field("person_id") == "P1")
        ...                                                                # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    predicate = [(column, "=", value) for column, value in (equal or {}).items()]
    base = dt.to_pyarrow_dataset(file_pruning_predicate=predicate or None)
    fragments = {f.path: f for f in base.get_fragments()}
    if not fragments:
        return base
    schema = base.schema
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    bounded = {
        f.name
        for f in schema
        if (pa.types.is_string(f.type) or pa.types.is_integer(f.type) or pa.types.is_date(f.type))
        and (prune_on is None or f.name in prune_on)
    }
    rebuilt = []
    for action in actions:
        fragment = fragments.get(action["path"])
        if fragment is None:
            if predicate:  # a file the predicate left out
                continue
            return base  # a path form we do not know: keep delta-rs's own fragments
        terms = []
        for key, value in action.items():
            kind, _, column = key.partition(".")
            if column not in schema.names:
                continue
            typed = schema.field(column).type
            if kind == "partition":
                terms.append(
                    pc.field(column).is_null()
                    if value is None
                    else pc.field(column) == pa.scalar(value).cast(typed)
                )
            elif kind in ("min", "max") and value is not None and column in bounded:
                bound = pa.scalar(value).cast(typed)
                side = pc.field(column) >= bound if kind == "min" else pc.field(column) <= bound
                terms.append(side | pc.field(column).is_null())
        guarantee = terms[0] if terms else pc.scalar(True)
        for term in terms[1:]:
            guarantee = guarantee & term
        rebuilt.append(
            base.format.make_fragment(
                fragment.path, fragment.filesystem, partition_expression=guarantee
            )
        )
    if len(rebuilt) < len(fragments):  # some listed file has no add action we could match
        return base
    filesystem = next(iter(fragments.values())).filesystem
    return ds.FileSystemDataset(rebuilt, schema, base.format, filesystem)


def read_frame(cfg: CdpConfig, table: str, columns: Sequence[str] | None = None) -> Any:
    """A whole gold table as a pandas DataFrame (for notebooks), read with delta-rs.

    Example:
        >>> read_frame(cfg, "gold.kpis").query("kpi == 'clv_avg'")          # doctest: +SKIP
    """
    import pandas as pd

    rows = read_rows(cfg, table, columns=columns)
    if rows is None:
        raise CdpError(f"{table} does not exist", hint="run `cdp run profiles` first")
    return pd.DataFrame(rows, columns=list(columns) if columns else None)


def _isin(column: str, values: Sequence[Any]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    typed = pa.array(list(values), type=pa.string()) if values else pa.array([], pa.string())
    return pc.field(column).isin(typed)


def _eq(column: str, value: Any) -> Any:
    import pyarrow.compute as pc

    return pc.field(column) == value


def _plain(value: Any) -> Any:
    """JSON-friendly values: Decimal -> float, map lists -> dict, dates as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, tuple) and len(v) == 2 for v in value)
    ):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def resolve_person(
    cfg: CdpConfig, *, email: str | None = None, phone: str | None = None
) -> tuple[str | None, dict[str, str]]:
    """The ``person_id`` holding the e-mail or phone (normalised first), and the key used.

    Example:
        >>> resolve_person(cfg, phone="8 916 123-45-67")                  # doctest: +SKIP
        ('P1', {'phone': '+79161234567'})
    """
    if email is not None:
        kind, value = "email", normalize_email_value(email)
        if value is None:
            raise ProfileLookupError(
                f"{email!r} is not an e-mail address", hint="e.g. anna@example.ru"
            )
    else:
        kind, value = "phone", normalize_phone_value(phone, cfg.standardize.default_region)
        if value is None:
            raise ProfileLookupError(
                f"{phone!r} is not a valid phone number",
                hint="give it in international form (+7...) or as a "
                f"{cfg.standardize.default_region} number",
            )
    rows = read_rows(
        cfg,
        IDENTIFIERS_TABLE,
        filter=_eq("id_type", kind) & _eq("id_value", value),
        columns=["person_id"],
        equal={"id_type": kind, "id_value": value},
    )
    if rows is None:
        raise CdpError(f"{IDENTIFIERS_TABLE} does not exist", hint="run `cdp run identity` first")
    persons = sorted({r["person_id"] for r in rows})
    return (persons[0] if persons else None), {kind: value}


def recent_activity(cfg: CdpConfig, person_id: str, limit: int) -> dict[str, list[dict[str, Any]]]:
    """The ``limit`` latest records of each activity source of a person, newest first.

    Read from ``gold.person_activity``, which the profiles stage fills with the latest
    ``profiles.activity_items`` records per person and kind (so ``limit`` is capped there).

    Raises:
        CdpError: ``gold.person_activity`` does not exist (a lakehouse from before it).

    Example:
        >>> recent_activity(cfg, "P1", 3)["orders"][0]["order_id"]        # doctest: +SKIP
        'O2'
    """
    shown = sorted({c for _, columns in ACTIVITY.values() for c in columns})
    rows = read_rows(
        cfg,
        ACTIVITY_TABLE,
        filter=_eq("person_id", person_id) & (pc_field("rank") <= limit),
        columns=["activity", "rank", *shown],
        equal={"person_id": person_id},
    )
    if rows is None:
        raise CdpError(
            f"{ACTIVITY_TABLE} does not exist",
            hint="run `cdp run profiles` once: it writes the recent activity the look-up shows",
        )
    out: dict[str, list[dict[str, Any]]] = {role: [] for role in ACTIVITY}
    for r in sorted(rows, key=lambda r: (r["activity"], r["rank"])):
        role = r["activity"]
        if role in ACTIVITY:
            out[role].append({c: _plain(r.get(c)) for c in ACTIVITY[role][1]})
    return out


def pc_field(column: str) -> Any:
    """A pyarrow dataset field expression (imported lazily: no pyarrow cost at CLI start)."""
    import pyarrow.compute as pc

    return pc.field(column)


def latest_run_date(cfg: CdpConfig, table: str, column: str) -> str | None:
    """The latest date in ``column`` of ``table`` (ISO text), read from the Delta log.

    A partition column's values come from the table's partition list, another column's from
    the files' max statistics; the column is scanned only when some file has no statistics.
    None when the table is empty.

    Raises:
        deltalake.exceptions.TableNotFoundError: the table does not exist.

    Example:
        >>> latest_run_date(cfg, "gold.segment_membership", "run_date")    # doctest: +SKIP
        '2026-03-31'
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    dt = DeltaTable(table_uri(cfg, table))
    values: list[Any]
    if column in dt.metadata().partition_columns:
        values = [p.get(column) for p in dt.partitions()]
    else:
        actions = pa.table(dt.get_add_actions(flatten=True))
        stat = f"max.{column}"
        values = actions.column(stat).to_pylist() if stat in actions.column_names else [None]
        del actions
        if not values or any(v is None for v in values):
            values = [r[column] for r in read_rows(cfg, table, columns=[column]) or []]
    del dt  # no Arrow buffers of delta-rs may outlive the call (arrow#34314)
    present = [v if isinstance(v, str) else v.isoformat() for v in values if v is not None]
    return max(present) if present else None


def person_segments(cfg: CdpConfig, person_id: str) -> dict[str, Any] | None:
    """Segments of the person in the latest run of ``gold.segment_membership`` (None: no table).

    The latest run date comes from the Delta log (the table's partitions), not from a scan.

    Example:
        >>> person_segments(cfg, "P1")                                     # doctest: +SKIP
        {'run_date': '2026-03-01', 'segments': ['at_risk_high_value']}
    """
    from deltalake.exceptions import TableNotFoundError

    try:
        latest = latest_run_date(cfg, SEGMENTS_TABLE, "run_date")
    except TableNotFoundError:
        return None
    if latest is None:
        return {"run_date": None, "segments": []}
    rows = (
        read_rows(
            cfg,
            SEGMENTS_TABLE,
            filter=_eq("person_id", person_id) & _eq("run_date", date.fromisoformat(latest)),
            columns=["segment"],
            equal={"person_id": person_id},
        )
        or []
    )
    return {"run_date": latest, "segments": sorted({r["segment"] for r in rows})}


def person_scores(cfg: CdpConfig, person_id: str) -> dict[str, Any] | None:
    """The latest model scores of the person (None: no scores table or no score yet).

    Example:
        >>> person_scores(cfg, "P1")["churn_decile"]                      # doctest: +SKIP
        7
    """
    rows = read_rows(
        cfg, SCORES_TABLE, filter=_eq("person_id", person_id), equal={"person_id": person_id}
    )
    if not rows:
        return None
    latest = max(rows, key=lambda r: r.get("score_date") or date.min)
    return {k: _plain(v) for k, v in latest.items() if k != "person_id"}


def lookup_profile(
    cfg: CdpConfig,
    *,
    email: str | None = None,
    phone: str | None = None,
    person_id: str | None = None,
    recent: int | None = None,
) -> dict[str, Any] | None:
    """The unified view of one person for a support agent, or None when nobody matches.

    Give exactly one of ``email``, ``phone`` (raw, as the caller types them) or ``person_id``.
    Returns ``{"person_id", "resolved_by", "profile", "activity", "segments", "scores"}``;
    ``segments`` / ``scores`` are None until those stages have run.

    Raises:
        CdpError: no key or several keys; an e-mail or phone that cannot be valid; the gold
            tables are missing.

    Example:
        >>> view = lookup_profile(cfg, phone="+7 916 123 45 67")           # doctest: +SKIP
        >>> view["profile"]["lifecycle_stage"], len(view["activity"]["orders"])
        ('active', 3)
    """
    given = {k: v for k, v in (("email", email), ("phone", phone), ("person_id", person_id)) if v}
    if len(given) != 1:
        raise ProfileLookupError(
            "give exactly one of email, phone or person_id",
            hint="e.g. cdp profile --email anna@example.ru",
        )
    if person_id:
        resolved_by = {"person_id": person_id}
    else:
        found, resolved_by = resolve_person(cfg, email=email, phone=phone)
        if found is None:
            return None
        person_id = found
    rows = read_rows(
        cfg, PROFILES_TABLE, filter=_eq("person_id", person_id), equal={"person_id": person_id}
    )
    if rows is None:
        raise CdpError(f"{PROFILES_TABLE} does not exist", hint="run `cdp run profiles` first")
    if not rows:
        return None
    profile = {k: _plain(v) for k, v in rows[0].items()}
    profile["golden_sources"] = dict(rows[0].get("golden_sources") or [])
    return {
        "person_id": person_id,
        "resolved_by": resolved_by,
        "profile": profile,
        "activity": recent_activity(cfg, person_id, recent or cfg.profiles.recent_items),
        "segments": person_segments(cfg, person_id),
        "scores": person_scores(cfg, person_id),
    }


# --- the screen ------------------------------------------------------------------------------

_PROFILE_GROUPS: list[tuple[str, list[str]]] = [
    ("Purchases", ["orders", "online_orders", "store_orders", "revenue", "aov", "first_purchase_at",
                   "last_purchase_at", "recency_days", "purchase_frequency", "rfm_score",
                   "preferred_channel", "preferred_category"]),
    ("Value and lifecycle", ["lifecycle_stage", "clv", "churn_rate", "churn_source"]),
    ("Web (7/30/90 days)", ["web_sessions_7d", "web_sessions_30d", "web_sessions_90d",
                            "product_views_30d", "cart_abandons_30d", "last_web_at"]),
    ("E-mail", ["emails_delivered", "email_open_rate", "email_click_rate", "email_unsubscribed",
                "best_send_hour"]),
    ("Support", ["tickets", "open_tickets", "negative_ticket_share", "last_ticket_at"]),
]  # fmt: skip


def render_lookup(view: dict[str, Any], cfg: CdpConfig) -> Any:
    """The look-up as rich panels and tables (what ``cdp profile`` prints).

    Example:
        >>> view = lookup_profile(cfg, person_id="P1")                   # doctest: +SKIP
        >>> Console().print(render_lookup(view, cfg))                    # doctest: +SKIP
    """
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    p = view["profile"]
    name = " ".join(x for x in (p.get("first_name"), p.get("last_name")) if x) or "(no name)"
    address = ", ".join(
        str(p[f]) for f in ("street", "city", "postcode", "country") if p.get(f) is not None
    )
    consent = "  ".join(
        f"{c}: {'[green]yes[/]' if p.get(f'consent_{c}') else '[red]no[/]'}"
        for c in cfg.profiles.consent.channels
    )
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for label, value in (
        ("person_id", view["person_id"]),
        ("found by", ", ".join(f"{k} {v}" for k, v in view["resolved_by"].items())),
        ("e-mail / phone", f"{p.get('email') or '-'} / {p.get('phone') or '-'}"),
        ("born", p.get("date_of_birth") or "-"),
        ("address", address or "-"),
        ("consent", consent),
        ("emails", ", ".join(p.get("emails") or []) or "-"),
        ("phones", ", ".join(p.get("phones") or []) or "-"),
        ("customer ids", ", ".join(p.get("customer_ids") or []) or "-"),
        ("loyalty cards", ", ".join(p.get("loyalty_cards") or []) or "-"),
        ("records", f"{p.get('source_records')} in {', '.join(p.get('sources') or [])}"),
    ):
        head.add_row(label, str(value))
    facts = Table(show_header=False, box=None, padding=(0, 2))
    for title, cols in _PROFILE_GROUPS:
        facts.add_row(f"[bold]{title}[/]", "")
        for c in cols:
            facts.add_row(f"  {c}", _text(p.get(c)))
    parts: list[Any] = [
        Panel(head, title=f"[bold]{name}[/]", subtitle=f"profile as of {p.get('run_date')}"),
        Panel(facts, title="profile"),
    ]
    seg, scores = view.get("segments"), view.get("scores")
    side = Table.grid(padding=(0, 2))
    side.add_row(
        "[bold]segments[/]",
        "(segments not run yet)"
        if seg is None
        else (", ".join(seg["segments"]) or "(none)") + f"  [dim]run {seg['run_date']}[/]",
    )
    side.add_row(
        "[bold]scores[/]",
        "(no model scores yet)"
        if not scores
        else ", ".join(f"{k} {_text(v)}" for k, v in scores.items()),
    )
    parts.append(Panel(side, title="segments and scores"))
    for role, rows in view["activity"].items():
        if not rows:
            continue
        table = Table(*rows[0].keys(), title=f"recent {role}", title_justify="left")
        for row in rows:
            table.add_row(*(_text(v) for v in row.values()))
        parts.append(table)
    return Group(*parts)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
