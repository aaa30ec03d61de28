"""The command line, as the design names it: ``python cli.py tts "Hello world" --output output.mp3``,
``python cli.py stt output.mp3`` (and ``stream``). A thin entry point into :mod:`wirescribe.cli`;
installed, the same command is ``stt``."""

from __future__ import annotations

import sys

from wirescribe.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
