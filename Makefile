# Every target sets itself up on first use: a .venv with the project installed,
# and the sample warehouse built from schemas/.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= data/fund.duckdb
export FUNDBOT_DB ?= $(DB)

.PHONY: run chat test eval bench lint diagram clean clean-state mutate

# Python >= 3.11. A .venv made by another Python (say after `make PY=python3.10`) is rebuilt.
PY_OK := import sys; sys.exit(sys.version_info < (3, 11))

$(STAMP): pyproject.toml
	@$(BIN)/python -c '$(PY_OK)' 2>/dev/null || { test ! -e $(VENV) || \
	  echo "$(VENV) was not made by Python >= 3.11: rebuilding it"; rm -rf $(VENV); }
	@test -x $(BIN)/python || { $(PY) -c '$(PY_OK)' 2>/dev/null || { echo "fundbot needs \
	Python >= 3.11, and $(PY) is $$($(PY) --version 2>&1 || echo missing); run \
	make PY=python3.11 (or newer)" >&2; exit 1; }; $(PY) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(DB): $(STAMP) schemas/generate.py schemas/catalog.json
	$(BIN)/fundbot db init --path $(DB)

run: $(STAMP) $(DB)  ## the bot: Slack when tokens are set, else the terminal chat
	$(BIN)/fundbot run

chat: $(STAMP) $(DB)  ## terminal chat
	$(BIN)/fundbot chat

test: $(STAMP) $(DB)
	$(BIN)/python -m pytest -q

eval: $(STAMP) $(DB)
	$(BIN)/fundbot eval --out eval-out

bench: $(STAMP) $(DB)
	$(BIN)/python -m bench.run

mutate: $(STAMP)  ## mutation testing, group by group (slow; not part of test): GROUPS="core guard"
	$(BIN)/python -m tests.mutate $(GROUPS)

lint: $(STAMP)
	$(BIN)/ruff check .

diagram: $(STAMP)
	$(BIN)/fundbot diagram

clean:  ## what `make` rebuilds: the venv, the sample warehouse, eval output (never the state)
	rm -rf $(VENV) eval-out mutation-out *.egg-info data/fund.duckdb data/fund.duckdb.wal

clean-state:  ## deletes every conversation, pending clarification, trace and feedback
	rm -f data/state.sqlite3 data/state.sqlite3-wal data/state.sqlite3-shm
