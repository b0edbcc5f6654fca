"""keyops.yaml planned and applied against a real server: every kind created, idempotent,
one edit is one replacement (its JWK re-derived when the file says so), --prune, and a
dump applied to a fresh server reproduces the state."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyops.client import Client
from keyops.crypto.jwk import key_thumbprint
from keyops.declarative import SpecError, apply, dump, load, plan
from tests.declarative.conftest import (
    ADMIN_PASSWORD,
    Material,
    Setting,
    material,
    new_setting,
    private_pem,
    public_pem,
    start,
)
from tests.support.server import password_token


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "certs").mkdir()
    return tmp_path


def write_spec(
    directory: Path,
    s: Setting,
    cert: Material,
    key: Material,
    store: Material,
    *,
    cert_update_jwks: str = "same-project",
    drop_keystore: bool = False,
) -> Path:
    """A keyops.yaml with one of each kind and a JWK from each source."""
    (directory / "certs" / "signer.pem").write_bytes(cert.pem)
    (directory / "tls.p12").write_bytes(store.p12)
    env0 = s.envs[0]
    project: dict[str, Any] = {
        "certificates": {
            "signer-cert": {
                "file": "certs/signer.pem",
                "environments": list(s.envs),
                "update_jwks": cert_update_jwks,
            }
        },
        "keys": {
            "api-key": {
                "type": "EC",
                "public_key": public_pem(key),
                "private_key": {"env": "TEST_API_KEY_PRIVATE"},
                "environments": [env0],
                "description": "the API signing key",
            }
        },
        "keystores": {
            "tls": {
                "file": "tls.p12",
                "password": {"env": "TEST_TLS_PASSWORD"},
                "environments": list(s.envs),
            }
        },
        "jwks": {
            "cert-jwk": {
                "from": {"certificate": "signer-cert", "environment": env0},
                "use": "SIGNATURE",
                "alg": "ES256",
            },
            "key-jwk": {"from": {"key": "api-key", "environment": env0}, "alg": "ES256"},
            "tls-jwk": {
                "from": {"keystore": "tls", "alias": "signer", "environment": env0},
                "alg": "ES256",
                "kid": f"tls-{s.project}",
            },
        },
    }
    if drop_keystore:
        del project["keystores"], project["jwks"]["tls-jwk"]
    path = directory / "keyops.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "projects": {s.project: project}}))
    return path


@pytest.fixture
def mats(monkeypatch: pytest.MonkeyPatch) -> tuple[Material, Material, Material]:
    """The certificate, key and keystore of the file; variables hold their secrets."""
    cert, key, store = material("signer.example"), material("api-key"), material("tls")
    monkeypatch.setenv("TEST_API_KEY_PRIVATE", private_pem(key))
    monkeypatch.setenv("TEST_TLS_PASSWORD", store.password)
    return cert, key, store


def ops(p: Any) -> list[tuple[str, str, str]]:
    return [(a.op, a.kind, a.name) for a in p.changes]


def test_every_kind_is_created_and_a_second_apply_plans_nothing(
    kc: Client, setting: Setting, files: Path, mats: tuple[Material, Material, Material]
) -> None:
    path = write_spec(files, setting, *mats)
    desired = load(path)
    first = plan(kc, desired)
    assert sorted(ops(first)) == sorted(
        [
            ("create", "certificate", "signer-cert"),
            ("create", "key", "api-key"),
            ("create", "keystore", "tls"),
            ("create", "jwk", "cert-jwk"),
            ("create", "jwk", "key-jwk"),
            ("create", "jwk", "tls-jwk"),
        ]
    )
    # Dependency order: every JWK after the certificate, key and keystore.
    kinds = [a.kind for a in first.steps()]
    assert kinds == ["certificate", "key", "keystore", "jwk", "jwk", "jwk"]

    result = apply(kc, first)
    assert result.error is None and not result.failed_environments
    p = setting.project
    cert = kc.certificates.get(p, "signer-cert")
    assert {e.environment_name for e in cert.certificate_environment_list} == set(setting.envs)
    assert kc.keys.get(p, "api-key").description == "the API signing key"
    assert kc.keystores.get(p, "tls").key_store_environment_list[0].entries
    jwks = {j.name: j for j in kc.jwks.list(p).result_list}
    assert set(jwks) == {"cert-jwk", "key-jwk", "tls-jwk"}
    assert jwks["tls-jwk"].kid == f"tls-{p}"
    assert jwks["tls-jwk"].source_alias == "signer"
    assert jwks["cert-jwk"].source_environment == setting.envs[0]

    second = plan(kc, load(path))
    assert not second.pending, ops(second)
    assert second.count("unchanged") == 6


def test_an_edit_plans_one_replacement_and_rederives_its_jwk(
    kc: Client, setting: Setting, files: Path, mats: tuple[Material, Material, Material]
) -> None:
    cert, key, store = mats
    path = write_spec(files, setting, cert, key, store)
    apply(kc, plan(kc, load(path)))
    p = setting.project
    before = kc.jwks.get(p, "cert-jwk")

    renewed = material("signer.example")
    path = write_spec(files, setting, renewed, key, store)
    edited = plan(kc, load(path))
    assert ops(edited) == [("replace", "certificate", "signer-cert")]
    (follows,) = [a for a in edited.actions if a.name == "cert-jwk"]
    assert follows.op == "unchanged" and "re-derived" in follows.reason

    result = apply(kc, edited)
    assert result.error is None
    assert result.outcomes[0].jwk_results == (f"UPDATED {p}/cert-jwk",)
    after = kc.jwks.get(p, "cert-jwk")
    assert after.source_id == "signer-cert"
    assert after.jwk is not None and before.jwk is not None
    assert key_thumbprint(after.jwk) != key_thumbprint(before.jwk)
    assert not plan(kc, load(path)).pending

    # Without update_jwks the update detaches the JWK: the plan makes it anew.
    again = material("signer.example")
    path = write_spec(files, setting, again, key, store, cert_update_jwks="no")
    detaching = plan(kc, load(path))
    assert ops(detaching) == [
        ("replace", "certificate", "signer-cert"),
        ("replace", "jwk", "cert-jwk"),
    ]
    assert apply(kc, detaching).error is None
    assert not plan(kc, load(path)).pending
    assert kc.jwks.get(p, "cert-jwk").source_id == "signer-cert"


def test_prune_deletes_what_the_file_dropped(
    kc: Client, setting: Setting, files: Path, mats: tuple[Material, Material, Material]
) -> None:
    path = write_spec(files, setting, *mats)
    apply(kc, plan(kc, load(path)))
    path = write_spec(files, setting, *mats, drop_keystore=True)

    assert not plan(kc, load(path)).pending  # without --prune, what is left alone stays
    pruning = plan(kc, load(path), prune=True)
    assert ops(pruning) == [("delete", "keystore", "tls"), ("delete", "jwk", "tls-jwk")]
    assert [a.kind for a in pruning.steps()] == ["jwk", "keystore"]  # reverse order
    assert apply(kc, pruning).error is None
    p = setting.project
    assert [k.name for k in kc.keystores.list(p).result_list] == []
    assert {j.name for j in kc.jwks.list(p).result_list} == {"cert-jwk", "key-jwk"}
    assert not plan(kc, load(path), prune=True).pending


def test_prune_leaves_jwks_a_file_can_not_describe(
    kc: Client, setting: Setting, files: Path, mats: tuple[Material, Material, Material]
) -> None:
    """A generated JWK (or one from a URL, pasted, detached) is not written by dump and
    can not be made by apply: --prune must not delete it, and says it kept it."""
    path = write_spec(files, setting, *mats)
    apply(kc, plan(kc, load(path)))
    p = setting.project
    kc.jwks.generate(p, "made-here", "EC", options={"curveType": "P256", "algorithm": "ES256"})
    pruning = plan(kc, load(path), prune=True)
    assert not pruning.pending
    (kept,) = [a for a in pruning.actions if a.name == "made-here"]
    assert kept.op == "unchanged"
    assert kept.reason == "kept: not described by a keyops.yaml (sourceType GENERATE)"
    assert apply(kc, pruning).error is None
    assert "made-here" in {j.name for j in kc.jwks.list(p).result_list}


def _state(kc: Client, project: str) -> dict[str, Any]:
    """What a project holds, by content: fingerprints and the JWKs' keys."""
    certs = {
        c.name: sorted(
            (
                e.environment_name,
                e.alias,
                hashlib.sha256(base64.b64decode(e.base64_encoded_content or "")).hexdigest(),
            )
            for e in kc.certificates.get(project, c.name).certificate_environment_list
        )
        for c in kc.certificates.list(project).result_list
    }
    keys = {
        k.name: (
            k.key_type,
            k.description,
            sorted(
                (e.environment_name, e.public_key, e.private_key)
                for e in k.crypto_key_info_environment_list
            ),
        )
        for k in kc.keys.list(project).result_list
    }
    stores = {
        s.name: sorted((e.environment_name, e.type, e.file) for e in s.key_store_environment_list)
        for s in kc.keystores.list(project).result_list
    }
    jwks = {}
    for j in kc.jwks.list(project).result_list:
        got = kc.jwks.get(project, j.name)
        assert got.jwk is not None
        jwks[j.name] = (
            got.source_type,
            got.source_id,
            got.source_environment,
            got.source_alias,
            got.use_type,
            got.algorithm,
            got.kid,
            key_thumbprint(got.jwk),
        )
    return {"certificates": certs, "keys": keys, "keystores": stores, "jwks": jwks}


def test_dump_then_apply_on_a_fresh_server_reproduces_the_state(
    kc: Client,
    files: Path,
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    mats: tuple[Material, Material, Material],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = new_setting(kc)
    path = write_spec(files, s, *mats)
    apply(kc, plan(kc, load(path)))
    original = _state(kc, s.project)

    out = tmp_path_factory.mktemp("dump")
    text = dump(kc, [s.project], secrets="file", directory=out)
    assert "BEGIN CERTIFICATE" in text and "BEGIN PUBLIC KEY" in text
    assert "PRIVATE KEY-----" not in text  # secrets are files, not inline
    password_var = f"KEYOPS_{s.project.upper().replace('-', '_')}_TLS_PASSWORD"
    assert f"env: {password_var}" in text
    (out / "keyops.yaml").write_text(text)
    key_file = next((out / "secrets").rglob("*.key.pem"))
    assert key_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv(password_var, mats[2].password)

    # The dump describes the server it came from exactly.
    assert not plan(kc, load(out / "keyops.yaml")).pending

    for fresh in start(backend, tmp_path_factory.mktemp(f"fresh-{backend}")):
        token = password_token(fresh.base_url, "admin", ADMIN_PASSWORD)
        with Client(fresh.base_url, token) as other:
            new_setting(other, project=s.project, envs=2, names=s.envs)
            restored = load(out / "keyops.yaml")
            first = plan(other, restored)
            assert first.count("create") == 6
            assert apply(other, first).error is None
            assert not plan(other, restored).pending
            assert _state(other, s.project) == original


def test_a_jwk_detached_behind_the_files_back_is_made_anew(
    kc: Client, setting: Setting, files: Path, mats: tuple[Material, Material, Material]
) -> None:
    path = write_spec(files, setting, *mats)
    apply(kc, plan(kc, load(path)))
    p = setting.project
    # Someone updates the certificate by hand, with the server's default (detach).
    kc.certificates.update(p, "signer-cert", pem=mats[0].pem, environments=list(setting.envs))
    listed = {j.name: j for j in kc.jwks.list(p).result_list}
    assert listed["cert-jwk"].source_id is None
    assert listed["cert-jwk"].source_environment == setting.envs[0]  # kept: where it came from
    drift = plan(kc, load(path))
    assert ops(drift) == [("replace", "jwk", "cert-jwk")]
    assert "detached" in drift.changes[0].current
    assert apply(kc, drift).error is None
    assert not plan(kc, load(path)).pending


def test_project_limits_the_plan_to_one_project_of_the_file(
    kc: Client, setting: Setting, files: Path, mats: tuple[Material, Material, Material]
) -> None:
    path = write_spec(files, setting, *mats)
    assert plan(kc, load(path), project=setting.project).count("create") == 6
    with pytest.raises(SpecError, match="project elsewhere is not in the file"):
        plan(kc, load(path), project="elsewhere")
