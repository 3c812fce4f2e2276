"""A Hugging Face Hub stand-in on 127.0.0.1 that rejects every request and repeats the token it was sent.

Used to show the HF token never leaks, even through a Hub (or a proxy in front of it) whose error pages quote the
Authorization header: every answer carries it in ``X-Error-Message`` and in the body, or redirects to a URL
carrying it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("401", "403", "400", "404", "500", "429", "garbage-200", "redirect")


class EchoHub:
    """Answers as ``mode`` says; every answer carries the Authorization header it was sent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen_tokens: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                auth = self.headers.get("authorization") or ""
                hub.seen_tokens.append(auth)
                echo = f"invalid credentials: {auth}"
                if hub.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:9/login?auth={auth.split()[-1]}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 200 if hub.mode == "garbage-200" else int(hub.mode)
                body = echo.encode() if hub.mode == "garbage-200" else json.dumps({"error": echo}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", "GatedRepo" if status == 401 else "Unknown")
                self.send_header("X-Error-Message", echo)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
