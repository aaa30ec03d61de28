"""The server, as the design names it: ``uvicorn server:app --host 0.0.0.0 --port 8000``.

A thin entry point: the app is built in :mod:`wirescribe.api.app`.
"""

from __future__ import annotations

from wirescribe.api.app import app, create_app

__all__ = ["app", "create_app"]
