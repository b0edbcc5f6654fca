"""A TLS client that looks at a gateway from outside, on loopback, with the standard library.

What a new handshake presents, what a GET answers, and how long until a handshake first
presents a given certificate. Shared by the gateway end-to-end tests (the node's own
listener, HAProxy, nginx), the HAProxy driver's tests and bench/gateway_rollout.py, so
nothing here imports pytest. Every call opens its own connection (unless given one) with
a timeout; the caller's ``ssl.SSLContext`` says what is trusted and which client
certificate is shown.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

__all__ = [
    "LOOPBACK",
    "Answer",
    "first_presenting",
    "get_once",
    "greeting",
    "https_get",
    "presented",
]

LOOPBACK = "127.0.0.1"
# What a refused or broken connection raises, from the handshake to the HTTP answer.
REFUSALS = (ssl.SSLError, OSError, http.client.HTTPException)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    server_cert_der: bytes


def presented(
    port: int, context: ssl.SSLContext, *, server_name: str | None = LOOPBACK, timeout: float = 5.0
) -> bytes:
    """The DER certificate a new handshake gets (``server_name`` is sent as SNI and, when
    ``context.check_hostname`` is on, checked against the certificate)."""
    with (
        socket.create_connection((LOOPBACK, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


def https_get(
    port: int, context: ssl.SSLContext, path: str, conn: http.client.HTTPSConnection | None = None
) -> Answer:
    """GET over a new connection (or over ``conn``, kept open by the caller)."""
    own = conn is None
    connection = conn or http.client.HTTPSConnection(LOOPBACK, port, context=context, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert connection.sock is not None
        peer = connection.sock.getpeercert(binary_form=True)
        assert peer is not None
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, body, peer)
    finally:
        if own:
            connection.close()


def get_once(port: int, context: ssl.SSLContext, path: str = "/") -> Answer:
    """One GET with ``Connection: close`` on a new connection, read to the end.

    Read off the socket rather than through http.client, so that an answer the server
    closes the connection after (nginx's 400 for a client certificate it refused) is
    still seen whole.
    """
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        peer = tls.getpeercert(binary_form=True)
        assert peer is not None
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return Answer(int(status_line.split()[1]), headers, body, peer)


def greeting(port: int, context: ssl.SSLContext, path: str = "/") -> str | None:
    """The body of a 200 answer to ``GET path`` on a new connection; None when the
    handshake or the request is refused or the answer is not 200."""
    conn = http.client.HTTPSConnection(LOOPBACK, port, context=context, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.read().decode() if response.status == 200 else None
    except REFUSALS:
        return None
    finally:
        conn.close()


def first_presenting(
    port: int, context: ssl.SSLContext, der: bytes, *, deadline: float
) -> float | None:
    """``time.perf_counter()`` when a new handshake first presented ``der``; None if none did
    by ``deadline`` (a ``perf_counter`` value).

    Handshakes follow each other without a pause (a tight poll): the first one that sees
    the certificate bounds the moment it became visible to within one handshake. A
    handshake that fails (a gateway between workers) counts as not presenting it.
    """
    while time.perf_counter() < deadline:
        try:
            seen = presented(port, context, timeout=2.0)
        except REFUSALS:
            continue
        if seen == der:
            return time.perf_counter()
    return None
