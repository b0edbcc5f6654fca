"""TLS for the node's listener: contexts built from the applied state, swapped live.

``server_context`` builds one ``ssl.SSLContext`` per applied snapshot: the server
identity's chain and key, and, when the truststore is not empty, client certificate
verification against it with ``CERT_OPTIONAL``: a client may connect without a
certificate (``/.well-known/jwks.json`` is public), but a certificate that does not
chain to the truststore fails the handshake.

Hot swap: ``TlsListener`` accepts plain TCP (``asyncio.start_server`` without ``ssl``)
and upgrades each connection with ``StreamWriter.start_tls`` using whatever context is
current at accept time. A new snapshot replaces that context; connections already
upgraded keep the ``SSLObject`` (and so the context) they were made with, so rotation
takes effect for new connections without a restart and without dropping open ones.

Decisions:

* ``ssl`` only loads certificates and keys from files. The chain is written to a private
  temporary directory and the key with it, encrypted under a random one-time password
  (PKCS#8, best available encryption); the directory is removed once loaded, so the key
  never sits on disk in clear, even for a moment.
* Every truststore certificate is a trust anchor (``VERIFY_X509_PARTIAL_CHAIN``), as in a
  Java truststore: deploying an issuing CA without its root trusts that CA's clients.
* A refused handshake sends OpenSSL's alert (``unknown_ca``, ``bad_certificate``, ...)
  before the connection closes. asyncio's ``SSLProtocol`` before CPython gh-98078 aborts
  the transport without flushing the alert OpenSSL left in its outgoing buffer, so the
  client saw a bare EOF; ``_flush_alert_on_handshake_failure`` backports that fix (flush,
  then close) and is a no-op where the running asyncio has no such method.
* The CertificateRequest names the truststore's subjects as acceptable CAs (RFC 5246
  7.4.4, RFC 8446 4.2.4), so a client holding several certificates can pick the right
  one. ``ssl`` has no ``SSL_CTX_set_client_CA_list``; ``_advertise_client_cas`` calls
  OpenSSL's ``SSL_CTX_add_client_CA`` through ctypes on the context's ``SSL_CTX`` (found
  through the ``_ssl`` module's own libssl, and checked against the context's verify mode
  and minimum version before use). If any of that does not hold, the names are left out
  (a warning is logged) and verification is unchanged.
* TLS 1.2 is the minimum. With TLS 1.3 the client finishes its side of the handshake
  before the server has checked its certificate, so a refused client sees the server's
  alert (``unknown ca``) on its first read rather than in its own handshake call.
"""

from __future__ import annotations

import _ssl
import asyncio
import asyncio.sslproto
import contextlib
import ctypes
import functools
import logging
import os
import secrets
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_der_x509_certificate

from keyops.crypto.x509 import CertificateParseError, parse_certificate
from keyops.gateway.snapshot import AppliedState, ServerIdentity, SnapshotError

__all__ = ["ContextSource", "PeerHandler", "TlsListener", "TlsPeer", "server_context"]

log = logging.getLogger(__name__)


def _pem_chain(chain_der: tuple[bytes, ...]) -> bytes:
    return b"".join(
        load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in chain_der
    )


def _encrypted_key_pem(identity: ServerIdentity, password: bytes) -> bytes:
    try:
        key = serialization.load_der_private_key(identity.private_key_der.reveal(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SnapshotError(
            f"TLS identity {identity.source}: the private key can not be used for TLS"
        ) from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _load_identity(context: ssl.SSLContext, identity: ServerIdentity) -> None:
    password = secrets.token_hex(32).encode("ascii")
    key_pem = _encrypted_key_pem(identity, password)
    with tempfile.TemporaryDirectory(prefix="keyops-tls-") as tmp:
        chain_path, key_path = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
        chain_path.write_bytes(_pem_chain(identity.chain_der))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        try:
            context.load_cert_chain(chain_path, key_path, password=password)
        except ssl.SSLError as exc:
            raise SnapshotError(
                f"TLS identity {identity.source}: the certificate and key can not be "
                f"served ({exc.reason or 'rejected by OpenSSL'})"
            ) from None


def _flush_alert_on_handshake_failure() -> None:
    """Send the TLS alert of a failed handshake before closing (CPython gh-98078)."""
    protocol: Any = asyncio.sslproto.SSLProtocol
    original = getattr(protocol, "_on_handshake_complete", None)
    if original is None or not hasattr(protocol, "_process_outgoing"):
        return
    if getattr(original, "keyops_flushes_alert", False):
        return

    @functools.wraps(original)
    def on_handshake_complete(self: Any, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            with contextlib.suppress(Exception):
                self._process_outgoing()
        original(self, handshake_exc)

    on_handshake_complete.keyops_flushes_alert = True  # type: ignore[attr-defined]
    protocol._on_handshake_complete = on_handshake_complete


_flush_alert_on_handshake_failure()

_SSL_CTRL_GET_MIN_PROTO_VERSION = 130


@functools.cache
def _libssl() -> Any | None:
    """The libssl the ``ssl`` module itself is linked to, with the calls used here typed."""
    try:
        lib = ctypes.CDLL(_ssl.__file__)
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_add_client_CA.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.SSL_CTX_add_client_CA.restype = ctypes.c_int
        lib.d2i_X509.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_long,
        ]
        lib.d2i_X509.restype = ctypes.c_void_p
        lib.X509_free.argtypes = [ctypes.c_void_p]
        lib.X509_free.restype = None
    except (OSError, AttributeError, TypeError):
        return None
    return lib


def _ssl_ctx_pointer(context: ssl.SSLContext, lib: Any) -> int | None:
    """The context's ``SSL_CTX *``: the first field after the object header in CPython."""
    if sys.implementation.name != "cpython":
        return None
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer:
        return None
    # The field layout is CPython's, not an API: check the pointer is this context's.
    expected_mode = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}
    min_version = lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_GET_MIN_PROTO_VERSION, 0, None)
    # Only the PEER and FAIL_IF_NO_PEER_CERT bits: ssl may add others (post-handshake auth).
    if lib.SSL_CTX_get_verify_mode(pointer) & 0x3 != expected_mode[context.verify_mode]:
        return None
    if context.minimum_version.value > 0 and min_version != context.minimum_version.value:
        return None
    return int(pointer)


def _advertise_client_cas(context: ssl.SSLContext, truststore: tuple[bytes, ...]) -> bool:
    """Name the truststore's subjects in the CertificateRequest; False if not possible."""
    lib = _libssl()
    pointer = _ssl_ctx_pointer(context, lib) if lib is not None else None
    if lib is None or pointer is None:
        log.warning("can not name acceptable client CAs: OpenSSL's SSL_CTX is not reachable")
        return False
    for der in truststore:
        data = ctypes.c_char_p(der)
        x509 = lib.d2i_X509(None, ctypes.byref(data), len(der))
        if not x509:
            return False
        try:
            if lib.SSL_CTX_add_client_CA(pointer, x509) != 1:
                return False
        finally:
            lib.X509_free(x509)
    return True


def server_context(state: AppliedState) -> ssl.SSLContext | None:
    """The listener's context for ``state``; None when it names no server identity."""
    if state.identity is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    _load_identity(context, state.identity)
    if state.truststore:
        try:
            context.load_verify_locations(cadata=b"".join(state.truststore))
        except ssl.SSLError as exc:
            raise SnapshotError(f"the truststore can not be loaded ({exc.reason})") from None
        context.verify_mode = ssl.CERT_OPTIONAL
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        _advertise_client_cas(context, state.truststore)
    return context


@dataclass(frozen=True, slots=True)
class TlsPeer:
    """The verified client certificate of a connection, if the client sent one."""

    certificate_der: bytes | None
    subject_dn: str | None


ContextSource = Callable[[], ssl.SSLContext | None]
PeerHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, TlsPeer], Awaitable[None]]


def _peer(writer: asyncio.StreamWriter) -> TlsPeer:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return TlsPeer(None, None)
    try:
        return TlsPeer(der, parse_certificate(der).subject_dn)
    except CertificateParseError:  # OpenSSL verified it, so this is not expected
        return TlsPeer(der, None)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await writer.wait_closed()


class TlsListener:
    """Plain TCP accept, then ``start_tls`` with the context current at that moment."""

    def __init__(
        self,
        host: str,
        port: int,
        contexts: ContextSource,
        handler: PeerHandler,
        *,
        handshake_timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._contexts = contexts
        self._handler = handler
        self._handshake_timeout = handshake_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, self._port)

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        assert self._server is not None, "not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """Stop accepting and end open connections."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=2)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # No await before start_tls: the ClientHello must reach the TLS layer, not the
        # plain reader's buffer.
        context = self._contexts()
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if context is None:
                return  # no server identity yet: nothing to serve TLS with
            try:
                await writer.start_tls(context, ssl_handshake_timeout=self._handshake_timeout)
            except (ssl.SSLError, OSError, TimeoutError) as exc:
                log.info(
                    "TLS handshake with %s failed: %s",
                    writer.get_extra_info("peername"),
                    getattr(exc, "reason", None) or type(exc).__name__,
                )
                return
            await self._handler(reader, writer, _peer(writer))
        finally:
            self._connections.discard(task)
            await _close(writer)
