"""What the calls put on the wire: the seed's documented request, byte for byte where
the contract names it (the live tests check what the server makes of it)."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx

from keyops.client import Client
from keyops.client.admin import Auth
from keyops.client.certificates import Certificates
from keyops.client.keys import Keys


def test_seed_update_is_the_documented_request() -> None:
    with Client("https://demo.example", "tok") as kc:
        call = Certificates.update.call(
            kc.certificates,
            "My Project",
            "my/certificate",
            pem=b"PEM",
            environments=["production", "staging"],
            alias="updated-cert-alias",
            description="Updated SSL certificate",
            update_referenced_jwks=True,
            update_scope="SAME_PROJECT",
        )
        request = call.request(kc.http)
    assert request.method == "PUT"
    # Names are one path segment each, whatever they hold.
    path = request.url.raw_path.split(b"?")[0]
    assert path == b"/apiops/projects/My%20Project/certificates/my%2Fcertificate/"
    assert parse_qs(request.url.query.decode()) == {
        "updateReferencedJwks": ["true"],
        "updateScope": ["SAME_PROJECT"],
    }
    assert request.headers["authorization"] == "Bearer tok"
    body = request.read()
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    for field, value in (
        ("alias", b"updated-cert-alias"),
        ("certificateDescription", b"Updated SSL certificate"),
        ("environmentList", b"production,staging"),
    ):
        assert f'name="{field}"\r\n\r\n'.encode() + value + b"\r\n" in body
    assert b'name="pemEncodedFile"; filename="certificate.pem"' in body
    # On update the name is in the path only.
    assert b'name="certificateName"' not in body


def test_unset_options_are_left_out_and_der_is_base64() -> None:
    with Client("https://demo.example") as kc:
        call = Keys.create.call(
            kc.keys, "p", "k", key_type="RSA", environments=["e"], public_key=b"\x30\x82"
        )
        request = call.request(kc.http)
        # The token call never sends the client's bearer token.
        kc.set_token("secret-token")
        token_request = Auth.token.call(kc.auth, "u", "p").request(kc.http)
    assert "authorization" not in request.headers and request.url.query == b""
    assert httpx.Response(200, content=request.read()).json() == {
        "name": "k",
        "description": "",
        "keyType": "RSA",
        "cryptoKeyInfoEnvironmentList": [
            {"environmentName": "e", "publicKey": "MII=", "privateKey": None}
        ],
    }
    assert "authorization" not in token_request.headers
    assert parse_qs(token_request.read().decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["u"],
        "client_secret": ["p"],
    }
