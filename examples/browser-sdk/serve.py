"""These pages' backend: serves this folder (after ``npm ci && npm run build``) and mints
temporary tokens with the browser demo's token backend, so a page never sees ``STT_TOKEN``.

    STT_TOKEN=… STT_SERVER=https://127.0.0.1:8443 python examples/browser-sdk/serve.py --port 8080

``POST /token`` is :mod:`examples/browser/token_server.py`'s: a token that lives 60 s, opens
one session and works only from this page's origin. A server behind TLS with a self-signed
certificate: point ``SSL_CERT_FILE`` at it so this backend trusts it.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from http.server import ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "browser"))

from token_server import Handler  # noqa: E402  (the browser demo's backend, one folder over)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if not (HERE / "dist").is_dir():
        sys.exit(f"{HERE / 'dist'} is missing: run `npm ci && npm run build` in {HERE} first")
    Handler.stt_server = os.environ.get("STT_SERVER", Handler.stt_server).rstrip("/")
    Handler.stt_token = os.environ["STT_TOKEN"]
    server = ThreadingHTTPServer((args.bind, args.port), functools.partial(Handler, directory=str(HERE)))
    address = f"http://{args.bind}:{server.server_address[1]}"
    print(f"serving {HERE} on {address} (tokens from {Handler.stt_server})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
