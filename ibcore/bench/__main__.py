"""``python3 -m ibcore.bench``: the benchmark's command line (:mod:`ibcore.bench.cli`)."""

import sys

from ibcore.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
