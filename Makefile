# The two commands of the README: `make book` and `make test`.
# Each creates or updates the virtual environment .venv/ by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.advlit-installed
# one thread: the committed records were made with one, and a run reproduces its record bit
# for bit only with the same processor type and thread count (the record recheck's exact path)
export ADVLIT_THREADS ?= 1
export OMP_NUM_THREADS ?= $(ADVLIT_THREADS)
export ADVLIT_PROGRESS ?= 0
JB_FLAGS := -W -n --keep-going -q

.PHONY: book test venv unit notebooks-check book-html clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## make book: run every chapter at the cpu profile (papermill), then build the HTML book
book: venv
	$(BIN)/advlit book run --profile cpu
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "open _build/html/index.html"

## make test: unit tests, the notebooks against their stored outputs (nbval), the book build
test: venv unit notebooks-check book-html

unit:
	$(BIN)/python -m pytest tests -q --timeout=1800

notebooks-check:
	$(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks -q -p no:cacheprovider

book-html:
	$(BIN)/jupyter-book build . $(JB_FLAGS)

clean:
	rm -rf _build
