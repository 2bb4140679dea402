# One virtualenv, the embedded PostgreSQL and Redis wheels, and the two commands a new user needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= var/local.toml
STAMP  := $(VENV)/.installed

.PHONY: run test test-anytime install lint browser clean ledger-demo demo demo-reset

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

# The console's end-to-end tests drive Debian's Chromium (never a downloaded browser build).
# As root (CI) it is installed when missing; elsewhere the browser tests say why they skip.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is not installed and cannot be installed here: browser tests will skip"; fi

$(CONFIG): | $(STAMP)
	$(BIN)/wxbackend init-config --path $(CONFIG)

run: $(STAMP) $(CONFIG)
	$(BIN)/wxbackend --config $(CONFIG) migrate
	$(BIN)/wxbackend --config $(CONFIG) seed --demo
	exec $(BIN)/wxbackend --config $(CONFIG) serve --port 8000

# The training sandbox: a demo province, WeChat and SMS simulated, its own databases under var/demo.
demo: $(STAMP)
	exec $(BIN)/wxbackend demo --port 8000

demo-reset: $(STAMP)
	exec $(BIN)/wxbackend demo --port 8000 --reset

# The base-data ledger on this machine: the province and three city nodes (docs/ledger.md).
ledger-demo: $(STAMP)
	$(BIN)/python deploy/ledger_demo.py

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The suite where date arithmetic breaks: at 23:30 on 31 December China time (15:30 UTC) and at
# 00:30 on 1 January China time (still 31 December in UTC), every process (PostgreSQL and Redis
# too) shifted alike by Debian's libfaketime; then in a time zone eight hours behind UTC.
ANYTIME_AT := 2026-12-31T15:30:00Z 2026-12-31T16:30:00Z
test-anytime: $(STAMP) browser
	@command -v faketime >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }
	@for at in $(ANYTIME_AT); do \
	  off=$$(( $$(date -d "$$at" +%s) - $$(date +%s) )); \
	  case $$off in -*) ;; *) off="+$$off" ;; esac; \
	  echo "== the suite with every clock at $$at (TZ=UTC)"; \
	  TZ=UTC faketime -f "$${off}s" $(BIN)/python -m pytest -q -p no:cacheprovider || exit 1; \
	done
	@echo "== the suite in TZ=America/Los_Angeles"
	TZ=America/Los_Angeles $(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
