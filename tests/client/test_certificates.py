"""Certificates through the sync client against a real server: every call, the seed."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from keyops.client import BadRequest, Certificate, Change, Client
from tests.client.conftest import PROJECT, material, unique

ENVS = ["production", "staging"]


def envs_of(change: Change) -> dict[str, bool]:
    return {r.environment_name: r.success for r in change.deployment_result.environment_results}


def test_create_list_get_export_delete(kc: Client) -> None:
    name, m = unique("cert"), material("client-cert")
    change = kc.certificates.create(PROJECT, name, pem=m.pem, environments=ENVS, alias=name)
    assert change.success and change.deployment_result.success
    assert envs_of(change) == {"production": True, "staging": True}
    assert change.failed == []

    listed = kc.certificates.list(PROJECT, name=name)
    assert listed.result_count == 1 and [c.name for c in listed.result_list] == [name]
    # A list leaves the content out (decision 9); a get has it.
    assert all(
        e.base64_encoded_content is None for e in listed.result_list[0].certificate_environment_list
    )

    got = kc.certificates.get(PROJECT, name)
    assert isinstance(got, Certificate) and got.description == name
    by_env = {e.environment_name: e for e in got.certificate_environment_list}
    assert set(by_env) == set(ENVS)
    prod = by_env["production"]
    assert base64.b64decode(prod.base64_encoded_content or "") == m.issued.der
    assert prod.subject_dn == "CN=client-cert" and prod.alias == name
    sha1 = m.issued.cert.fingerprint(hashes.SHA1())  # noqa: S303 - the contract's thumbprint
    assert prod.sha1_thumbprint == sha1.hex().upper()

    archive = zipfile.ZipFile(io.BytesIO(kc.certificates.export(PROJECT, name)))
    assert sorted(archive.namelist()) == sorted(f"{name}-{e}.cer" for e in ENVS)
    assert archive.read(f"{name}-staging.cer") == m.issued.der

    paged = kc.certificates.list(PROJECT, page=0, size=1, sort="name")
    assert paged.page == 0 and paged.size == 1 and paged.result_count == 1
    assert paged.total_count is not None and paged.total_count >= 1

    deleted = kc.certificates.delete(PROJECT, name)
    assert envs_of(deleted) == {"production": True, "staging": True}
    with pytest.raises(BadRequest) as caught:
        kc.certificates.get(PROJECT, name)
    assert caught.value.error_description == f"Certificate (name: {name}) is not found!"


def test_seed_update_rederives_jwks_and_undeploys_dropped_environment(kc: Client) -> None:
    name, jwk_name = unique("seed"), unique("seed-jwk")
    old, new = material("seed-old"), material("seed-new")
    kc.certificates.create(
        PROJECT, name, pem=old.pem, environments=[*ENVS, "development"], alias=name
    )
    kc.jwks.parse_from_certificate(
        PROJECT, jwk_name, name, "production", use_type="SIGNATURE", algorithm="ES256"
    )
    before = kc.jwks.get(PROJECT, jwk_name).jwk or {}

    change = kc.certificates.update(
        PROJECT,
        name,
        pem=new.pem.decode(),
        environments=ENVS,
        alias="updated-cert-alias",
        description="Updated SSL certificate",
        update_referenced_jwks=True,
        update_scope="SAME_PROJECT",
    )
    # Dropped from the list: undeployed, and its result is in environmentResults (decision
    # 6). The re-derived JWK goes to every environment of the project.
    everywhere = {e.name for e in kc.environments.for_project(PROJECT).result_list}
    assert {"production", "staging", "development"} <= everywhere
    assert envs_of(change) == dict.fromkeys(everywhere, True)
    assert change.result_for("development").success
    with pytest.raises(KeyError):
        change.result_for("nowhere")
    held = {
        env: {(a.kind, a.name) for a in kc.deployments.get(env).result_list}
        for env in ("production", "development")
    }
    assert ("certificate", name) in held["production"]
    assert ("certificate", name) not in held["development"]

    got = kc.certificates.get(PROJECT, name)
    assert {e.environment_name for e in got.certificate_environment_list} == set(ENVS)
    assert {e.alias for e in got.certificate_environment_list} == {"updated-cert-alias"}
    assert got.description == "Updated SSL certificate"
    der = base64.b64decode(got.certificate_environment_list[0].base64_encoded_content or "")
    assert x509.load_der_x509_certificate(der) == new.issued.cert

    after = kc.jwks.get(PROJECT, jwk_name)
    assert after.source_type == "CERTIFICATE" and after.source_id == name
    assert after.jwk is not None and after.jwk["x"] != before["x"]
    new_numbers = new.issued.key.public_key().public_numbers()  # type: ignore[union-attr]
    x = base64.urlsafe_b64decode(after.jwk["x"] + "==")
    assert int.from_bytes(x, "big") == new_numbers.x
    # The answer says what happened to the JWK (issue 15, item 8).
    (followed,) = change.jwk_results
    assert (followed.project_name, followed.name, followed.action) == (PROJECT, jwk_name, "UPDATED")
    assert followed.old_kid == before.get("kid") and followed.new_kid == after.jwk.get("kid")


def test_update_refusals_carry_the_contract_text(kc: Client) -> None:
    name, m = unique("refuse"), material("refuse")
    kc.certificates.create(PROJECT, name, pem=m.pem, environments=ENVS)
    with pytest.raises(BadRequest) as caught:
        kc.certificates.update(
            PROJECT, name, pem=m.pem, environments=ENVS, jwk_update_action="UPDATE"
        )
    assert (caught.value.status, caught.value.error) == (400, "bad_request")
    assert caught.value.error_description == "updateScope value can not be empty!"
    with pytest.raises(BadRequest) as caught:
        kc.certificates.update(PROJECT, name, pem=b"", environments=ENVS)
    assert caught.value.error_description == "pemEncodedFile value can not be empty!"
    with pytest.raises(BadRequest) as caught:
        kc.certificates.create(PROJECT, name, pem=m.pem, environments=ENVS)
    assert caught.value.error_description == f"Certificate (name: {name}) is already exist!"
    with pytest.raises(TypeError):
        kc.certificates.create(PROJECT, unique("x"), pem=m.pem, environments="production")
    # Nothing changed: still the first upload, in both environments.
    got = kc.certificates.get(PROJECT, name)
    assert {e.environment_name for e in got.certificate_environment_list} == set(ENVS)


def test_versions_and_rollback(kc: Client) -> None:
    name, first, second = unique("hist"), material("first"), material("second")
    kc.certificates.create(PROJECT, name, pem=first.pem, environments=ENVS)
    kc.certificates.update(PROJECT, name, pem=second.pem, environments=["production"])
    versions = kc.certificates.versions(PROJECT, name)
    assert versions.result_count == 1
    (kept,) = versions.result_list
    assert kept.version == 1 and kept.reason == "REPLACED" and kept.created_by == "admin"
    assert {e.environment_name for e in kept.environment_list} == set(ENVS)
    assert {e.subject_dn for e in kept.environment_list} == {"CN=first"}

    back = kc.certificates.rollback(PROJECT, name, 1)
    assert envs_of(back) == {"production": True, "staging": True}
    got = kc.certificates.get(PROJECT, name)
    assert {e.subject_dn for e in got.certificate_environment_list} == {"CN=first"}
    with pytest.raises(BadRequest):
        kc.certificates.rollback(PROJECT, name, 99)


def test_truststore_of_the_admin_project(kc: Client) -> None:
    name, m = unique("trust"), material("trusted")
    kc.certificates.create("admin", name, pem=m.pem, environments=["production"])
    trusted = kc.certificates.truststore("production")
    assert name in [c.name for c in trusted.result_list]
    with pytest.raises(BadRequest) as caught:
        kc.certificates.truststore("production", project=PROJECT)
    assert caught.value.error_description == (
        "Truststore certificates are only available in the admin project!"
    )
