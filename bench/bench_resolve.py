"""Precision, recall and time of ``cdp resolve`` on a person file made from the CRM export.

The generated CRM export (``data/landing/crm/*.csv``) holds one row per CRM account; the
generator's ground truth (``data/landing/_truth/records.csv``, key type ``customer_id``) says
which person each account belongs to, and people with two accounts are the duplicates. The
person file keeps the last version of each account (later exports update earlier ones); rows
the CSV reader cannot parse (the export's deliberately malformed ones) are skipped. It is
resolved twice: without the email and phone columns (names, birth dates and addresses only:
the fuzzy matcher alone) and with them. Pairwise precision, recall and F1 count the record
pairs put in one cluster against the pairs of one true person.

    python bench/bench_resolve.py --landing /work/main/data/landing --out /tmp/bench_resolve
    python bench/bench_resolve.py --backend spark      # Splink on Spark instead of DuckDB
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
from _machine import cpu_model, ram_gib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdp_spark.config import load_config  # noqa: E402
from cdp_spark.identity.resolve import resolve_files  # noqa: E402
from cdp_spark.session import build_session  # noqa: E402

MAPPING_NAMES = {
    "first_name": "first_name",
    "last_name": "last_name",
    "date_of_birth": "date_of_birth",
    "street": "street",
    "city": "city",
    "postcode": "postcode",
    "country": "country",
}
MAPPING_ALL = {**MAPPING_NAMES, "email": "email", "phone": "phone"}


def person_file(landing: Path, out_dir: Path) -> tuple[Path, pd.DataFrame]:
    """The CRM accounts as one person file (last version of each), and the truth."""
    files = sorted(glob.glob(str(landing / "crm" / "crm_contacts_*.csv")))
    frames = [
        pd.read_csv(f, dtype=str, encoding_errors="replace", on_bad_lines="skip") for f in files
    ]
    crm = pd.concat(frames).drop_duplicates("customer_id", keep="last")
    truth = pd.read_csv(landing / "_truth" / "records.csv", dtype=str)
    truth = truth[truth.key_type == "customer_id"][["key", "person_id"]]
    truth = truth.rename(columns={"key": "record_id", "person_id": "true_person"})
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "crm_persons.csv"
    crm.to_csv(path, index=False)
    return path, truth


def pairwise(resolved: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Pairwise precision / recall / F1 of the clusters against the true persons."""
    both = resolved.merge(truth, on="record_id", how="inner")

    def pairs(sizes: pd.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    predicted = pairs(both.groupby("person_id").size())
    actual = pairs(both.groupby("true_person").size())
    correct = pairs(both.groupby(["person_id", "true_person"]).size())
    precision = correct / predicted if predicted else 1.0
    recall = correct / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # Over-merges: predicted clusters holding several people; under-merges: people split.
    over = int((both.groupby("person_id").true_person.nunique() > 1).sum())
    under = int((both.groupby("true_person").person_id.nunique() > 1).sum())
    return {
        "records": len(both),
        "true_pairs": actual,
        "predicted_pairs": predicted,
        "correct_pairs": correct,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "over_merged_clusters": over,
        "split_people": under,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=ROOT / "data" / "landing")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_resolve"))
    parser.add_argument("--backend", choices=["auto", "duckdb", "spark"], default="auto")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument(
        "--only", choices=["names", "all"], default=None, help="run one of the two variants"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    path, truth = person_file(args.landing, args.out)
    overrides: dict[str, object] = {
        "spark.master": args.master,
        "spark.shuffle_partitions": 2,
        "spark.conf": {"spark.ui.enabled": "false"},
    }
    if args.threshold is not None:
        overrides["identity.fuzzy.threshold"] = args.threshold
    cfg = load_config("local", overrides=overrides)
    started = time.perf_counter()
    spark = build_session(cfg)
    print(f"Spark session: {time.perf_counter() - started:.1f} s")
    print(
        f"machine: {os.cpu_count()} cores, {ram_gib():.0f} GiB, {cpu_model()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    import duckdb
    import splink

    print(f"Splink {splink.__version__}, DuckDB {duckdb.__version__}, Spark {spark.version}")
    print(f"person file: {path} ({len(truth)} accounts in the truth)")
    variants = {
        "names": ("names, DOB, address", MAPPING_NAMES),
        "all": ("+ email, phone", MAPPING_ALL),
    }
    for key, (name, mapping) in variants.items():
        if args.only not in (None, key):
            continue
        out = args.out / f"resolved_{'all' if 'email' in mapping else 'noid'}.csv"
        started = time.perf_counter()
        result = resolve_files(
            spark,
            [path],
            mapping,
            id_col="customer_id",
            cfg=cfg,
            out=out,
            mode="overwrite",
            backend=args.backend,
        )
        seconds = time.perf_counter() - started
        resolved = pd.read_csv(out, dtype={"record_id": str, "person_id": str})
        m = pairwise(resolved, truth)
        print(
            f"\n{name}: {seconds:.1f} s, backend {args.backend}, "
            f"threshold {cfg.identity.fuzzy.threshold}\n"
            f"  records {m['records']}, persons {result.figures['persons']}, "
            f"links {result.figures['links_by_rule']}\n"
            f"  pairs: true {m['true_pairs']}, predicted {m['predicted_pairs']}, "
            f"correct {m['correct_pairs']}\n"
            f"  precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}  "
            f"over-merged clusters {m['over_merged_clusters']}, split people "
            f"{m['split_people']}"
        )
    spark.stop()


if __name__ == "__main__":
    main()
