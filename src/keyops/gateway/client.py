"""The node's HTTP/1.1 client for the manager, on asyncio streams and ``h11``.

The node makes one request at a time (an ack, a long poll, a goodbye) to one manager, so
this keeps one connection open and reuses it. It replaces httpx in the node: httpx with
httpcore and anyio cost the node about 5.5 MB of its 45 MB, for features it does not use.

Decisions:

* Every failure to get a complete answer (refused or reset connection, TLS error,
  ``within`` seconds passing, a malformed answer, a body over ``limit``) is a ``ClientError``;
  the node counts it against the manager. Any HTTP status is an answer.
* A request on a kept connection that fails before any byte of the answer arrived is
  sent once more on a new connection: the manager may have closed an idle connection
  (uvicorn does after 5 s) just as the node reused it, and that is no outage.
* https:// uses ``ssl.create_default_context()``: the system's trust store, hostname
  checked. Redirects are not followed (a 3xx is an answer the node can not use).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11

__all__ = ["Answer", "ClientError", "ManagerClient"]

_READ_SIZE = 64 * 1024


class ClientError(Exception):
    """No complete answer from the manager; str() says why."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


@dataclass(slots=True)
class _Connection:
    origin: tuple[str, str, int]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection
    used: bool = False

    def close(self) -> None:
        self.writer.close()


class _Sent(Exception):
    """Wraps a failure after the answer had begun (not safe to send again)."""


class ManagerClient:
    """Requests to the manager with fixed headers (the node credential, User-Agent)."""

    def __init__(self, headers: Mapping[str, str], *, connect_timeout: float) -> None:
        self._headers = [(k, v) for k, v in headers.items()]
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._tls: ssl.SSLContext | None = None

    async def __aenter__(self) -> ManagerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        within: float,
        limit: int = 64 * 1024,
    ) -> Answer:
        """One request; the answer, whatever its status, or ``ClientError``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{urlencode(params)}" if params else "")
        body = json.dumps(json_body).encode("utf-8") if json_body is not None else b""
        headers = [("Host", parts.netloc), *self._headers, ("Content-Length", str(len(body)))]
        if json_body is not None:
            headers.append(("Content-Type", "application/json"))
        request = h11.Request(method=method, target=target, headers=headers)
        try:
            async with asyncio.timeout(within):
                for attempt in range(2):
                    reused = False
                    try:
                        connection = await self._connect(origin)
                        reused = connection.used
                        return await self._exchange(connection, request, body, limit)
                    except _Sent as exc:
                        self.close()
                        raise ClientError(_describe(exc.__cause__ or exc)) from None
                    except (OSError, ssl.SSLError, h11.ProtocolError, ClientError) as exc:
                        self.close()
                        if reused and attempt == 0:
                            continue
                        raise ClientError(_describe(exc)) from None
        except TimeoutError:
            self.close()
            raise ClientError(f"no answer within {within:g} s") from None
        raise AssertionError("unreachable")

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        current = self._connection
        if current is not None:
            if current.origin == origin and not current.reader.at_eof():
                return current
            self.close()
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            context = self._tls
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise ClientError(f"connect timed out after {self._connect_timeout:g} s") from None
        self._connection = _Connection(origin, reader, writer, h11.Connection(h11.CLIENT))
        return self._connection

    async def _exchange(
        self, connection: _Connection, request: h11.Request, body: bytes, limit: int
    ) -> Answer:
        conn, reader, writer = connection.h11, connection.reader, connection.writer
        connection.used = True
        data = conn.send(request) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()
        status: int | None = None
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    received = await reader.read(_READ_SIZE)
                    if status is None and not received:
                        raise ClientError("the connection closed before an answer")
                    conn.receive_data(received)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    total += len(event.data)
                    if total > limit:
                        raise ClientError(f"answer larger than {limit} bytes")
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ClientError("the connection closed in the middle of the answer")
        except (OSError, ssl.SSLError, h11.ProtocolError, ClientError) as exc:
            if status is not None:
                raise _Sent from exc
            raise
        assert status is not None
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self.close()
        return Answer(status, b"".join(chunks))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, ClientError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
