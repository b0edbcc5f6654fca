"""A small HTTP/1.1 responder on asyncio streams, driven by the ``h11`` state machine.

``serve_http`` answers the requests of one connection (keep-alive included) with a
synchronous handler; h11 does all the parsing and framing. Request bodies are read and
dropped (the node only serves GET), bounded by ``max_body``. ``gateway_routes`` and
the node's status route are the two handlers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

from keyops.gateway.snapshot import AppliedState
from keyops.gateway.tls import TlsPeer

__all__ = [
    "JWKS_CACHE_CONTROL",
    "JWKS_PATH",
    "Handler",
    "Request",
    "Response",
    "gateway_routes",
    "json_response",
    "serve_http",
]

log = logging.getLogger(__name__)

JWKS_PATH = "/.well-known/jwks.json"
JWKS_CACHE_CONTROL = "public, max-age=60"
SERVER_HEADER = "keyops-gateway"
_READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


Handler = Callable[[Request], Response]


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode("utf-8"))


def json_response(status: int, body: bytes, *headers: tuple[str, str]) -> Response:
    return Response(status, body, "application/json", headers)


class _Closed(Exception):
    """The peer closed the connection or timed out; nothing more to answer."""


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, seconds: float
) -> h11.Event | type[h11.PAUSED]:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event  # type: ignore[return-value]
        try:
            async with asyncio.timeout(seconds):
                data = await reader.read(_READ_SIZE)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            raise _Closed from None
        conn.receive_data(data)


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    response: Response,
    *,
    close: bool,
    head: bool = False,
) -> None:
    headers = [
        ("Server", SERVER_HEADER),
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        *response.headers,
    ]
    if close:
        headers.append(("Connection", "close"))
    try:
        reason = HTTPStatus(response.status).phrase.encode("ascii")
    except ValueError:
        reason = b""
    head_event = h11.Response(status_code=response.status, headers=headers, reason=reason)
    writer.write(conn.send(head_event) or b"")
    if response.body and not head:
        writer.write(conn.send(h11.Data(data=response.body)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    *,
    request_timeout: float = 10.0,
    idle_timeout: float = 30.0,
    max_body: int = 64 * 1024,
) -> None:
    """Answer the requests of one connection until either side closes it."""
    conn = h11.Connection(h11.SERVER)
    timeout = request_timeout
    try:
        while True:
            event = await _next_event(conn, reader, timeout)
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                continue
            timeout = request_timeout
            target = event.target.decode("ascii", "replace")
            path, _, query = target.partition("?")
            request = Request(event.method.decode("ascii", "replace"), path, query)
            size = 0
            while True:
                part = await _next_event(conn, reader, timeout)
                if isinstance(part, h11.Data):
                    size += len(part.data)
                    if size > max_body:
                        await _send(
                            conn, writer, text_response(413, "request body too large"), close=True
                        )
                        return
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
            try:
                response = handler(request)
            except Exception:
                log.exception("error answering %s %s", request.method, request.path)
                response = text_response(500, "internal error")
            await _send(conn, writer, response, close=False, head=request.method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
            timeout = idle_timeout
    except h11.RemoteProtocolError as exc:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            try:
                await _send(conn, writer, text_response(status, "bad request"), close=True)
            except (h11.LocalProtocolError, ConnectionError, OSError):
                pass
    except (_Closed, ConnectionError, ssl.SSLError, OSError):
        return


def gateway_routes(state: Callable[[], AppliedState | None], peer: TlsPeer) -> Handler:
    """The TLS listener's routes for one connection: the JWK Set and a client-cert check."""

    def handle(request: Request) -> Response:
        if request.path == JWKS_PATH:
            if request.method not in ("GET", "HEAD"):
                return Response(405, b"", headers=(("Allow", "GET, HEAD"),))
            current = state()
            body = current.jwks_json if current is not None else b'{"keys":[]}'
            return json_response(200, body, ("Cache-Control", JWKS_CACHE_CONTROL))
        if request.path == "/":
            if request.method not in ("GET", "HEAD"):
                return Response(405, b"", headers=(("Allow", "GET, HEAD"),))
            if peer.certificate_der is None:
                return text_response(403, "a client certificate is required")
            return text_response(200, f"hello {peer.subject_dn or ''}")
        return text_response(404, "not found")

    return handle
