"""Command line ``python3 -m ibcore.prefetch``: see :mod:`ibcore.orchestration.prefetch`."""

import sys

from ibcore.orchestration.prefetch import main

if __name__ == "__main__":
    sys.exit(main())
