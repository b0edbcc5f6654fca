"""A real HTTP server on loopback that serves JWK documents, and ways to misbehave.

Routes are registered per test: ``server.route("/x.json", body)`` answers 200 with the
body; ``status``, ``delay`` (seconds before anything is sent), ``content_type`` and
``announce_length`` (send Content-Length or just close at the end) shape the answer.
Each request is counted, so a test can tell that keyops did (or did not) call.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Route:
    body: bytes
    status: int = 200
    delay: float = 0.0
    content_type: str = "application/json"
    announce_length: bool = True


class JwksServer:
    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self.httpd = httpd
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, body: bytes | str, **options: object) -> str:
        """Serve ``body`` under a fresh path; returns the full URL."""
        path = f"/{secrets.token_hex(6)}.json"
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(data, **options)  # type: ignore[arg-type]
        return self.base_url + path


def _handler(server: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            server.hits[self.path] += 1
            route = server.routes.get(self.path)
            if route is None:
                route = Route(b'{"error":"not found"}', status=404)
            if route.delay:
                time.sleep(route.delay)
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.announce_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # keyops gave up (timeout, size limit): that is the point of the test

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    """A JwksServer on 127.0.0.1 with a free port, stopped afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    server = JwksServer(httpd)
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, name="jwks-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
