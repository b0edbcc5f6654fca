"""A real webhook receiver on loopback: records every request, answers as scripted."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def verifies(self, secret: str) -> bool:
        """Whether X-Keyops-Signature is HMAC-SHA256 of the body with ``secret``."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-keyops-signature", ""), expected)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Per path, the status codes answered in turn; once used up, 200.
    scripts: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> str:
        return self.url + path

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 15.0) -> list[Received]:
        """The requests to ``path`` once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.on(path)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """Serve on 127.0.0.1 on a free port, in a thread, for the context's duration."""
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                receiver.received.append(Received(self.path, headers, body, time.monotonic()))
                script = receiver.scripts.get(self.path)
                status = script.pop(0) if script else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
