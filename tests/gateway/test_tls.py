"""The listener context's client CA names: set through OpenSSL, or left out safely."""

from __future__ import annotations

import ssl

import pytest

from keyops.gateway import tls
from tests.crypto import certs
from tests.support.gateway_nodes import issue


def server_side_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


@pytest.fixture(scope="module")
def ca() -> certs.Issued:
    return issue("Names CA", ca=True)


def test_the_ssl_ctx_of_a_context_is_found_and_checked(ca: certs.Issued) -> None:
    assert tls._advertise_client_cas(server_side_context(), (ca.der,)) is True


def test_a_pointer_that_does_not_match_the_context_is_not_used(
    ca: certs.Issued, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lib = tls._libssl()
    assert lib is not None

    class WrongMode:
        def __getattr__(self, name: str) -> object:
            return getattr(lib, name)

        def SSL_CTX_get_verify_mode(self, _pointer: int) -> int:
            return 3  # not what the context says: the layout is not what we think

    monkeypatch.setattr(tls, "_libssl", lambda: WrongMode())
    assert tls._advertise_client_cas(server_side_context(), (ca.der,)) is False
    assert "can not name acceptable client CAs" in caplog.text


def test_no_libssl_leaves_the_names_out(ca: certs.Issued, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "_libssl", lambda: None)
    assert tls._advertise_client_cas(server_side_context(), (ca.der,)) is False
