"""``python -m lveval.cli``: the ``lveval`` command."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
