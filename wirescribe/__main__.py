"""``python -m wirescribe``: the server with its own options (the ``stt-server`` command)."""

import sys

from wirescribe.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
