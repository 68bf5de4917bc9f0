# Two commands for a newcomer:  `make demo`  and  `make test`.
# Sizes of the demo data set can be changed: `make demo CUSTOMERS=20000 DAYS=120`.

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
CUSTOMERS ?= 2000
DAYS      ?= 60
SEED      ?= 42
START     ?= 2026-01-01
LANDING   ?= data/landing
PYTEST_ARGS ?=

.PHONY: demo test env java lint bench clean airflow

# The environment is rebuilt only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else "Python 3.11 or 3.12 is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[dev]"
	@# pyspark-client installs a `pyspark` module too: prove the real one still imports.
	$(BIN)/python -c "import pyspark, pyspark.sql, delta, deltalake, mlflow, sklearn, airflow; print('environment ok: pyspark', pyspark.__version__)"
	@touch $@

env: java $(VENV)/.installed

# Spark needs a Java runtime; Debian/Ubuntu's OpenJDK 17 is what the platform is tested on.
java:
	@if command -v java >/dev/null 2>&1; then \
		java -version 2>&1 | head -n 1; \
	else \
		echo "no Java runtime found: installing openjdk-17-jre-headless"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	fi

# Generate the demo data set (once per size/seed), run every stage, list the tables.
demo: env
	@stamp=$(LANDING)/.generated-$(CUSTOMERS)-$(DAYS)-$(SEED)-$(START); \
	if [ -f $$stamp ]; then \
		echo "demo data already in $(LANDING) ($$stamp)"; \
	else \
		rm -rf $(LANDING) && $(BIN)/cdp generate --customers $(CUSTOMERS) --days $(DAYS) --seed $(SEED) --start $(START) --out $(LANDING) && touch $$stamp; \
	fi
	$(BIN)/cdp run all --run-date $$($(BIN)/python -c "import datetime as d; print(d.date.fromisoformat('$(START)') + d.timedelta(days=$(DAYS) - 1))")
	$(BIN)/cdp tables

test: env
	$(BIN)/pytest $(PYTEST_ARGS)

lint: env
	$(BIN)/ruff check .
	$(BIN)/mypy

# The self-contained benchmarks (each makes its own data). The others take a data set or a
# lakehouse (bench_pipeline, bench_ingest --landing, bench_profiles, bench_lookup_scale, ...):
# docs/benchmarks.md gives the command behind each figure.
bench: env
	$(BIN)/python bench/bench_session.py
	$(BIN)/python bench/bench_delta_write.py

# Airflow with the DAGs of dags/: SQLite metadata DB and logs in .airflow/, jobs through
# spark-submit on local[*] (export AIRFLOW_CONN_SPARK_DEFAULT first to use a cluster).
AIRFLOW_HOME ?= $(CURDIR)/.airflow
AIRFLOW_CONN_SPARK_DEFAULT ?= {"conn_type": "spark", "host": "local[*]"}

airflow: env
	AIRFLOW_HOME=$(AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW_CONN_SPARK_DEFAULT='$(AIRFLOW_CONN_SPARK_DEFAULT)' \
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/airflow standalone

clean:
	rm -rf lakehouse data/landing data/exports mlflow.db mlruns spark-warehouse
