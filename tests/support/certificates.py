"""Helpers for the certificate, JWK and deployment API tests.

* ``multipart`` builds a multipart/form-data body by hand, so a test controls every
  part: repeated fields, a file part or a text part, odd field names.
* ``CertificateClient`` speaks the certificate and JWK endpoints of one project.
* ``state_of`` takes a snapshot of everything a request could change, for the
  "a refused request changes nothing" checks.
* ``openssl_facts`` reads a certificate file with the openssl CLI (and its subjectDn
  with the JDK): the reference the API's sha1Thumbprint, startDate, endDate and
  subjectDn are compared with.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from keyops.config import Settings
from keyops.storage.models import Environment
from tests.conftest import bearer
from tests.crypto import certs
from tests.support.java_dn import java_dn_pair
from tests.support.storage import open_database

# A part: (field name, value, filename). A filename (even "") makes it a file part.
Part = tuple[str, str | bytes, str | None]

CERT_PATH = "/apiops/projects/{project}/certificates/"
JWK_PATH = "/apiops/projects/{project}/jwks/"
ENV_DEPLOYMENTS = "/apiops/environments/{env}/deployments/"


def multipart(parts: Iterable[Part]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body and its Content-Type header."""
    boundary = f"keyops-test-{secrets.token_hex(12)}"
    chunks: list[bytes] = []
    for field, value, filename in parts:
        disposition = f'form-data; name="{field}"'
        headers = ""
        if filename is not None:
            disposition += f'; filename="{filename}"'
            headers = "Content-Type: application/octet-stream\r\n"
        data = value.encode("utf-8") if isinstance(value, str) else value
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{headers}\r\n".encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def certificate_parts(
    *,
    name: str | None,
    alias: str | None = "alias-1",
    description: str | None = "a test certificate",
    environments: Sequence[str] | str | None = (),
    pem: bytes | None = None,
    pem_as_text: bool = False,
    repeat_environments: bool = False,
) -> list[Part]:
    """The five documented fields; None leaves a field out."""
    parts: list[Part] = []
    if name is not None:
        parts.append(("certificateName", name, None))
    if alias is not None:
        parts.append(("alias", alias, None))
    if description is not None:
        parts.append(("certificateDescription", description, None))
    if environments is not None:
        if isinstance(environments, str):
            parts.append(("environmentList", environments, None))
        elif repeat_environments:
            parts.extend(("environmentList", env, None) for env in environments)
        else:
            parts.append(("environmentList", ",".join(environments), None))
    if pem is not None:
        if pem_as_text:
            parts.append(("pemEncodedFile", pem.decode("utf-8"), None))
        else:
            parts.append(("pemEncodedFile", pem, "certificate.pem"))
    return parts


@dataclass
class CertificateClient:
    """The certificate and JWK endpoints of one project, as one caller."""

    client: httpx.AsyncClient
    token: str
    project: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    @property
    def base(self) -> str:
        return CERT_PATH.format(project=self.project)

    @property
    def jwk_base(self) -> str:
        return JWK_PATH.format(project=self.project)

    async def post_parts(
        self, parts: Iterable[Part], *, path: str | None = None, method: str = "POST"
    ) -> httpx.Response:
        body, content_type = multipart(parts)
        return await self.client.request(
            method, path or self.base, content=body, headers={**self.headers, **content_type}
        )

    async def create(
        self,
        name: str,
        pem: bytes,
        environments: Sequence[str],
        *,
        alias: str = "alias-1",
        description: str = "a test certificate",
        **kwargs: Any,
    ) -> httpx.Response:
        parts = certificate_parts(
            name=name,
            alias=alias,
            description=description,
            environments=environments,
            pem=pem,
            **kwargs,
        )
        return await self.post_parts(parts)

    async def create_ok(
        self, name: str, pem: bytes, environments: Sequence[str], **kwargs: Any
    ) -> dict[str, Any]:
        r = await self.create(name, pem, environments, **kwargs)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def update(
        self,
        name: str,
        pem: bytes | None,
        environments: Sequence[str] | None,
        *,
        alias: str | None = "alias-1",
        description: str | None = "a test certificate",
        query: str = "",
        form_name: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        parts = certificate_parts(
            name=form_name,
            alias=alias,
            description=description,
            environments=environments,
            pem=pem,
            **kwargs,
        )
        path = f"{self.base}{name}/" + (f"?{query}" if query else "")
        return await self.post_parts(parts, path=path, method="PUT")

    async def list(self) -> httpx.Response:
        return await self.client.get(self.base, headers=self.headers)

    async def get(self, name: str) -> httpx.Response:
        return await self.client.get(f"{self.base}{name}/", headers=self.headers)

    async def get_one(self, name: str) -> dict[str, Any]:
        r = await self.get(name)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and len(body["resultList"]) == 1
        item: dict[str, Any] = body["resultList"][0]
        return item

    async def delete(self, name: str) -> httpx.Response:
        return await self.client.delete(f"{self.base}{name}/", headers=self.headers)

    async def export(self, name: str) -> httpx.Response:
        return await self.client.get(f"{self.base}{name}/export/", headers=self.headers)

    async def create_jwk(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(self.jwk_base, json=body, headers=self.headers)

    async def jwk_from_certificate(
        self,
        name: str,
        certificate: str,
        environment: str,
        *,
        algorithm: str = "RS256",
        use_type: str = "SIGNATURE",
        **extra: Any,
    ) -> dict[str, Any]:
        r = await self.create_jwk(
            {
                "name": name,
                "description": f"{name} from {certificate}",
                "sourceType": "CERTIFICATE",
                "certificateName": certificate,
                "environmentName": environment,
                "useType": use_type,
                "algorithm": algorithm,
                **extra,
            }
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def get_jwk(self, name: str) -> dict[str, Any]:
        r = await self.client.get(f"{self.jwk_base}{name}/", headers=self.headers)
        assert r.status_code == 200, r.text
        item: dict[str, Any] = r.json()["resultList"][0]
        return item

    async def delete_jwk(self, name: str) -> httpx.Response:
        return await self.client.delete(f"{self.jwk_base}{name}/", headers=self.headers)

    async def list_jwks(self) -> httpx.Response:
        return await self.client.get(self.jwk_base, headers=self.headers)


async def deployments(client: httpx.AsyncClient, admin_token: str, env: str) -> dict[str, Any]:
    """GET /apiops/environments/{env}/deployments/ as admin."""
    r = await client.get(ENV_DEPLOYMENTS.format(env=env), headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def deployed(
    client: httpx.AsyncClient, admin_token: str, env: str, *, kind: str = "certificate"
) -> dict[tuple[str, str], dict[str, Any]]:
    """What the environment holds of one kind, by (projectName, name)."""
    body = await deployments(client, admin_token, env)
    return {
        (row["projectName"], row["name"]): row for row in body["resultList"] if row["kind"] == kind
    }


async def environment_status(client: httpx.AsyncClient, admin_token: str, env: str) -> str:
    r = await client.get("/apiops/environments/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    (status,) = [e["status"] for e in r.json()["resultList"] if e["name"] == env]
    return str(status)


async def state_of(
    client: httpx.AsyncClient,
    admin_token: str,
    projects: Sequence[str],
    environments: Sequence[str],
) -> dict[str, Any]:
    """Everything a certificate or JWK request could change, as the admin sees it.

    The admin must be a member of each project. Per project: the certificate list and
    every certificate and JWK in full. Per environment: what it holds, its recent
    attempts and its status.
    """
    state: dict[str, Any] = {}
    for project in projects:
        api = CertificateClient(client, admin_token, project)
        listed = await api.list()
        assert listed.status_code == 200, listed.text
        certs = {c["name"]: await api.get_one(c["name"]) for c in listed.json()["resultList"]}
        jwk_list = await api.list_jwks()
        assert jwk_list.status_code == 200, jwk_list.text
        jwks = {j["name"]: await api.get_jwk(j["name"]) for j in jwk_list.json()["resultList"]}
        state[f"project:{project}"] = {"list": listed.json(), "certs": certs, "jwks": jwks}
    for env in environments:
        body = await deployments(client, admin_token, env)
        state[f"env:{env}"] = {
            "held": body["resultList"],
            "attempts": body["recentAttempts"],
            "status": body["status"],
        }
    return state


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def der_of(item_env: dict[str, Any]) -> bytes:
    """The DER of a certificate-environment object that carries base64EncodedContent."""
    return base64.b64decode(item_env["base64EncodedContent"], validate=True)


# --- the openssl CLI as the reference --------------------------------------------------


def _openssl_instant(value: str) -> str:
    parsed = dt.datetime.strptime(value, "%b %d %H:%M:%S %Y GMT")
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def openssl_facts(cert_file: Path) -> dict[str, Any]:
    """sha1Thumbprint, startDate, endDate, subjectDn and DER of a PEM file, per openssl/Java."""
    out = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(cert_file),
            "-noout",
            "-fingerprint",
            "-sha1",
            "-startdate",
            "-enddate",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8")
    lines = {k.strip(): v for k, _, v in (ln.partition("=") for ln in out.splitlines())}
    lines = {k.replace("SHA1", "sha1"): v for k, v in lines.items()}
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert_file), "-outform", "DER"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return {
        "sha1Thumbprint": lines["sha1 Fingerprint"].replace(":", "").upper(),
        "startDate": _openssl_instant(lines["notBefore"]),
        "endDate": _openssl_instant(lines["notAfter"]),
        # Apinizer is Java: the DN is what the JDK prints (tests/support/java_dn.py).
        "subjectDn": java_dn_pair(der)[0],
        "der": der,
    }


# --- JWK thumbprints, computed here (RFC 7638), not by the code under test -----------

_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    members = {k: jwk[k] for k in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- a project with environments of its own ---------------------------------------------


@dataclass
class Setting:
    """A fresh project (the admin a member) with environments limited to it."""

    client: httpx.AsyncClient
    admin_token: str
    project: str
    envs: list[str]

    @property
    def api(self) -> CertificateClient:
        return CertificateClient(self.client, self.admin_token, self.project)

    def as_user(self, token: str, project: str | None = None) -> CertificateClient:
        return CertificateClient(self.client, token, project or self.project)

    async def state(
        self, *, projects: Sequence[str] = (), envs: Sequence[str] = ()
    ) -> dict[str, Any]:
        return await state_of(
            self.client,
            self.admin_token,
            [self.project, *projects],
            [*self.envs, *envs],
        )


async def new_setting(
    client: httpx.AsyncClient, admin_token: str, factory: Any, *, envs: int = 3
) -> Setting:
    project = await factory.project("admin")
    names = [await factory.environment(projects=(project,)) for _ in range(envs)]
    return Setting(client, admin_token, project, names)


async def set_environment_target(settings: Settings, environment: str, target: str) -> None:
    """Point an environment at another target kind: "its gateway was repaired".

    The API has no call for it (an environment's target is fixed when it is created),
    so this goes to the database the app uses.
    """
    with open_database(settings) as db, db.transaction() as session:
        result = session.execute(
            update(Environment).where(Environment.name == environment).values(target=target)
        )
        assert getattr(result, "rowcount", 0) == 1


async def delete_environment(client: httpx.AsyncClient, admin_token: str, name: str) -> None:
    r = await client.delete(f"/apiops/admin/environments/{name}/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text


# --- cheap users and keys ----------------------------------------------------------------

_USERS: dict[tuple[int, tuple[str, ...]], Any] = {}


async def member(factory: Any, *roles: str, projects: Sequence[str] = ()) -> Any:
    """A user with exactly these roles, made once per app and role set, added to projects.

    Hashing passwords is slow on purpose; tests that only need "someone with these
    roles" share one such user per database.
    """
    key = (id(factory.client), tuple(sorted(roles)))
    if key not in _USERS:
        _USERS[key] = await factory.user(*roles)
    actor = _USERS[key]
    for project in projects:
        await factory.add_member(project, actor.username)
    return actor


_KEY_POOLS: dict[str, list[Any]] = {}
_KEY_TURNS: dict[str, int] = {}
KEY_POOL_SIZE = 6


def pooled_key(kind: str) -> Any:
    """One of a few keys of ``kind``, a different one on each call than on the last.

    Fresh RSA keys cost tens of milliseconds each; a test that needs an old and a new
    key gets two different ones from the pool.
    """
    pool = _KEY_POOLS.setdefault(kind, [])
    turn = _KEY_TURNS.get(kind, 0)
    _KEY_TURNS[kind] = turn + 1
    if len(pool) < KEY_POOL_SIZE:
        pool.append(certs.new_key(kind))
        return pool[-1]
    return pool[turn % KEY_POOL_SIZE]
