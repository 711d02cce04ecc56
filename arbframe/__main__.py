"""`python -m arbframe`: the same as the `arbframe` command."""

import sys

from arbframe.cli import main

if __name__ == "__main__":
    sys.exit(main())
