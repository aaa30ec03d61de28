"""The demo's tiny backend: serves this folder and mints temporary tokens, so the page never
sees the server's long-lived STT_TOKEN.

    STT_TOKEN=… python examples/browser/token_server.py          # http://127.0.0.1:8080

``POST /token`` asks the speech server (``STT_SERVER``, default http://127.0.0.1:8000) for a
token that lives 60 s, opens one session and works only from this page's origin, and hands the
page ``{"token": …, "expires_at": …}``. A real application would first check that its own user
is signed in; this demo gives a token to anyone who can load the page.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Handler(SimpleHTTPRequestHandler):
    stt_server = "http://127.0.0.1:8000"
    stt_token = ""

    def do_POST(self) -> None:  # http.server's name for a POST
        if self.path != "/token":
            self.send_error(404)
            return
        origin = self.headers.get("Origin") or f"http://{self.headers.get('Host', '')}"
        request = urllib.request.Request(
            f"{self.stt_server}/v1/auth/token",
            data=json.dumps({"expires_in": 60, "origin": origin, "max_sessions": 1}).encode(),
            headers={"Authorization": f"Bearer {self.stt_token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                minted = json.loads(reply.read())
            status, body = 200, {"token": minted["token"], "expires_at": minted["expires_at"]}
        except urllib.error.HTTPError as e:
            status, body = 502, {"error": f"the speech server refused: {e.code}"}
        except OSError as e:
            status, body = 502, {"error": f"the speech server cannot be reached: {e}"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    Handler.stt_server = os.environ.get("STT_SERVER", Handler.stt_server).rstrip("/")
    Handler.stt_token = os.environ["STT_TOKEN"]
    server = ThreadingHTTPServer((args.bind, args.port), functools.partial(Handler, directory=str(HERE)))
    address = f"http://{args.bind}:{server.server_address[1]}"
    print(f"serving {HERE} on {address} (tokens from {Handler.stt_server})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
