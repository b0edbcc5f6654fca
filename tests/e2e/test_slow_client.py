"""A client that stalls mid-upload holds no database lock: other writers go on.

Before issue 9 a session (and on SQLite the write lock) was opened when the caller was
authenticated, before the body was read, so one slow upload stalled every writer. The
stalled request here keeps its socket open with half a body until the end of the test;
the other updates must all finish while it is still stalled (an ordering, not a timing).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.crypto import certs
from tests.support.databases import BACKENDS, database
from tests.support.server import LiveServer, live_server, password_token

PASSWORD = "slow-client-admin-pw"


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    with (
        database(request.param, tmp_path) as url,
        live_server(url, tmp_path / "data", admin_password=PASSWORD) as s,
    ):
        yield s


def _form(
    pem: bytes, environments: str, alias: str
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    data = {"alias": alias, "certificateDescription": "d", "environmentList": environments}
    return data, {"pemEncodedFile": ("c.pem", pem)}


def test_a_stalled_upload_does_not_hold_up_other_writers(server: LiveServer) -> None:
    token = password_token(server.base_url, "admin", PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    pem = certs.self_signed("p256", "slow.example").cert.public_bytes(Encoding.PEM)
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        envs = ",".join(
            e["name"] for e in client.get("/apiops/environments/").json()["resultList"][:2]
        )
        for name in ("stalled", "busy"):
            data, files = _form(pem, envs, name)
            r = client.post(
                "/apiops/projects/admin/certificates/",
                data={**data, "certificateName": name},
                files=files,
            )
            assert r.status_code == 200, r.text

        # The stalled update: headers, authentication and half the body; then nothing.
        boundary = "keyops-stall"
        half = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="alias"\r\n\r\nstalled\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="pemEncodedFile";'
            ' filename="c.pem"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode() + pem[: len(pem) // 2]
        host, port = server.base_url.removeprefix("http://").split(":")
        stalled = socket.create_connection((host, int(port)))
        try:
            stalled.sendall(
                (
                    "PUT /apiops/projects/admin/certificates/stalled/ HTTP/1.1\r\n"
                    f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                    f"Content-Length: {len(half) + 10_000}\r\n\r\n"
                ).encode()
                + half
            )
            # Let the server authenticate it and start reading its body.
            client.get("/apiops/test/healthcheck")
            for _ in range(10):
                data, files = _form(pem, envs, "busy")
                r = client.put("/apiops/projects/admin/certificates/busy/", data=data, files=files)
                assert r.status_code == 200, r.text
                assert r.json()["deploymentResult"]["success"] is True
            # The stalled request is still open and unanswered all along.
            stalled.setblocking(False)
            with pytest.raises(BlockingIOError):
                stalled.recv(1)
        finally:
            stalled.close()
        r = client.get("/apiops/projects/admin/certificates/stalled/")
        assert r.status_code == 200
