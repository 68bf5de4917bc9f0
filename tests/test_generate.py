"""The synthetic data generator: deterministic, complete, noisy in the promised ways, and with a
ground truth that covers every record and carries a learnable churn signal.

No Spark here: the generator is pure Python, and so are these checks (csv/json from the
standard library), so they run in a few seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cdp_spark.config import SourceConfig
from cdp_spark.generate import GenerateSummary, generate, population
from cdp_spark.generate.schema import CP1251_FILE, MALFORMED_KINDS, SOURCES

REPO = Path(__file__).resolve().parent.parent
SOURCES_YAML = REPO / "conf" / "sources.yaml"
CUSTOMERS, DAYS, SEED, RATE = 1500, 40, 11, 0.01
START = date(2026, 1, 1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("landing")
    summary = generate(out, customers=CUSTOMERS, days=DAYS, seed=SEED, malformed_rate=RATE)
    return out, summary


@pytest.fixture(scope="module")
def declared() -> dict[str, dict]:
    return yaml.safe_load(SOURCES_YAML.read_text(encoding="utf-8"))["sources"]


# --- reading helpers -----------------------------------------------------------------------------
def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = _lines(path)
    header = lines[0].decode("ascii").split(",")
    return header, [next(csv.reader([_decode(x)])) for x in lines[1:]]


def _json_records(path: Path) -> list[dict]:
    out = []
    for raw in _lines(path):
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            continue  # truncated on purpose
    return out


def _files(root: Path, source: str) -> list[Path]:
    spec = SOURCES[source]
    return sorted((root / spec.folder).glob(spec.pattern))


def _truth(root: Path) -> dict[tuple[str, str], set[str]]:
    """key_type -> key -> persons."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    with (root / "_truth" / "records.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out[(row["key_type"], row["key"])].add(row["person_id"])
    return out


def normalize_email(raw: str) -> str:
    """An independent oracle of the normalisation the pipeline must do (DESIGN.md)."""
    local, _, domain = raw.strip().lower().partition("@")
    if domain in ("gmail.com", "googlemail.com"):
        local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}"


def phone_candidates(raw: str) -> set[str]:
    """Possible E.164 forms of a phone as typed (RU, UK or German national formats)."""
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        return {"+" + digits}
    if len(digits) == 11 and digits[0] in "78":
        return {"+7" + digits[1:]}
    if digits.startswith("0"):
        return {"+44" + digits[1:], "+49" + digits[1:]}
    if len(digits) == 10:
        return {"+7" + digits}  # no country code: the Russian default region
    return {"+" + digits}


# --- determinism ---------------------------------------------------------------------------------
def _digest(root: Path) -> dict[str, tuple[str, int]]:
    """Path -> (sha256, lines) of every file under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            out[str(p.relative_to(root))] = (hashlib.sha256(data).hexdigest(), data.count(b"\n"))
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kwargs = {"customers": 300, "days": 12}
    a = _digest_after(tmp_path / "a", seed=5, **kwargs)
    b = _digest_after(tmp_path / "b", seed=5, **kwargs)
    c = _digest_after(tmp_path / "c", seed=6, **kwargs)
    assert a == b
    common = a.keys() & c.keys()  # late files land on other days with another seed
    assert len(common) > 0.9 * len(a)
    # Every file with data differs, except the store list (reference data, not random).
    same = [n for n in common if a[n] == c[n] and a[n][1] > 2 and n != "catalog/stores.csv"]
    assert not same


def _digest_after(out: Path, **kwargs: int) -> dict[str, tuple[str, int]]:
    generate(out, **kwargs)
    return _digest(out)


def test_workers_do_not_change_the_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Three shards of 150 people: one process writes them in turn, two processes write parts
    # that are concatenated in shard order; both must give the same files.
    monkeypatch.setattr(population, "SHARD_SIZE", 150)
    one = generate(tmp_path / "one", customers=400, days=6, seed=3, workers=1)
    two = generate(tmp_path / "two", customers=400, days=6, seed=3, workers=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    assert one.records == two.records
    assert not (tmp_path / "two" / ".parts").exists()


def test_rerun_replaces_a_bigger_run(tmp_path: Path) -> None:
    generate(tmp_path, customers=50, days=5, seed=1)
    generate(tmp_path, customers=50, days=3, seed=1)
    assert len(list((tmp_path / "crm").glob("*.csv"))) == 3


# --- files and columns ---------------------------------------------------------------------------
def test_sources_yaml_validates_with_the_config_models(declared: dict[str, dict]) -> None:
    for body in declared.values():
        SourceConfig.model_validate(body)
    assert set(SOURCES) <= set(declared)


def test_every_source_file_exists_with_the_declared_columns(
    dataset: tuple[Path, GenerateSummary], declared: dict[str, dict]
) -> None:
    root, summary = dataset
    for name, spec in SOURCES.items():
        conf = declared[name]
        columns = [c["name"] for c in conf["columns"]]
        assert list(spec.columns) == columns, name
        folder = root / conf["path"]
        files = sorted(folder.glob(conf["pattern"]))
        days = {spec.filename(START + timedelta(days=t)) for t in range(DAYS)}
        assert days <= {str(f.relative_to(root)) for f in files}, name
        assert summary.files[name] == len(files)
        for f in files:
            if conf["format"] == "csv":
                assert _lines(f)[0].decode("ascii").split(",") == columns, f
            else:
                for record in _json_records(f)[:200]:
                    keys = list(record)
                    # Keys appear in the declared order (absent keys mean null in web events).
                    assert keys == [c for c in columns if c in record], f
                    if name == "orders":
                        assert keys == columns
    for name in ("products", "stores"):
        conf = declared[name]
        header, rows = _csv_rows(root / conf["path"] / conf["pattern"])
        assert header == [c["name"] for c in conf["columns"]]
        assert len(rows) == summary.records[name]


def test_record_counts_in_the_summary_match_the_files(
    dataset: tuple[Path, GenerateSummary],
) -> None:
    root, summary = dataset
    for name, spec in SOURCES.items():
        lines = sum(len(_lines(f)) - (spec.ext == "csv") for f in _files(root, name))
        assert lines == summary.records[name], name
    assert json.loads((root / "_truth" / "summary.json").read_text())["records"] == summary.records


def test_day_one_is_a_full_crm_export_and_later_days_are_changes(
    dataset: tuple[Path, GenerateSummary],
) -> None:
    root, _ = dataset
    with (root / "_truth" / "people.csv").open(encoding="utf-8") as fh:
        people = list(csv.DictReader(fh))
    existing = sum(p["registered"] == "true" and not p["registered_on"] for p in people)
    _, first = _csv_rows(root / "crm" / "crm_contacts_2026-01-01.csv")
    assert len({r[0] for r in first}) >= existing
    later = [len(_csv_rows(f)[1]) for f in _files(root, "crm_contacts")[1:]]
    assert 0 < sum(later) / len(later) < 0.1 * len(first)
    # People move and change e-mail: some customer ids are exported again with new values.
    seen: dict[str, list[str]] = {}
    changed = 0
    for f in _files(root, "crm_contacts"):
        for row in _csv_rows(f)[1]:
            if len(row) == 12 and row[0] in seen and seen[row[0]][3:10] != row[3:10]:
                changed += 1
            seen[row[0]] = row
    assert changed >= 5


# --- malformed records ---------------------------------------------------------------------------
def test_malformed_share_is_near_the_rate_and_every_kind_appears(
    dataset: tuple[Path, GenerateSummary],
) -> None:
    root, summary = dataset
    with (root / "_truth" / "malformed.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    kinds = Counter(r["kind"] for r in rows)
    assert set(MALFORMED_KINDS) | {CP1251_FILE} == set(kinds)
    counted = sum(v for k, v in kinds.items() if k != CP1251_FILE)
    records = sum(summary.records[s] for s in SOURCES)
    assert counted == sum(summary.malformed.values())
    assert abs(counted / records - RATE) < 0.15 * RATE, counted / records


def _valid_time(text: str) -> bool:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%d.%m.%Y %H:%M")  # consent paper forms
        except ValueError:
            return False
    return parsed.year >= 2000  # 1970-01-01 is a placeholder, not a time


def test_malformed_records_really_are_broken(dataset: tuple[Path, GenerateSummary]) -> None:
    """An independent scan of the files finds exactly the corrupted records the truth lists."""
    root, _ = dataset
    with (root / "_truth" / "malformed.csv").open(encoding="utf-8", newline="") as fh:
        listed = Counter((r["file"], r["kind"]) for r in csv.DictReader(fh))
    cp1251_files = {f for f, k in listed if k == CP1251_FILE}
    assert len(cp1251_files) == 1
    found: Counter[tuple[str, str]] = Counter()
    for name, spec in SOURCES.items():
        for f in _files(root, name):
            rel = str(f.relative_to(root))
            for raw in _lines(f)[spec.ext == "csv" :]:
                if rel in cp1251_files and not raw.isascii():
                    try:
                        raw.decode("utf-8")
                        found[(rel, "bad_encoding")] += 1  # a UTF-8 row in the cp1251 file
                        continue
                    except UnicodeDecodeError:
                        text = raw.decode("cp1251")
                        found[(rel, CP1251_FILE)] += 1
                else:
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        found[(rel, "bad_encoding")] += 1
                        continue
                if spec.ext == "jsonl":
                    try:
                        rec = json.loads(text)
                    except json.JSONDecodeError:
                        found[(rel, "truncated_json")] += 1
                        continue
                else:
                    values = next(csv.reader([text]))
                    if len(values) != len(spec.columns):
                        found[(rel, "wrong_column_count")] += 1
                        continue
                    rec = dict(zip(spec.columns, values, strict=True))
                if not _valid_time(rec[spec.time_column]):
                    found[(rel, "bad_date")] += 1
                elif spec.amount_column and str(rec[spec.amount_column]).startswith("-"):
                    found[(rel, "negative_amount")] += 1
    assert +found == +listed


# --- ground truth --------------------------------------------------------------------------------
def test_ground_truth_covers_every_record_and_identifier(
    dataset: tuple[Path, GenerateSummary],
) -> None:
    root, _ = dataset
    truth = _truth(root)
    emails = {normalize_email(k): v for (t, k), v in truth.items() if t == "email"}
    phones = {k for (t, k) in truth if t == "phone"}
    junk_emails = {"test@test.com", "no@email.com", "none@none.com"}
    missing: Counter[str] = Counter()
    checked: Counter[str] = Counter()

    def check(kind: str, ok: bool) -> None:
        checked[kind] += 1
        if not ok:
            missing[kind] += 1

    for f in _files(root, "crm_contacts"):
        for row in _csv_rows(f)[1]:
            check("customer_id", ("customer_id", row[0]) in truth)
    for f in _files(root, "orders"):
        for rec in _json_records(f):
            check("order_id", ("order_id", rec["order_id"]) in truth)
            if rec["guest_email"] and rec["guest_email"] not in junk_emails:
                check("guest_email", normalize_email(rec["guest_email"]) in emails)
    for f in _files(root, "web_events"):
        for rec in _json_records(f):
            check("event_id", ("event_id", rec["event_id"]) in truth)
            for key in ("cookie_id", "device_id", "customer_id"):
                if key in rec:
                    check(key, (key, rec[key]) in truth)
            if "email" in rec:
                check("login_email", normalize_email(rec["email"]) in emails)
    for f in _files(root, "email_events"):
        for row in _csv_rows(f)[1]:
            check("esp_email", normalize_email(row[0]) in emails)
    for f in _files(root, "support_tickets"):
        for row in _csv_rows(f)[1]:
            check("ticket_id", ("ticket_id", row[0]) in truth)
            if len(row) == 9 and row[1]:
                check("contact_email", normalize_email(row[1]) in emails)
            if len(row) == 9 and row[2]:
                check("contact_phone", bool(phone_candidates(row[2]) & phones))
    for f in _files(root, "pos_sales"):
        for row in _csv_rows(f)[1]:
            check("transaction_id", ("transaction_id", row[0]) in truth)
            if len(row) == 10 and row[3]:
                check("loyalty_card", ("loyalty_card", row[3]) in truth)
    for f in _files(root, "consent_events"):
        for row in _csv_rows(f)[1]:
            if len(row) == 7:
                ok = (
                    normalize_email(row[0]) in emails
                    if row[1] == "email"
                    else bool(phone_candidates(row[0]) & phones)
                )
                check("consent_identifier", ok)
    assert not missing, (missing, checked)
    kinds = ["customer_id", "order_id", "event_id", "cookie_id", "device_id", "esp_email"]
    kinds += ["ticket_id", "transaction_id", "loyalty_card", "consent_identifier", "login_email"]
    assert all(checked[kind] > 0 for kind in kinds), checked
    people = {r["person_id"] for r in csv.DictReader((root / "_truth" / "people.csv").open())}
    assert len(people) == CUSTOMERS
    assert set().union(*truth.values()) <= people


def test_shared_identifiers_are_known_to_be_shared(dataset: tuple[Path, GenerateSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    by_type: dict[str, list[int]] = defaultdict(list)
    for (kind, _), persons in truth.items():
        by_type[kind].append(len(persons))
    # The store's own loyalty card is scanned for many strangers.
    assert max(by_type["loyalty_card"]) >= 20
    # Households share a tablet (device and browser) and some share a landline.
    assert sum(n >= 2 for n in by_type["device_id"]) >= 10
    assert sum(n >= 2 for n in by_type["phone"]) >= 10
    # Record keys belong to exactly one person.
    for kind in ("order_id", "event_id", "ticket_id", "transaction_id", "customer_id"):
        assert max(by_type[kind]) == 1, kind


def test_churners_buy_less_after_churn(dataset: tuple[Path, GenerateSummary]) -> None:
    root, _ = dataset
    with (root / "_truth" / "people.csv").open(encoding="utf-8") as fh:
        people = {p["person_id"]: p for p in csv.DictReader(fh)}
    churn_day = {
        pid: date.fromisoformat(p["churn_date"])
        for pid, p in people.items()
        if p["churned"] == "true"
    }
    assert 0.05 < len(churn_day) / len(people) < 0.5
    truth = _truth(root)
    before = after = 0
    days_before = days_after = 0
    purchases: dict[str, list[date]] = defaultdict(list)
    for f in _files(root, "orders"):
        for rec in _json_records(f):
            if rec["status"] != "returned" and re.match(r"\d{4}-\d{2}-\d{2}T", rec["ordered_at"]):
                (pid,) = truth[("order_id", rec["order_id"])]
                purchases[pid].append(date.fromisoformat(rec["ordered_at"][:10]))
    for f in _files(root, "pos_sales"):
        for row in _csv_rows(f)[1]:
            if row[1] == "1" and re.match(r"\d{4}-\d{2}-\d{2} ", row[-1]):
                (pid,) = truth[("transaction_id", row[0])]
                purchases[pid].append(date.fromisoformat(row[-1][:10]))
    start, end = START, START + timedelta(days=DAYS - 1)
    for pid, day in churn_day.items():
        days_before += (day - start).days + 1
        days_after += (end - day).days
        before += sum(d <= day for d in purchases[pid])
        after += sum(d > day for d in purchases[pid])
    rate_before, rate_after = before / days_before, after / max(days_after, 1)
    assert rate_after < 0.25 * rate_before, (rate_before, rate_after)
    # The signals behind the hazard differ between churners and the others.
    churned = [p for p in people.values() if p["churned"] == "true"]
    stayed = [p for p in people.values() if p["churned"] == "false"]

    def mean(rows: list[dict[str, str]], col: str) -> float:
        return sum(float(r[col]) for r in rows) / len(rows)

    assert mean(churned, "email_engagement") < mean(stayed, "email_engagement")
    assert mean(churned, "base_hazard") > 1.5 * mean(stayed, "base_hazard")


# --- noise ---------------------------------------------------------------------------------------
def test_the_promised_noise_is_present(dataset: tuple[Path, GenerateSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    canonical = {k for (t, k) in truth if t == "email"}
    crm = [row for f in _files(root, "crm_contacts") for row in _csv_rows(f)[1] if len(row) == 12]
    emails = [r[3] for r in crm]
    emails += [
        row[0]
        for f in _files(root, "consent_events")
        for row in _csv_rows(f)[1]
        if row[1] == "email"
    ]
    gmail = [e for e in emails if e.strip().lower().endswith("@gmail.com")]
    assert any("+" in e for e in gmail), "gmail +tags"
    dots = [
        e
        for e in gmail
        if "+" not in e
        and e.strip().lower() not in canonical
        and normalize_email(e) in {normalize_email(c) for c in canonical}
    ]
    assert dots, "gmail dots moved or removed"
    assert any(e != e.strip() for e in emails), "surrounding whitespace"
    assert any(e.strip() and e.strip() != e.strip().lower() for e in emails), "upper case"
    assert "test@test.com" in emails
    phones = [r[4] for r in crm]
    patterns = {
        "+7 (912) 345-67-89": r"^\+7 \(\d{3}\) \d{3}-\d{2}-\d{2}$",
        "89123456789": r"^8\d{10}$",
        "912-345-6789": r"^\d{3}-\d{3}-\d{4}$",
        "+79123456789": r"^\+7\d{10}$",
        "+44 20 7946 0958": r"^\+44 20 \d{4} \d{4}$",
    }
    for label, pattern in patterns.items():
        assert any(re.match(pattern, p) for p in phones), label
    assert "0000000000" in phones
    first_names = {r[1].strip() for r in crm}
    assert any(re.search("[А-Яа-яЁё]", n) for n in first_names), "Cyrillic names"
    # The same Russian first names appear in Cyrillic and in several Latin spellings.
    variants = {
        "Илья": {"Ilya", "Ilia", "Il'ya", "Ilja"},
        "Мария": {"Maria", "Mariya", "Mariia", "Marija"},
        "Юлия": {"Julia", "Yuliya", "Iuliia", "Yulia", "Julija", "Yuliia"},
        "Алексей": {"Alexey", "Aleksei", "Aleksey", "Aleksej"},
    }
    assert any(cyr in first_names and len(lat & first_names) >= 2 for cyr, lat in variants.items())
    streets = [r[6] for r in crm]
    assert any(s.startswith("ул. ") for s in streets)
    assert any(re.search(r" st \d", s) for s in streets)
    assert any(s.startswith("ul. ") for s in streets)
    assert any(re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", r[5]) for r in crm), "day-first dates of birth"
    # Duplicate exports: identical CRM rows in one file.
    assert any(
        len(rows) != len({tuple(r) for r in rows})
        for rows in (_csv_rows(f)[1] for f in _files(root, "crm_contacts"))
    )


def test_late_files_hold_records_of_an_earlier_day(dataset: tuple[Path, GenerateSummary]) -> None:
    root, _ = dataset
    late = [
        f
        for name in ("orders", "web_events", "pos_sales")
        for f in _files(root, name)
        if "_late" in f.name
    ]
    assert len(late) >= 3
    for f in late:
        arrival = re.search(r"\d{4}-\d{2}-\d{2}", f.name).group(0)  # type: ignore[union-attr]
        if f.suffix == ".csv":
            stamps = [row[-1][:10] for row in _csv_rows(f)[1] if len(row) == 10]
        else:
            stamps = [str(r.get("ordered_at") or r.get("ts"))[:10] for r in _json_records(f)]
        assert stamps, f
        assert sum(s < arrival for s in stamps) > 0.8 * len(stamps), f


def test_pos_time_is_naive_store_time_and_other_sources_carry_offsets(
    dataset: tuple[Path, GenerateSummary],
) -> None:
    root, _ = dataset
    _, rows = _csv_rows(root / "pos" / "pos_2026-01-10.csv")
    stamps = [r[-1] for r in rows if len(r) == 10 and _valid_time(r[-1])]
    assert stamps and all(re.fullmatch(r"2026-01-10 \d{2}:\d{2}:\d{2}", s) for s in stamps)
    orders = _json_records(root / "orders" / "orders_2026-01-10.jsonl")
    stamps = [o["ordered_at"] for o in orders if _valid_time(o["ordered_at"])]
    assert stamps and all(re.search(r"T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$", s) for s in stamps)
    events = _json_records(root / "web" / "events_2026-01-10.jsonl")
    stamps = [e["ts"] for e in events if _valid_time(e["ts"])]
    assert stamps and all(re.search(r"T\d{2}:\d{2}:\d{2}\.\d{3}Z$", s) for s in stamps)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    from cdp_spark.errors import CdpError

    with pytest.raises(CdpError, match="malformed_rate"):
        generate(tmp_path, customers=10, days=1, seed=1, malformed_rate=0.9)
    with pytest.raises(CdpError, match="at least 1"):
        generate(tmp_path, customers=0, days=1, seed=1)


def test_progress_is_reported_up_to_the_total(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    generate(tmp_path, customers=30, days=4, seed=2, progress=lambda *a: seen.append(a))
    simulate = [s for s in seen if s[0] == "simulate"]
    assert simulate[-1][1] == simulate[-1][2] == 4
    assert seen[-1] == ("finish", 1, 1)


def test_free_text_is_quoted_on_one_line(dataset: tuple[Path, GenerateSummary]) -> None:
    root, _ = dataset
    messages = []
    for f in _files(root, "support_tickets"):
        raw = f.read_bytes()
        assert b"\r" not in raw
        text = raw.decode("utf-8", errors="replace")
        records = list(csv.reader(io.StringIO(text)))
        assert len(records) == len(raw.splitlines()), f  # no record spans two lines
        messages += [r[5] for r in records[1:] if len(r) == 9]
    assert any('"' in m for m in messages) and any("," in m for m in messages)
    negative = sum(
        any(w in m for w in ("Ужасн", "ужасн", "Верните", "disappointed", "terrible"))
        for m in messages
    )
    positive = sum(any(w in m for w in ("Спасибо", "спасибо", "Thanks", "thank")) for m in messages)
    assert negative > 0 and positive > 0
