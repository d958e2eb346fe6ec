# ibcore: run the notebooks of a profile with papermill and build the Jupyter Book.
#   make all                 install, run the default profile, build the book into _build/html
#   make all PROFILE=paper   the same at the paper's size
#   make all WORKERS=1       train inside the notebooks, one after another (default: one worker a core)
#   make notebooks           refresh nbs/*.ipynb from their text sources nbs/*.py (jupytext)
#   make test                install, ruff, pytest on tests/ and nbval on nbs/*.ipynb
PYTHON ?= python3
PROFILE ?= default
WORKERS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: all install notebooks figures book test clean

all: install
	$(PYTHON) -m ibcore.pipeline --profile $(PROFILE) --workers $(WORKERS)

install:
	$(PYTHON) -m pip install -q -e ".[test]"

notebooks:
	$(PYTHON) -m jupytext --sync -q nbs/*.py

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
