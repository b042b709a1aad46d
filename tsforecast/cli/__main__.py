"""``python -m tsforecast.cli``: the same as the ``tsforecast`` command."""

import sys

from tsforecast.cli import main

if __name__ == "__main__":
    sys.exit(main())
