"""Typed errors: each status raises its class, with the contract's error and text."""

from __future__ import annotations

import httpx
import pytest

from keyops.client import (
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    KeyopsError,
    NotFound,
    PayloadTooLarge,
    ServerError,
    TransportError,
    Unauthorized,
)
from keyops.client.errors import error_from
from tests.client.conftest import PROJECT, UPLOAD_LIMIT, material, unique
from tests.support.server import LiveServer, free_port

ENVS = ["production"]


def pair(exc: pytest.ExceptionInfo[KeyopsError]) -> tuple[int, str, str]:
    return exc.value.status, exc.value.error, exc.value.error_description


def test_each_status_has_its_error(kc: Client, live: LiveServer) -> None:
    missing = unique("missing")
    with pytest.raises(BadRequest) as bad:
        kc.certificates.get(PROJECT, missing)
    assert pair(bad) == (400, "bad_request", f"Certificate (name: {missing}) is not found!")
    assert bad.value.body == {
        "error": "bad_request",
        "error_description": f"Certificate (name: {missing}) is not found!",
    }

    with Client(live.base_url, "not-a-token") as stranger, pytest.raises(Unauthorized) as unauth:
        stranger.certificates.list(PROJECT)
    assert pair(unauth) == (401, "unauthorized_client", "Invalid token")

    name, password = unique("reader"), "reader-password-1"
    kc.users.create(name, password)  # no roles
    with Client.login(live.base_url, name, password) as roleless:
        with pytest.raises(Forbidden) as forbidden:
            roleless.certificates.list(PROJECT)
        assert pair(forbidden) == (
            403,
            "forbidden",
            "You do not have permission to perform this action: it needs the role"
            " ROLE_API_SECURITY",
        )
        # The list-environments page answers a non-admin 401, not 403.
        with pytest.raises(Unauthorized) as env_list:
            roleless.environments.list()
        assert pair(env_list) == (
            401,
            "unauthorized_client",
            "Invalid token or insufficient permissions",
        )
    kc.users.update(name, roles=["ROLE_API_SECURITY"])
    with Client.login(live.base_url, name, password) as outsider:
        # Not a member: the project does not exist for them (decision 10).
        with pytest.raises(NotFound) as hidden:
            outsider.certificates.list(PROJECT)
        assert pair(hidden) == (
            404,
            "not_found",
            f"Project({PROJECT}) was not found or user does not have privilege to access it!",
        )

    with pytest.raises(Conflict) as taken:
        kc.users.create(name, "another-password-1")
    assert pair(taken) == (409, "conflict", f"User (username: {name}) is already exist!")

    big = b"-----BEGIN CERTIFICATE-----\n" + b"A" * (UPLOAD_LIMIT + 1)
    with pytest.raises(PayloadTooLarge) as large:
        kc.certificates.create(PROJECT, unique("big"), pem=big, environments=ENVS)
    assert pair(large) == (
        413,
        "payload_too_large",
        f"pemEncodedFile is larger than the limit of {UPLOAD_LIMIT} bytes!",
    )
    # Every class is a KeyopsError, and its message names status, code and text.
    assert str(taken.value) == f"409 conflict: User (username: {name}) is already exist!"
    assert isinstance(large.value, KeyopsError)


def test_bad_environment_is_refused_before_any_change(kc: Client) -> None:
    name, m = unique("noenv"), material("noenv")
    with pytest.raises(BadRequest) as bad:
        kc.certificates.create(PROJECT, name, pem=m.pem, environments=["nowhere"])
    assert bad.value.error == "bad_request"
    assert "nowhere" in bad.value.error_description
    assert name not in [c.name for c in kc.certificates.list(PROJECT).result_list]


def test_unreachable_server_is_a_transport_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", "t", timeout=2) as nowhere:
        with pytest.raises(TransportError) as down:
            nowhere.projects.list()
    assert down.value.status == 0 and down.value.error == "transport_error"
    assert down.value.error_description.startswith("ConnectError")


@pytest.mark.parametrize(
    ("status", "body", "cls", "error", "description"),
    [
        (502, b"<html>bad gateway</html>", ServerError, "internal_error", "Bad Gateway"),
        (
            500,
            b'{"error": "internal_error", "error_description": "boom"}',
            ServerError,
            "internal_error",
            "boom",
        ),
        (418, b"{}", KeyopsError, "http_418", "I'm a teapot"),
        (
            405,
            b'{"error": "method_not_allowed"}',
            KeyopsError,
            "method_not_allowed",
            "Method Not Allowed",
        ),
    ],
)
def test_answers_without_the_contract_body(
    status: int, body: bytes, cls: type[KeyopsError], error: str, description: str
) -> None:
    # A proxy in front of keyops may answer with no error body: still a typed error.
    exc = error_from(httpx.Response(status, content=body))
    assert type(exc) is cls
    assert (exc.status, exc.error, exc.error_description) == (status, error, description)
