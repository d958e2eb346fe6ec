# ibcore: compute the runs of a profile, render its notebooks with papermill, build the Jupyter Book.
#   make all                 install, compute the default profile's runs, render, build the book (_build/html)
#   make all PROFILE=paper   the same at the paper's size
#   make all WORKERS=1       compute the runs in the pipeline's own process (default: one worker a core)
#   make notebooks           refresh nbs/*.ipynb from their text sources nbs/*.py (jupytext)
#   make test                install, ruff, pytest on tests/ and nbval on nbs/*.ipynb (nbs/conftest.py
#                            computes the tiny profile's records first; the notebooks only read them)
PYTHON ?= python3
PROFILE ?= default
WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
# the notebooks' text sources (nbs/conftest.py is nbval's setup, not a notebook)
NOTEBOOK_SOURCES = $(filter-out nbs/conftest.py,$(wildcard nbs/*.py))

.PHONY: all install notebooks figures book test clean

all: install
	$(PYTHON) -m ibcore.pipeline --profile $(PROFILE) --workers $(WORKERS)

install:
	$(PYTHON) -m pip install -q -e ".[test]"

notebooks:
	$(PYTHON) -m jupytext --sync -q $(NOTEBOOK_SOURCES)

figures:
	$(PYTHON) -m ibcore.pipeline --profile $(PROFILE) --workers $(WORKERS) --no-book

book:
	$(PYTHON) -c "import sys; from jupyter_book.cli.main import main; sys.exit(main())" build . -W -n --keep-going

test: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest tests nbs --nbval-lax -p no:cacheprovider

clean:
	rm -rf _build book/generated results/tiny
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
