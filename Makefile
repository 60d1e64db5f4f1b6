# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint bench clean

$(BIN)/tailorset: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/tailorset
	$(BIN)/tailorset serve

test: $(BIN)/tailorset
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

# Every benchmark, one after the other (each prints its figure last); bench/harness.py is what they share.
bench: $(BIN)/tailorset
	for script in $(filter-out bench/harness.py,$(wildcard bench/*.py)); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) tailorset-data
