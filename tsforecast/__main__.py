"""``python -m tsforecast``: the ``tsforecast`` command (also what ``torchrun -m tsforecast fit`` starts)."""

import sys

from tsforecast.cli import main

if __name__ == "__main__":
    sys.exit(main())
