"""Certificates end to end: create, list, get, delete, export and the truststore.

Pages: create-, list-, get-, delete-, export-certificate.md and
get-truststore-certificates.md; decisions 1, 3, 6-11 of the contract.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import (
    Part,
    Setting,
    certificate_parts,
    delete_environment,
    deployed,
    der_of,
    member,
    multipart,
    new_setting,
    openssl_facts,
    sha256_hex,
)
from tests.support.java_dn import java_dn_pair
from tests.support.messages import DEPLOYED, UNDEPLOYED

EMPTY = "pemEncodedFile value can not be empty!"
INVALID = "pemEncodedFile is not a valid PEM or DER encoded X.509 certificate!"
PRIVATE_KEY = "pemEncodedFile holds a private key, not a certificate!"
LIST_FIELDS = {"environmentName", "startDate", "endDate", "sha1Thumbprint", "subjectDn", "alias"}
GET_FIELDS = LIST_FIELDS | {"base64EncodedContent"}


def not_found(name: str) -> dict[str, str]:
    return {
        "error": "bad_request",
        "error_description": f"Certificate (name: {name}) is not found!",
    }


def bad_request(description: str) -> dict[str, str]:
    return {"error": "bad_request", "error_description": description}


def no_project(project: str) -> dict[str, str]:
    return {
        "error": "not_found",
        "error_description": (
            f"Project({project}) was not found or user does not have privilege to access it!"
        ),
    }


def deployed_ok(envs: list[str]) -> dict[str, Any]:
    """The create page's success answer for these environments."""
    return {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Deployment completed successfully",
            "environmentResults": [
                {"environmentName": e, "success": True, "message": DEPLOYED} for e in envs
            ],
        },
    }


def undeployed_ok(envs: list[str]) -> dict[str, Any]:
    """The delete page's success answer for these environments."""
    return {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Undeployment completed successfully",
            "environmentResults": [
                {"environmentName": e, "success": True, "message": UNDEPLOYED} for e in envs
            ],
        },
    }


def pem(common_name: str = "cert.example", kind: str = "rsa2048") -> bytes:
    return certs.self_signed(kind, common_name).pem


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory)


# --- create ----------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_create_deploys_to_every_listed_environment(s: Setting, slash: bool) -> None:
    name = unique("cert")
    issued = certs.self_signed("rsa2048", "create.example")
    parts = certificate_parts(
        name=name, alias="my-cert-alias", environments=s.envs[:2], pem=issued.pem
    )
    path = s.api.base if slash else s.api.base.rstrip("/")
    r = await s.api.post_parts(parts, path=path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.json() == deployed_ok(s.envs[:2])

    item = await s.api.get_one(name)
    assert item["name"] == name
    assert item["description"] == "a test certificate"
    rows = item["certificateEnvironmentList"]
    assert [row["environmentName"] for row in rows] == s.envs[:2]
    for row in rows:
        assert set(row) == GET_FIELDS
        assert row["alias"] == "my-cert-alias"
        assert der_of(row) == issued.der
    for env in s.envs[:2]:
        held = await deployed(s.client, s.admin_token, env)
        assert held[(s.project, name)]["contentHash"] == sha256_hex(issued.der)
    assert (s.project, name) not in await deployed(s.client, s.admin_token, s.envs[2])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (lambda e: [f"{e[0]},{e[1]},{e[2]}"], [0, 1, 2]),
        (lambda e: [e[2], e[0], e[1]], [2, 0, 1]),
        (lambda e: [f"{e[0]}, {e[1]}", e[2]], [0, 1, 2]),
        (lambda e: [f" {e[1]} ,{e[0]},,", f"{e[1]}", e[0]], [1, 0]),
    ],
    ids=["comma-separated", "repeated", "both", "spaces-empties-duplicates"],
)
async def test_environment_list_forms(
    s: Setting, fields: Callable[[list[str]], list[str]], expected: list[int]
) -> None:
    name = unique("cert")
    parts: list[Part] = certificate_parts(name=name, environments=None, pem=pem())
    parts += [("environmentList", value, None) for value in fields(s.envs)]
    r = await s.api.post_parts(parts)
    assert r.status_code == 200, r.text
    envs = [s.envs[i] for i in expected]
    assert r.json() == deployed_ok(envs)
    item = await s.api.get_one(name)
    assert [row["environmentName"] for row in item["certificateEnvironmentList"]] == envs


@pytest.mark.parametrize("encoding", ["pem-file", "pem-text", "der-file", "pem-crlf-with-text"])
async def test_pem_encoded_file_as_file_as_text_and_der(s: Setting, encoding: str) -> None:
    issued = certs.self_signed("p256", "forms.example")
    name = unique("cert")
    as_text = encoding == "pem-text"
    content = {
        "pem-file": issued.pem,
        "pem-text": issued.pem,
        "der-file": issued.der,
        "pem-crlf-with-text": b"subject=CN=forms.example\r\n" + issued.pem.replace(b"\n", b"\r\n"),
    }[encoding]
    r = await s.api.create(name, content, s.envs[:1], pem_as_text=as_text)
    assert r.status_code == 200, r.text
    (row,) = (await s.api.get_one(name))["certificateEnvironmentList"]
    assert der_of(row) == issued.der


def _non_ascii() -> certs.Issued:
    subject = certs.name(
        ("COUNTRY_NAME", "TR"),
        ("LOCALITY_NAME", "İstanbul"),
        ("ORGANIZATION_NAME", "Müller & Söhne, Çağ Ltd."),
        ("COMMON_NAME", "日本語.example ünïcødé"),
    )
    return certs.make_cert(subject, certs.key("p256"))


def _multi_valued_rdn() -> certs.Issued:
    subject = certs.name(
        ("COUNTRY_NAME", "US"),
        ("ORGANIZATION_NAME", "Example Inc"),
        [("ORGANIZATIONAL_UNIT_NAME", "Engineering"), ("COMMON_NAME", "multi.example")],
    )
    return certs.make_cert(subject, certs.key("rsa2048"))


CORPUS: dict[str, Callable[[], certs.Issued]] = {
    "rsa2048": lambda: certs.self_signed("rsa2048", "rsa.example"),
    "ec-p256": lambda: certs.self_signed("p256", "p256.example"),
    "ec-p384": lambda: certs.self_signed("p384", "p384.example"),
    "ed25519": lambda: certs.self_signed("ed25519", "ed25519.example"),
    "non-ascii-dn": _non_ascii,
    "multi-valued-rdn": _multi_valued_rdn,
    "chain-leaf": lambda: certs.chain3()[2],
}


@pytest.mark.parametrize("kind", list(CORPUS))
async def test_values_agree_with_openssl(s: Setting, kind: str, tmp_path: Path) -> None:
    cert_file = tmp_path / "certificate.pem"
    cert_file.write_bytes(CORPUS[kind]().pem)
    name = unique("cert")
    await s.api.create_ok(name, cert_file.read_bytes(), s.envs[:2])
    reference = openssl_facts(cert_file)

    item = await s.api.get_one(name)
    listed = {c["name"]: c for c in (await s.api.list()).json()["resultList"]}[name]
    for rows in (item["certificateEnvironmentList"], listed["certificateEnvironmentList"]):
        for row in rows:
            for field in ("sha1Thumbprint", "startDate", "endDate", "subjectDn"):
                assert row[field] == reference[field], field
    for row in item["certificateEnvironmentList"]:
        assert der_of(row) == reference["der"]
    if kind != "chain-leaf":
        # tests/crypto/certs.py makes certificates valid for exactly these instants.
        assert item["certificateEnvironmentList"][0]["startDate"] == "2024-01-01T00:00:00.000Z"
        assert item["certificateEnvironmentList"][0]["endDate"] == "2025-12-31T23:59:59.000Z"


async def test_subject_dn_reads_like_the_docs(s: Setting) -> None:
    subject = certs.name(
        ("COUNTRY_NAME", "US"), ("ORGANIZATION_NAME", "Example Inc"), ("COMMON_NAME", "example.com")
    )
    name = unique("cert")
    await s.api.create_ok(name, certs.make_cert(subject, certs.key("rsa2048")).pem, s.envs[:1])
    (row,) = (await s.api.get_one(name))["certificateEnvironmentList"]
    assert row["subjectDn"] == "CN=example.com, O=Example Inc, C=US"


async def test_subject_dn_is_what_java_prints(s: Setting) -> None:
    subject = certs.name(
        ("COUNTRY_NAME", "US"),
        ("ORGANIZATION_NAME", "GoDaddy.com, Inc."),
        ("1.2.840.113549.1.9.1", "ops@example.org"),
        [("COMMON_NAME", " spaced "), ("2.5.4.97", "VATHU-23584497")],
    )
    cert = certs.make_cert(subject, certs.key("p256"))
    name = unique("cert")
    await s.api.create_ok(name, cert.pem, s.envs[:1])
    (row,) = (await s.api.get_one(name))["certificateEnvironmentList"]
    expected = 'CN=" spaced " + OID.2.5.4.97=VATHU-23584497, EMAILADDRESS=ops@example.org, O="GoDaddy.com, Inc.", C=US'  # noqa: E501
    assert java_dn_pair(cert.der)[0] == expected
    assert row["subjectDn"] == expected


async def test_same_alias_in_other_environments_and_other_projects_is_fine(
    s: Setting, factory: Factory
) -> None:
    first, second = unique("cert"), unique("cert")
    await s.api.create_ok(first, pem(), s.envs[:1], alias="shared")
    # Another certificate of the project, same alias, other environments.
    await s.api.create_ok(second, pem(), s.envs[1:], alias="shared")
    # Another project, same alias, same environment (decision 7: per project).
    other = await factory.project("admin")
    env = await factory.environment(projects=(s.project, other))
    await s.api.create_ok(unique("cert"), pem(), [env], alias="shared")
    await s.as_user(s.admin_token, other).create_ok(unique("cert"), pem(), [env], alias="shared")


async def test_non_admin_with_both_roles_can_manage(s: Setting, factory: Factory) -> None:
    user = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,)
    )
    api = s.as_user(user.token)
    name = unique("cert")
    await api.create_ok(name, pem(), s.envs)
    r = await api.update(name, pem("next.example"), s.envs[:1], alias="next")
    assert r.status_code == 200, r.text
    assert (await api.export(name)).status_code == 200
    r = await api.delete(name)
    assert r.status_code == 200, r.text
    assert r.json() == undeployed_ok(s.envs[:1])


# --- list and get ----------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_list_leaves_content_out_and_get_has_it(s: Setting, slash: bool) -> None:
    a, b = unique("a-cert"), unique("b-cert")
    issued_a = certs.self_signed("rsa2048", "a.example")
    issued_b = certs.self_signed("ed25519", "b.example")
    await s.api.create_ok(a, issued_a.pem, s.envs[:2], description="first one")
    await s.api.create_ok(b, issued_b.pem, s.envs[2:], description="second one")
    r = await s.client.get(s.api.base.rstrip("/") + ("/" if slash else ""), headers=s.api.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "resultList", "resultCount"}
    assert body["success"] is True
    assert body["resultCount"] == len(body["resultList"]) == 2
    by_name = {c["name"]: c for c in body["resultList"]}
    assert by_name[a]["description"] == "first one"
    assert by_name[b]["description"] == "second one"
    for item in body["resultList"]:
        assert set(item) == {"name", "description", "certificateEnvironmentList"}
        for row in item["certificateEnvironmentList"]:
            assert set(row) == LIST_FIELDS  # decision 9: no base64EncodedContent
    assert [r["environmentName"] for r in by_name[a]["certificateEnvironmentList"]] == s.envs[:2]

    for name, issued in ((a, issued_a), (b, issued_b)):
        path = f"{s.api.base}{name}" + ("/" if slash else "")
        r = await s.client.get(path, headers=s.api.headers)
        assert r.status_code == 200, r.text
        got = r.json()
        assert set(got) == {"success", "resultList", "resultCount"}
        assert got["success"] is True and got["resultCount"] == 1
        (item,) = got["resultList"]
        listed = by_name[name]
        assert item["name"] == name and item["description"] == listed["description"]
        for full, short in zip(
            item["certificateEnvironmentList"], listed["certificateEnvironmentList"], strict=True
        ):
            assert set(full) == GET_FIELDS
            assert der_of(full) == issued.der
            assert {k: v for k, v in full.items() if k != "base64EncodedContent"} == short


async def test_list_of_a_project_without_certificates(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    r = await client.get(f"/apiops/projects/{project}/certificates", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "resultList": [], "resultCount": 0}


# --- delete ----------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_delete_undeploys_everywhere(s: Setting, slash: bool) -> None:
    name, keep = unique("cert"), unique("keep")
    await s.api.create_ok(name, pem(), s.envs)
    await s.api.create_ok(keep, pem(), s.envs, alias="other")
    path = f"{s.api.base}{name}" + ("/" if slash else "")
    r = await s.client.delete(path, headers=s.api.headers)
    assert r.status_code == 200, r.text
    assert r.json() == undeployed_ok(s.envs)

    r = await s.api.get(name)
    assert r.status_code == 400
    assert r.json() == not_found(name)
    assert [c["name"] for c in (await s.api.list()).json()["resultList"]] == [keep]
    for env in s.envs:
        held = await deployed(s.client, s.admin_token, env)
        assert (s.project, name) not in held
        assert (s.project, keep) in held
    # The name and the alias are free again.
    await s.api.create_ok(name, pem(), s.envs)


# --- export ----------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_export_is_a_zip_of_der_files(s: Setting, slash: bool) -> None:
    name = unique("cert")
    issued = certs.self_signed("p384", "export.example")
    await s.api.create_ok(name, issued.pem, s.envs)
    path = f"{s.api.base}{name}/export" + ("/" if slash else "")
    r = await s.client.get(path, headers=s.api.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}-certificates.zip"'
    assert int(r.headers["content-length"]) == len(r.content)
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(f"{name}-{env}.cer" for env in s.envs)
        for env in s.envs:
            assert archive.read(f"{name}-{env}.cer") == issued.der


# --- truststore ------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_truststore_lists_what_is_deployed_to_the_environment(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, slash: bool
) -> None:
    other_project = await factory.project("admin")
    env = await factory.environment(projects=("admin", other_project))
    elsewhere = await factory.environment(projects=("admin",))
    admin = Setting(client, admin_token, "admin", [env, elsewhere])
    trusted, not_here = unique("ca"), unique("ca")
    issued = certs.self_signed("rsa2048", "ca.example")
    await admin.api.create_ok(
        trusted, issued.pem, [env], alias="ca-cert-alias", description="Certificate from truststore"
    )
    await admin.api.create_ok(not_here, pem(), [elsewhere])
    # Another project's certificate in the same environment is not in the truststore.
    await admin.as_user(admin_token, other_project).create_ok(unique("cert"), pem(), [env])

    path = f"/apiops/projects/admin/certificates/truststore/{env}" + ("/" if slash else "")
    r = await client.get(path, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["resultCount"] == len(body["resultList"]) == 1
    (item,) = body["resultList"]
    full = await admin.api.get_one(trusted)
    assert item == {
        "name": trusted,
        "description": "Certificate from truststore",
        "certificateEnvironmentList": full["certificateEnvironmentList"],
    }
    (row,) = item["certificateEnvironmentList"]
    assert row["environmentName"] == env and row["alias"] == "ca-cert-alias"
    assert der_of(row) == issued.der

    assert (await admin.api.delete(trusted)).status_code == 200
    r = await client.get(path, headers=bearer(admin_token))
    assert r.json() == {"success": True, "resultList": [], "resultCount": 0}


async def test_truststore_only_in_the_admin_project(s: Setting) -> None:
    await s.api.create_ok(unique("cert"), pem(), s.envs[:1])
    r = await s.client.get(f"{s.api.base}truststore/{s.envs[0]}/", headers=s.api.headers)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


@pytest.mark.parametrize("reachable", [False, True], ids=["unknown", "other-project-only"])
async def test_truststore_of_an_environment_the_admin_project_can_not_use(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, reachable: bool
) -> None:
    if reachable:
        env = await factory.environment(projects=(await factory.project("admin"),))
    else:
        env = unique("no-such-env")
    r = await client.get(
        f"/apiops/projects/admin/certificates/truststore/{env}/", headers=bearer(admin_token)
    )
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Environment ({env}) is not found or user does not have privilege to access it!"
    )


# --- refused input: exact error, nothing changed -----------------------------------------

Build = Callable[[str, list[str]], list[Part]]


def _with(cert_name: str, envs: list[str], **overrides: Any) -> list[Part]:
    fields: dict[str, Any] = {
        "name": cert_name,
        "environments": envs[:2],
        "pem": pem("ok.example"),
    }
    fields.update(overrides)
    return certificate_parts(**fields)


def _two_certificates() -> bytes:
    return pem("one.example") + pem("two.example")


def _certificate_and_key() -> bytes:
    issued = certs.self_signed("p256", "with-key.example")
    return issued.pem + issued.key_pem


REFUSED: dict[str, tuple[Build, str]] = {
    "empty-file": (lambda n, e: _with(n, e, pem=b""), EMPTY),
    "blank-file": (lambda n, e: _with(n, e, pem=b" \r\n\t\n"), EMPTY),
    "empty-text": (lambda n, e: _with(n, e, pem=b"", pem_as_text=True), EMPTY),
    "garbage": (lambda n, e: _with(n, e, pem=b"this is not a certificate\n"), INVALID),
    "garbage-binary": (lambda n, e: _with(n, e, pem=bytes(range(256))), INVALID),
    "truncated-pem": (lambda n, e: _with(n, e, pem=pem()[:300]), INVALID),
    "csr": (
        lambda n, e: _with(
            n,
            e,
            pem=b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
        ),
        INVALID,
    ),
    "private-key": (
        lambda n, e: _with(n, e, pem=certs.key_pem(certs.key("rsa2048"))),
        PRIVATE_KEY,
    ),
    "two-certificates": (
        lambda n, e: _with(n, e, pem=_two_certificates()),
        "pemEncodedFile must hold exactly one certificate, found 2!",
    ),
    "whole-chain": (
        lambda n, e: _with(n, e, pem=b"".join(c.pem for c in reversed(certs.chain3()))),
        "pemEncodedFile must hold exactly one certificate, found 3!",
    ),
    "certificate-and-key": (lambda n, e: _with(n, e, pem=_certificate_and_key()), PRIVATE_KEY),
    "missing-certificateName": (
        lambda n, e: _with(n, e, name=None),
        "certificateName value can not be empty!",
    ),
    "blank-certificateName": (
        lambda n, e: _with(n, e, name="  "),
        "certificateName value can not be empty!",
    ),
    "missing-alias": (lambda n, e: _with(n, e, alias=None), "alias value can not be empty!"),
    "blank-alias": (lambda n, e: _with(n, e, alias=""), "alias value can not be empty!"),
    "missing-certificateDescription": (
        lambda n, e: _with(n, e, description=None),
        "certificateDescription value can not be empty!",
    ),
    "blank-certificateDescription": (
        lambda n, e: _with(n, e, description=" "),
        "certificateDescription value can not be empty!",
    ),
    "missing-environmentList": (
        lambda n, e: _with(n, e, environments=None),
        "environmentList value can not be empty!",
    ),
    "blank-environmentList": (
        lambda n, e: _with(n, e, environments=" , ,"),
        "environmentList value can not be empty!",
    ),
    "missing-pemEncodedFile": (lambda n, e: _with(n, e, pem=None), EMPTY),
    "unknown-environment": (
        lambda n, e: _with(n, e, environments=[e[0], "no-such-env-x1"]),
        "Environment (no-such-env-x1) is not found or user does not have privilege to access it!",
    ),
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def refusing(client: httpx.AsyncClient, admin_token: str) -> Setting:
    """One project for all the refused creates: none of them may change it."""
    s = await new_setting(client, admin_token, Factory(client, admin_token))
    await s.api.create_ok(unique("existing"), pem(), s.envs)
    return s


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_create_changes_nothing(refusing: Setting, case: str) -> None:
    s = refusing
    build, description = REFUSED[case]
    before = await s.state()
    r = await s.api.post_parts(build(unique("cert"), s.envs))
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(description)
    assert await s.state() == before


@pytest.mark.parametrize(
    ("parts", "unknown"),
    [
        (lambda n, e: [*_with(n, e, pem=None), ("pemFile", pem(), "c.pem")], "pemFile"),
        (lambda n, e: [*_with(n, e, name=None), ("certificatename", n, None)], "certificatename"),
        (lambda n, e: [*_with(n, e), ("environment", e[0], None)], "environment"),
        (lambda n, e: [*_with(n, e), ("description", "x", None)], "description"),
    ],
    ids=["pemFile", "lower-case-name", "extra-field", "description"],
)
async def test_unknown_form_fields_are_refused(s: Setting, parts: Build, unknown: str) -> None:
    before = await s.state()
    r = await s.api.post_parts(parts(unique("cert"), s.envs))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "bad_request"
    assert body["error_description"].startswith(f"Unknown form field(s): {unknown}.")
    assert await s.state() == before


@pytest.mark.parametrize(
    "parts",
    [
        lambda n, e: [*_with(n, e), ("alias", "second", None)],
        lambda n, e: [*_with(n, e), ("pemEncodedFile", pem(), "second.pem")],
        lambda n, e: [*_with(n, e, name=None), ("certificateName", n.encode(), "name.txt")],
        lambda n, e: [*_with(n, e, environments=None), ("environmentList", e[0].encode(), "e")],
    ],
    ids=["alias-twice", "two-files", "name-as-file", "environmentList-as-file"],
)
async def test_malformed_forms_are_refused(s: Setting, parts: Build) -> None:
    before = await s.state()
    r = await s.api.post_parts(parts(unique("cert"), s.envs))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"
    assert await s.state() == before


async def test_environment_of_another_project_is_not_reachable(
    s: Setting, factory: Factory
) -> None:
    theirs = await factory.environment(projects=(await factory.project(),))
    before = await s.state()
    r = await s.api.post_parts(_with(unique("cert"), [s.envs[0], theirs]))
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Environment ({theirs}) is not found or user does not have privilege to access it!"
    )
    assert await s.state() == before


async def test_duplicate_name(s: Setting) -> None:
    name = unique("cert")
    await s.api.create_ok(name, pem(), s.envs[:1])
    before = await s.state()
    r = await s.api.create(name, pem("other.example"), s.envs[1:], alias="another-alias")
    assert r.status_code == 400
    assert r.json() == bad_request(f"Certificate (name: {name}) is already exist!")
    assert await s.state() == before


async def test_duplicate_alias_in_an_environment(s: Setting) -> None:
    await s.api.create_ok(unique("cert"), pem(), s.envs[1:2], alias="my-cert-alias")
    before = await s.state()
    # Free in envs[0], taken in envs[1]: the whole create is refused.
    r = await s.api.create(unique("cert"), pem(), s.envs[:2], alias="my-cert-alias")
    assert r.status_code == 400
    assert r.json() == bad_request(
        "Alias (my-cert-alias) is already used for another certificate, try changing this value!"
    )
    assert await s.state() == before


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_non_multipart_body_is_refused(s: Setting, method: str) -> None:
    name = unique("cert")
    if method == "PUT":
        await s.api.create_ok(name, pem(), s.envs[:1])
    fields = {
        "certificateName": name,
        "alias": "a",
        "certificateDescription": "d",
        "environmentList": s.envs[0],
        "pemEncodedFile": pem().decode(),
    }
    path = s.api.base + (f"{name}/" if method == "PUT" else "")
    before = await s.state()
    for body in ("json", "urlencoded", "none", "text"):
        kwargs: dict[str, Any] = {
            "json": {"json": fields},
            "urlencoded": {"data": fields},
            "none": {},
            "text": {"content": pem(), "headers": {"Content-Type": "text/plain"}},
        }[body]
        headers = {**s.api.headers, **kwargs.pop("headers", {})}
        r = await s.client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "bad_request", body
    assert await s.state() == before


def _padded(size: int) -> bytes:
    """A valid PEM file of exactly ``size`` bytes (text before the block is allowed)."""
    body = pem("padded.example")
    filler = size - len(body) - 1
    return b"#" * filler + b"\n" + body


@pytest.mark.parametrize("as_text", [False, True], ids=["file", "text"])
async def test_upload_limit(s: Setting, as_text: bool) -> None:
    limit = 64 * 1024
    exactly = _padded(limit)
    assert len(exactly) == limit
    name = unique("cert")
    await s.api.create_ok(name, exactly, s.envs[:1], pem_as_text=as_text)

    before = await s.state()
    for size in (limit + 1, 3 * limit, 5 * limit):
        r = await s.api.create(unique("cert"), _padded(size), s.envs[:1], pem_as_text=as_text)
        assert r.status_code == 413, (size, r.text)
        assert r.json()["error"] == "payload_too_large"
        assert r.json()["error_description"]
        r = await s.api.update(name, _padded(size), s.envs[1:], pem_as_text=as_text)
        assert r.status_code == 413, (size, r.text)
        assert r.json()["error"] == "payload_too_large"
    assert await s.state() == before


@pytest.mark.parametrize("operation", ["get", "update", "delete", "export"])
async def test_unknown_certificate(s: Setting, operation: str) -> None:
    name = unique("missing")
    await s.api.create_ok(unique("cert"), pem(), s.envs)
    before = await s.state()
    for slash in ("/", ""):
        path = f"{s.api.base}{name}" + ("/export" if operation == "export" else "") + slash
        if operation == "update":
            parts = certificate_parts(name=None, environments=s.envs, pem=pem())
            body, content_type = multipart(parts)
            r = await s.client.put(path, content=body, headers={**s.api.headers, **content_type})
        else:
            method = "DELETE" if operation == "delete" else "GET"
            r = await s.client.request(method, path, headers=s.api.headers)
        assert r.status_code == 400, (path, r.text)
        assert r.json() == not_found(name)
    assert await s.state() == before


# --- who may do what ---------------------------------------------------------------------


async def _every_operation(
    api: Any, name: str, envs: list[str], fresh: str
) -> dict[str, httpx.Response]:
    return {
        "list": await api.list(),
        "get": await api.get(name),
        "export": await api.export(name),
        "create": await api.create(fresh, pem(), envs, alias="fresh-alias"),
        "update": await api.update(name, pem("new.example"), envs[:1], alias="changed"),
        "delete": await api.delete(name),
        "truststore": await api.client.get(f"{api.base}truststore/{envs[0]}/", headers=api.headers),
    }


async def test_someone_elses_project_does_not_exist_for_the_caller(
    s: Setting, factory: Factory
) -> None:
    name = unique("cert")
    await s.api.create_ok(name, pem(), s.envs)
    outsider = await member(factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES")
    before = await s.state()
    answers = await _every_operation(s.as_user(outsider.token), name, s.envs, unique("cert"))
    for operation, r in answers.items():
        assert r.status_code == 404, (operation, r.text)
        assert r.json() == no_project(s.project), operation
    assert await s.state() == before

    # A project that does not exist at all answers the same.
    missing = unique("no-such-project")
    answers = await _every_operation(
        s.as_user(s.admin_token, missing), name, s.envs, unique("cert")
    )
    for operation, r in answers.items():
        assert r.status_code == 404, (operation, r.text)
        assert r.json() == no_project(missing), operation


async def test_api_security_alone_reads_but_does_not_change(s: Setting, factory: Factory) -> None:
    name = unique("cert")
    await s.api.create_ok(name, pem(), s.envs)
    reader = await member(factory, "ROLE_API_SECURITY", projects=(s.project,))
    before = await s.state()
    answers = await _every_operation(s.as_user(reader.token), name, s.envs, unique("cert"))
    for operation in ("list", "get", "export"):
        assert answers[operation].status_code == 200, (operation, answers[operation].text)
    assert answers["list"].json() == (await s.api.list()).json()
    assert answers["get"].json() == (await s.api.get(name)).json()
    for operation in ("create", "update", "delete"):
        r = answers[operation]
        assert r.status_code == 403, (operation, r.text)
        assert r.json()["error"] == "forbidden"
        assert set(r.json()) == {"error", "error_description"}
    assert await s.state() == before


@pytest.mark.parametrize(
    "roles",
    [(), ("ROLE_MANAGE_PROXIES",), ("ROLE_DEPLOY_UNDEPLOY_PROXIES", "ROLE_MANAGE_PROXIES")],
    ids=["none", "manage-proxies", "deploy-and-manage"],
)
async def test_without_api_security_everything_is_forbidden(
    s: Setting, factory: Factory, roles: tuple[str, ...]
) -> None:
    name = unique("cert")
    await s.api.create_ok(name, pem(), s.envs)
    user = await member(factory, *roles, projects=(s.project,))
    before = await s.state()
    answers = await _every_operation(s.as_user(user.token), name, s.envs, unique("cert"))
    for operation, r in answers.items():
        assert r.status_code == 403, (operation, r.text)
        assert r.json()["error"] == "forbidden", operation
    assert await s.state() == before


async def test_without_a_token(s: Setting) -> None:
    name = unique("cert")
    await s.api.create_ok(name, pem(), s.envs)
    before = await s.state()
    for r in (
        await s.client.get(s.api.base),
        await s.client.get(f"{s.api.base}{name}/export/"),
        await s.client.delete(f"{s.api.base}{name}/"),
        await s.as_user("no-such-token").create(unique("cert"), pem(), s.envs),
    ):
        assert r.status_code == 401, r.text
        assert r.json() == {"error": "unauthorized_client", "error_description": "Invalid token"}
    assert await s.state() == before


async def test_export_and_get_carry_the_same_bytes(s: Setting) -> None:
    name = unique("cert")
    issued = certs.self_signed("ed25519", "bytes.example")
    await s.api.create_ok(name, issued.pem, s.envs[:1])
    (row,) = (await s.api.get_one(name))["certificateEnvironmentList"]
    with zipfile.ZipFile(io.BytesIO((await s.api.export(name)).content)) as archive:
        (member,) = archive.namelist()
        assert base64.b64encode(archive.read(member)).decode() == row["base64EncodedContent"]


async def test_many_repeated_environment_fields(s: Setting, factory: Factory) -> None:
    envs = [await factory.environment(projects=(s.project,)) for _ in range(25)]
    name = unique("cert")
    r = await s.api.create(name, pem(), envs, repeat_environments=True)
    assert r.status_code == 200, r.text
    assert r.json() == deployed_ok(envs)
    item = await s.api.get_one(name)
    assert [row["environmentName"] for row in item["certificateEnvironmentList"]] == envs


async def test_certificate_whose_environment_was_deleted(s: Setting) -> None:
    name = unique("cert")
    issued = certs.self_signed("p256", "orphan.example")
    await s.api.create_ok(name, issued.pem, [s.envs[0], s.envs[1]])
    await delete_environment(s.client, s.admin_token, s.envs[0])

    (row,) = (await s.api.get_one(name))["certificateEnvironmentList"]
    assert row["environmentName"] == s.envs[1]
    listed = {c["name"]: c for c in (await s.api.list()).json()["resultList"]}
    assert [r["environmentName"] for r in listed[name]["certificateEnvironmentList"]] == [s.envs[1]]
    with zipfile.ZipFile(io.BytesIO((await s.api.export(name)).content)) as archive:
        assert archive.namelist() == [f"{name}-{s.envs[1]}.cer"]
    r = await s.api.update(name, issued.pem, [s.envs[2]], alias="moved")
    assert r.status_code == 200, r.text
    assert {e["environmentName"] for e in r.json()["deploymentResult"]["environmentResults"]} == {
        s.envs[1],
        s.envs[2],
    }
    r = await s.api.delete(name)
    assert r.status_code == 200, r.text
    assert r.json() == undeployed_ok([s.envs[2]])

    # The last environment gone too: an empty list, an empty archive, a clean delete.
    other = unique("cert")
    await s.api.create_ok(other, issued.pem, [s.envs[1]])
    await delete_environment(s.client, s.admin_token, s.envs[1])
    assert (await s.api.get_one(other))["certificateEnvironmentList"] == []
    r = await s.api.export(other)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.namelist() == []
    r = await s.api.delete(other)
    assert r.status_code == 200, r.text
    assert r.json() == undeployed_ok([])
