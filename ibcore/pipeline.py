"""Command line ``python3 -m ibcore.pipeline``: see :mod:`ibcore.orchestration.pipeline`."""

import sys

from ibcore.orchestration.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
