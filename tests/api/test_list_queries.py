"""Issue 9: every list reads its rows in a constant number of statements.

A list endpoint loads its rows, their environment names and whatever else it shows with
the same number of statements at 10 rows as at 1,000, and never selects blobs it does
not show (a certificate's DER, a keystore's sealed passwords). The statements are counted
with a ``before_cursor_execute`` listener on the app's own engine during the one GET.

The first 10 resources of each kind are made through the API, each deployed to two
environments; the other 990 are copies of those rows (real DER, material sealed under
the app's master key) inserted straight into the database with keyops' models, because
990 API creates per kind take close to a minute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from fastapi import FastAPI
from sqlalchemy import create_engine, delete, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, selectinload

from keyops.config import Settings
from keyops.storage.models import (
    Base,
    Certificate,
    CryptoKey,
    Environment,
    EnvironmentProject,
    Jwk,
    Keystore,
    Project,
    ProjectMember,
    User,
    UserRole,
)
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import CertificateClient, Setting, new_setting
from tests.support.keysecrets import b64, key_body, key_entry
from tests.support.statements import listening, recording

SMALL = 10
LARGE = 1000
KEYSTORE_PASSWORD = "list-queries-pw"
KEYSTORE_ALIAS = "signer"

# Blobs a list does not show, as they appear in a statement: SQLAlchemy qualifies every
# column with its table or the table's alias (``certificate_environments_1.der``).
M = TypeVar("M", bound=Base)

DER = r"\bder\b"  # no other table has a column of that name


def column(table: str, name: str) -> str:
    return rf"\b{table}(?:_\d+)?\.{name}\b"


KEYSTORE_PASSWORDS = (
    column("keystore_environments", "password_sealed"),
    column("keystore_environments", "key_password_sealed"),
)
# A JWK list shows each JWK's source by name only, never the source's material.
SOURCE_MATERIAL = (
    DER,
    column("crypto_key_environments", "public_der"),
    column("crypto_key_environments", "private_sealed"),
    column("keystore_environments", "file_sealed"),
    *KEYSTORE_PASSWORDS,
)


# --- counting statements ------------------------------------------------------------------


@dataclass
class StatementLog:
    """The statements sent on behalf of the requests made while ``capture`` is open
    (never a background loop's; see tests/support/statements.py)."""

    statements: list[str] = field(default_factory=list)

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        with recording() as seen:
            self.statements = seen
            yield seen


@contextmanager
def statement_log(app: FastAPI) -> Iterator[StatementLog]:
    """Statements of the app's engines, with the list cache off: what is counted is what
    building a list costs."""
    lists = app.state.keyops.lists
    kept, lists.max_bytes = lists.max_bytes, 0
    try:
        with listening(app.state.db):
            yield StatementLog()
    finally:
        lists.max_bytes = kept


@dataclass
class Measured:
    statements: list[str] = field(repr=False)
    body: dict[str, Any] = field(repr=False)

    @property
    def count(self) -> int:
        return len(self.statements)

    def selecting(self, patterns: Sequence[str]) -> list[str]:
        """The hidden columns each statement selects, one line per statement that does."""
        found = []
        for statement in self.statements:
            hits = sorted({m.group(0) for p in patterns for m in re.finditer(p, statement)})
            if hits:
                found.append(f"{', '.join(hits)} in {statement}")
        return found


async def measure(client: httpx.AsyncClient, log: StatementLog, path: str, token: str) -> Measured:
    with log.capture() as statements:
        r = await client.get(path, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert statements, f"GET {path}: no statement was recorded"  # or every count is 0
    body: dict[str, Any] = r.json()
    assert body["resultCount"] == len(body["resultList"]), body["resultCount"]
    return Measured(list(statements), body)


def names(measured: Measured, key: str = "name") -> set[str]:
    return {item[key] for item in measured.body["resultList"]}


def show(statements: Sequence[str]) -> str:
    """The distinct statements with how often each ran, most frequent first."""
    counts: dict[str, int] = {}
    for s in statements:
        one_line = " ".join(s.split())
        counts[one_line] = counts.get(one_line, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return "\n".join(f"  {n:5d} x {s[:240]}" for s, n in ranked)


def constant_problem(path: str, small: Measured, large: Measured) -> list[str]:
    if small.count == large.count:
        return []
    return [
        f"GET {path}: {small.count} statements at {SMALL} rows, {large.count} at {LARGE}:\n"
        f"{show(large.statements)}"
    ]


def hidden_problem(path: str, measured: Measured, patterns: Sequence[str]) -> list[str]:
    found = measured.selecting(patterns)
    if not found:
        return []
    return [
        f"GET {path} at {measured.body['resultCount']} rows selects material it does not show"
        f" ({len(found)} statements):\n{show(found)}"
    ]


# --- writing rows straight into the database ------------------------------------------------


@contextmanager
def direct_session(settings: Settings) -> Iterator[Session]:
    """A synchronous session of its own on the app's database; commits on success."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


async def in_database(settings: Settings, work: Callable[[Session], Any]) -> Any:
    """Run ``work`` in a transaction of its own, off the event loop."""

    def run() -> Any:
        with direct_session(settings) as session:
            return work(session)

    return await anyio.to_thread.run_sync(run)


def copy_of(row: M, *, drop: Sequence[str] = (), **changes: Any) -> M:
    """A new, unsaved row with every column of ``row`` but its id, ``drop`` and ``changes``."""
    mapper = sa_inspect(row).mapper
    values = {
        a.key: getattr(row, a.key)
        for a in mapper.column_attrs
        if a.key != "id" and a.key not in drop
    }
    values.update(changes)
    return type(row)(**values)


def certificate_copy(cert: Certificate, name: str) -> Certificate:
    return copy_of(
        cert,
        name=name,
        environments=[
            copy_of(row, drop=("certificate_id",), alias=f"{name}-alias")
            for row in cert.environments
        ],
    )


def key_copy(key: CryptoKey, name: str) -> CryptoKey:
    return copy_of(
        key, name=name, environments=[copy_of(r, drop=("key_id",)) for r in key.environments]
    )


def keystore_copy(store: Keystore, name: str) -> Keystore:
    return copy_of(
        store,
        name=name,
        environments=[copy_of(r, drop=("keystore_id",)) for r in store.environments],
    )


def templates(session: Session, model: type[M], project_id: int) -> list[M]:
    """The project's rows of ``model`` with their environment rows, in id order."""
    stmt = select(model).where(model.project_id == project_id).order_by(model.id)  # type: ignore[attr-defined]
    if hasattr(model, "environments"):
        stmt = stmt.options(selectinload(model.environments))  # type: ignore[attr-defined]
    return list(session.scalars(stmt))


def project_id(session: Session, name: str) -> int:
    return session.scalars(select(Project.id).where(Project.name == name)).one()


# --- the four kinds of per-project resources ------------------------------------------------


@dataclass
class Material:
    """One certificate, key and keystore shared by every resource made through the API."""

    issued: certs.Issued
    keystore: bytes


@pytest.fixture(scope="module")
def material() -> Material:
    issued = certs.self_signed("p256", "list-queries.example")
    store = pkcs12.serialize_key_and_certificates(
        KEYSTORE_ALIAS.encode(),
        issued.key,  # type: ignore[arg-type]
        issued.cert,
        None,
        BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
    )
    return Material(issued, store)


@dataclass
class Resources:
    """Makes resources of one project through the API."""

    s: Setting
    material: Material

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.s.admin_token)

    def path(self, kind: str) -> str:
        return f"/apiops/projects/{self.s.project}/{kind}/"

    async def post(self, kind: str, body: dict[str, Any]) -> None:
        r = await self.s.client.post(self.path(kind), json=body, headers=self.headers)
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True

    async def certificate(self, name: str) -> None:
        api = CertificateClient(self.s.client, self.s.admin_token, self.s.project)
        await api.create_ok(name, self.material.issued.pem, self.s.envs, alias=f"{name}-alias")

    async def key(self, name: str) -> None:
        entries = [key_entry(env, self.material.issued.key) for env in self.s.envs]
        await self.post("keys", key_body(name, "EC", entries))

    async def keystore(self, name: str) -> None:
        entries = [
            {
                "environmentName": env,
                "type": "PKCS12",
                "file": b64(self.material.keystore),
                "password": KEYSTORE_PASSWORD,
            }
            for env in self.s.envs
        ]
        await self.post(
            "keystores",
            {"name": name, "description": "a keystore", "keyStoreEnvironmentList": entries},
        )

    async def jwk(self, name: str, i: int) -> None:
        """A JWK derived from a source of its own: a certificate, a key or a keystore."""
        source = f"{name}-source"
        body: dict[str, Any] = {"name": name, "environmentName": self.s.envs[0]}
        if i % 3 == 0:
            await self.certificate(source)
            body.update(sourceType="CERTIFICATE", certificateName=source)
        elif i % 3 == 1:
            await self.key(source)
            body.update(sourceType="PUBLIC_KEY", keyName=source)
        else:
            await self.keystore(source)
            body.update(sourceType="KEYSTORE", keyStoreName=source, aliasName=KEYSTORE_ALIAS)
        body.update(useType="SIGNATURE", algorithm="ES256")
        await self.post("jwks", body)


def bulk_certificates(session: Session, project: str, count: int) -> list[str]:
    pid = project_id(session, project)
    made = templates(session, Certificate, pid)
    names = [f"bulk-cert-{i}" for i in range(count)]
    session.add_all(certificate_copy(made[i % len(made)], n) for i, n in enumerate(names))
    return names


def bulk_keys(session: Session, project: str, count: int) -> list[str]:
    made = templates(session, CryptoKey, project_id(session, project))
    names = [f"bulk-key-{i}" for i in range(count)]
    session.add_all(key_copy(made[i % len(made)], n) for i, n in enumerate(names))
    return names


def bulk_keystores(session: Session, project: str, count: int) -> list[str]:
    made = templates(session, Keystore, project_id(session, project))
    names = [f"bulk-keystore-{i}" for i in range(count)]
    session.add_all(keystore_copy(made[i % len(made)], n) for i, n in enumerate(names))
    return names


def bulk_jwks(session: Session, project: str, count: int) -> list[str]:
    """JWKs copied from the API-made ones, each with a copy of its template's source."""
    pid = project_id(session, project)
    jwks = templates(session, Jwk, pid)
    certificates = {c.id: c for c in templates(session, Certificate, pid)}
    keys = {k.id: k for k in templates(session, CryptoKey, pid)}
    stores = {k.id: k for k in templates(session, Keystore, pid)}
    pairs: list[tuple[Jwk, str, Certificate | CryptoKey | Keystore]] = []
    for i in range(count):
        template, name = jwks[i % len(jwks)], f"bulk-jwk-{i}"
        source: Certificate | CryptoKey | Keystore
        if template.source_certificate_id is not None:
            source = certificate_copy(
                certificates[template.source_certificate_id], f"{name}-source"
            )
        elif template.source_key_id is not None:
            source = key_copy(keys[template.source_key_id], f"{name}-source")
        else:
            assert template.source_keystore_id is not None
            source = keystore_copy(stores[template.source_keystore_id], f"{name}-source")
        pairs.append((template, name, source))
    session.add_all(source for _, _, source in pairs)
    session.flush()
    for template, name, source in pairs:
        link = {
            Certificate: "source_certificate_id",
            CryptoKey: "source_key_id",
            Keystore: "source_keystore_id",
        }[type(source)]
        changes: dict[str, Any] = {"name": name, link: source.id}
        session.add(copy_of(template, **changes))
    return [name for _, name, _ in pairs]


@dataclass(frozen=True)
class Kind:
    path: str
    make: Callable[[Resources, str, int], Any]
    bulk: Callable[[Session, str, int], list[str]]
    hidden: tuple[str, ...]
    environments: bool = True


async def _certificate(r: Resources, name: str, _i: int) -> None:
    await r.certificate(name)


async def _key(r: Resources, name: str, _i: int) -> None:
    await r.key(name)


async def _keystore(r: Resources, name: str, _i: int) -> None:
    await r.keystore(name)


async def _jwk(r: Resources, name: str, i: int) -> None:
    await r.jwk(name, i)


KINDS = {
    # The list shows a certificate's dates, thumbprint, subject and alias, not its content.
    "certificates": Kind("certificates", _certificate, bulk_certificates, (DER,)),
    # The key list shows public and private material: nothing is hidden from it.
    "keys": Kind("keys", _key, bulk_keys, ()),
    # The keystore list shows the file and its entries; the passwords are write-only.
    "keystores": Kind("keystores", _keystore, bulk_keystores, KEYSTORE_PASSWORDS),
    "jwks": Kind("jwks", _jwk, bulk_jwks, SOURCE_MATERIAL, environments=False),
}


ENVIRONMENT_LISTS = {
    "certificates": "certificateEnvironmentList",
    "keys": "cryptoKeyInfoEnvironmentList",
    "keystores": "keyStoreEnvironmentList",
}


@pytest.mark.parametrize("kind", list(KINDS))
async def test_project_list_reads_in_constant_statements(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_token: str,
    factory: Factory,
    settings: Settings,
    material: Material,
    kind: str,
) -> None:
    """10 and then 1,000 resources in a fresh project: the list's statement count is the
    same, the list shows every one (with both environments), and no statement selects a
    blob the list does not show."""
    spec = KINDS[kind]
    s = await new_setting(client, admin_token, factory, envs=2)
    resources = Resources(s, material)
    path = resources.path(spec.path)
    expected = [f"{kind}-{i}" for i in range(SMALL)]
    for i, name in enumerate(expected):
        await spec.make(resources, name, i)

    with statement_log(app) as log:
        await measure(client, log, path, admin_token)  # warm-up: caches, prepared plans
        small = await measure(client, log, path, admin_token)
        expected += await in_database(
            settings, lambda session: spec.bulk(session, s.project, LARGE - SMALL)
        )
        large = await measure(client, log, path, admin_token)

    assert names(small) == set(expected[:SMALL])
    assert large.body["resultCount"] == LARGE
    assert names(large) == set(expected)
    items = large.body["resultList"]
    if spec.environments:
        shown = (item[ENVIRONMENT_LISTS[kind]] for item in items)
        assert all([e["environmentName"] for e in envs] == s.envs for envs in shown)
    else:
        assert all(item["sourceId"] == f"{item['name']}-source" for item in items)
    problems = [
        *constant_problem(path, small, large),
        *hidden_problem(path, small, spec.hidden),
        *hidden_problem(path, large, spec.hidden),
    ]
    assert not problems, "\n\n".join(problems)


# --- admin lists ----------------------------------------------------------------------------


@dataclass
class AdminCase:
    """An admin list, a way to add rows to it through the API and in bulk, and a cleanup."""

    paths: Callable[[str], list[str]]
    add: Callable[[Factory, str], Any]
    bulk: Callable[[Session, str, int], list[int]]
    remove: Callable[[Session, list[int]], None]
    name_key: str = "name"


async def _add_user(factory: Factory, _scope: str) -> str:
    return (await factory.user("ROLE_API_SECURITY")).username


def _bulk_users(session: Session, _scope: str, count: int) -> list[int]:
    template = session.scalars(
        select(User).join(UserRole).where(UserRole.role == "ROLE_API_SECURITY").limit(1)
    ).one()
    users = [
        copy_of(
            template,
            username=f"bulk-{unique('user')}",
            roles=[UserRole(role=r.role) for r in template.roles],
        )
        for _ in range(count)
    ]
    session.add_all(users)
    session.flush()
    return [u.id for u in users]


def _remove_users(session: Session, ids: list[int]) -> None:
    session.execute(delete(UserRole).where(UserRole.user_id.in_(ids)))
    session.execute(delete(User).where(User.id.in_(ids)))


async def _add_project(factory: Factory, _scope: str) -> str:
    return await factory.project()


def _bulk_projects(session: Session, _scope: str, count: int) -> list[int]:
    projects = [Project(name=f"bulk-{unique('proj')}", description="bulk") for _ in range(count)]
    session.add_all(projects)
    session.flush()
    # With admin a member, as the API makes them, so that they are visible to admin too.
    admin = session.scalars(select(User.id).where(User.username == "admin")).one()
    session.add_all(ProjectMember(project_id=p.id, user_id=admin) for p in projects)
    return [p.id for p in projects]


def _remove_projects(session: Session, ids: list[int]) -> None:
    session.execute(delete(ProjectMember).where(ProjectMember.project_id.in_(ids)))
    session.execute(delete(Project).where(Project.id.in_(ids)))


async def _add_environment(factory: Factory, scope: str) -> str:
    return await factory.environment(projects=(scope,))


def _bulk_environments(session: Session, scope: str, count: int) -> list[int]:
    template = session.scalars(
        select(Environment)
        .join(EnvironmentProject)
        .where(EnvironmentProject.project_id == project_id(session, scope))
        .limit(1)
    ).one()
    envs = [copy_of(template, name=f"bulk-{unique('env')}") for _ in range(count)]
    session.add_all(envs)
    session.flush()
    # Limited to the test's project, so that while they exist they serve no other project.
    pid = project_id(session, scope)
    session.add_all(EnvironmentProject(environment_id=e.id, project_id=pid) for e in envs)
    return [e.id for e in envs]


def _remove_environments(session: Session, ids: list[int]) -> None:
    session.execute(delete(EnvironmentProject).where(EnvironmentProject.environment_id.in_(ids)))
    session.execute(delete(Environment).where(Environment.id.in_(ids)))


ADMIN_CASES = {
    "users": AdminCase(
        lambda _p: ["/apiops/admin/users/"],
        _add_user,
        _bulk_users,
        _remove_users,
        name_key="username",
    ),
    "projects": AdminCase(
        lambda _p: ["/apiops/admin/projects/", "/apiops/projects/"],
        _add_project,
        _bulk_projects,
        _remove_projects,
    ),
    "environments": AdminCase(
        lambda p: ["/apiops/environments/", f"/apiops/environments/{p}"],
        _add_environment,
        _bulk_environments,
        _remove_environments,
    ),
}


@pytest.mark.parametrize("case", list(ADMIN_CASES))
async def test_admin_list_reads_in_constant_statements(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_token: str,
    factory: Factory,
    settings: Settings,
    case: str,
) -> None:
    """The same for the lists of users, projects and environments: measured at what the
    database holds (at least 10 made here through the API), then with 990 more; the
    990 are removed again afterwards."""
    spec = ADMIN_CASES[case]
    scope = await factory.project()
    made = [await spec.add(factory, scope) for _ in range(SMALL)]
    paths = spec.paths(scope)
    added: list[int] = []
    try:
        with statement_log(app) as log:
            small: dict[str, Measured] = {}
            for path in paths:
                await measure(client, log, path, admin_token)  # warm-up
                small[path] = await measure(client, log, path, admin_token)
            added = await in_database(
                settings, lambda session: spec.bulk(session, scope, LARGE - SMALL)
            )
            large = {path: await measure(client, log, path, admin_token) for path in paths}
        for path in paths:
            assert set(made) <= names(small[path], spec.name_key), path
            grown = large[path].body["resultCount"] - small[path].body["resultCount"]
            assert grown == LARGE - SMALL, path
        problems = [p for path in paths for p in constant_problem(path, small[path], large[path])]
        assert not problems, "\n\n".join(problems)
    finally:
        if added:
            await in_database(settings, lambda session: spec.remove(session, added))
