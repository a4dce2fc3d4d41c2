# Every target sets itself up on first use: a .venv with the project installed,
# and the sample warehouse built from schemas/.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= data/fund.duckdb
export FUNDBOT_DB ?= $(DB)

.PHONY: run chat test eval bench lint diagram clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
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

lint: $(STAMP)
	$(BIN)/ruff check .

diagram: $(STAMP)
	$(BIN)/fundbot diagram

clean:
	rm -rf $(VENV) data eval-out *.egg-info
