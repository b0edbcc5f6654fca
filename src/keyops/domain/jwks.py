"""JWKs from every source, kept in step with the material they came from, private
members sealed at rest, deployed to every environment of their project."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.crypto.jwk import (
    JwkError,
    generate_jwk,
    jwk_from_certificate,
    jwk_from_key,
    jwk_from_keystore_entry,
    jwk_thumbprint,
    parse_jwk_text,
    split_private,
)
from keyops.crypto.keys import KeyMaterial
from keyops.crypto.keystores import KeystoreEntry
from keyops.crypto.x509 import ParsedCertificate, parse_certificate
from keyops.deploy.plan import ChangePlan
from keyops.domain.artifacts import jwk_artifact, jwk_ref
from keyops.domain.common import required_text, resource_name
from keyops.domain.environments import EnvironmentService
from keyops.domain.material import entry_of, full_jwk, material_of
from keyops.domain.projects import ADMIN_PROJECT
from keyops.errors import BadRequest
from keyops.secrets import Keyring, Purpose
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Certificate, CryptoKey, Jwk, Keystore, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.certificates import CertificateRepository
from keyops.storage.repositories.jwks import JwkRepository
from keyops.storage.repositories.keys import KeyRepository
from keyops.storage.repositories.keystores import KeystoreRepository
from keyops.storage.repositories.projects import ProjectRepository

SOURCE_TYPES = ("URL", "COPY_PASTE", "CERTIFICATE", "PUBLIC_KEY", "PRIVATE_KEY", "KEYSTORE")
KEY_TYPES = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}
# Paths of operations under /jwks/: a JWK of such a name could not be read by name.
RESERVED_NAMES = frozenset(
    {
        "generate",
        "parse-from-url",
        "parse-from-clipboard",
        "parse-from-certificate",
        "parse-from-key",
        "parse-from-keystore",
    }
)


class JwkUpdateAction(StrEnum):
    UPDATE = "UPDATE"
    NULLIFY = "NULLIFY"


class UpdateScope(StrEnum):
    SAME_PROJECT = "SAME_PROJECT"
    ALL_PROJECTS = "ALL_PROJECTS"


@dataclass(frozen=True, slots=True)
class JwkUpdate:
    """What replacing a source does to the JWKs derived from it (decision 4)."""

    action: JwkUpdateAction = JwkUpdateAction.NULLIFY
    scope: UpdateScope | None = None


@dataclass(slots=True)
class JwkInput:
    """The JSON body of create JWK and of the parse-from-* endpoints, before validation."""

    name: str | None
    description: str | None
    source_type: str | None
    certificate_name: str | None = None
    key_name: str | None = None
    key_store_name: str | None = None
    alias_name: str | None = None
    environment_name: str | None = None
    use_type: str | None = None
    algorithm: str | None = None
    kid: str | None = None
    url: str | None = None
    jwk_str: str | None = None


@dataclass(slots=True)
class GenerateInput:
    """The body of generate JWK, flattened from its per-type object."""

    name: str | None
    description: str | None
    type: str | None
    kid: str | None
    params: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class JwkChange:
    jwk: Jwk
    plan: ChangePlan


@dataclass(frozen=True, slots=True)
class Rederivation:
    jwk: Jwk
    project: Project
    new: dict[str, Any] | None  # None: detach instead


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    """Where a JWK comes from, resolved to rows, and the JWK it yields."""

    jwk: dict[str, Any]
    source_type: str
    certificate_id: int | None = None
    key_id: int | None = None
    keystore_id: int | None = None
    alias: str | None = None
    environment: str | None = None
    url: str | None = None
    use_type: str | None = None


def not_found(name: str) -> BadRequest:
    return BadRequest(f"JWK (name: {name}) is not found!")


def _already_exists(name: str) -> BadRequest:
    return BadRequest(
        f"JWK (name: {name}) is already exist! Try update operation if want to change its value."
    )


def _crypto(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return call()
    except JwkError as exc:
        raise BadRequest(exc.reason) from None


def jwk_name(value: str | None) -> str:
    """A valid JWK name that is not the path of a JWK operation."""
    clean = resource_name("JWK", value)
    if clean in RESERVED_NAMES:
        raise BadRequest(f"JWK name ({clean}) is reserved: /jwks/{clean} is an operation!")
    return clean


def with_kid(jwk: dict[str, Any]) -> dict[str, Any]:
    """The JWK with a kid: its own, or its RFC 7638 thumbprint."""
    if jwk.get("kid"):
        return jwk
    return {"kty": jwk["kty"], "kid": _crypto(lambda: {"t": jwk_thumbprint(jwk)})["t"], **jwk}


class JwkService:
    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.environments = environments
        self.keyring = keyring
        self.jwks = JwkRepository(session)

    # --- reading ---------------------------------------------------------------------

    def get(self, project: Project, name: str) -> Jwk:
        jwk = self.jwks.get(project.id, name)
        if jwk is None:
            raise not_found(name)
        return jwk

    def list_in_project(self, project: Project) -> Sequence[Jwk]:
        return self.jwks.list_for_project(project.id)

    def full(self, jwk: Jwk) -> dict[str, Any]:
        """The whole JWK, private members opened (only get JWK shows this)."""
        return full_jwk(jwk, self.keyring)

    def source_names(self, jwks: Sequence[Jwk]) -> dict[int, str]:
        """JWK id -> the name of the certificate, key or keystore it is still attached
        to; one statement per source kind, whatever the count."""
        return self.jwks.source_names(jwks)

    # --- sources ---------------------------------------------------------------------

    def _find(self, repo_cls: Any, project: Project, name: str, label: str) -> Any:
        """A source of this project or, failing that, of the admin project (decision 11)."""
        repo = repo_cls(self.session)
        found = repo.get(project.id, name)
        if found is None and project.name != ADMIN_PROJECT:
            admin = ProjectRepository(self.session).get_by_name(ADMIN_PROJECT)
            if admin is not None:
                found = repo.get(admin.id, name)
        if found is None:
            raise BadRequest(f"{label} (name: {name}) is not found!")
        return found

    def _row_in(self, resource: Any, repo_cls: Any, env_name: str, label: str) -> Any:
        names = repo_cls(self.session).environment_names(resource)
        row = next(
            (r for r in resource.environments if names.get(r.environment_id) == env_name), None
        )
        if row is None:
            raise BadRequest(
                f"{label} (name: {resource.name}) is not deployed to environment ({env_name})!"
            )
        return row

    def resolve_source(
        self, project: Project, inp: JwkInput, fetched: Any = None
    ) -> ResolvedSource:
        """The JWK a create request asks for. ``fetched`` is the URL's JSON, fetched
        beforehand and outside any transaction."""
        source_type = (inp.source_type or "").strip()
        kid = inp.kid.strip() if inp.kid and inp.kid.strip() else None
        if source_type == "URL":
            if fetched is None:
                raise BadRequest("URL is required for URL source type!")
            text = json.dumps(fetched)
            jwk = _crypto(lambda: parse_jwk_text(text, kid))
            return ResolvedSource(with_kid(jwk), "URL", url=(inp.url or "").strip())
        if source_type == "COPY_PASTE":
            jwk_str = required_text("jwkStr", inp.jwk_str)
            return ResolvedSource(
                with_kid(_crypto(lambda: parse_jwk_text(jwk_str, kid))), "COPY_PASTE"
            )
        if source_type == "CERTIFICATE":
            name = required_text("certificateName", inp.certificate_name)
            cert: Certificate = self._find(CertificateRepository, project, name, "Certificate")
            env_name = required_text("environmentName", inp.environment_name)
            row = self._row_in(cert, CertificateRepository, env_name, "Certificate")
            parsed = parse_certificate(row.der)
            jwk = _crypto(
                lambda: jwk_from_certificate(
                    parsed, use_type=inp.use_type, algorithm=inp.algorithm, kid=kid
                )
            )
            return ResolvedSource(
                jwk,
                "CERTIFICATE",
                certificate_id=cert.id,
                environment=env_name,
                use_type=inp.use_type,
            )
        if source_type in ("PUBLIC_KEY", "PRIVATE_KEY"):
            name = required_text("keyName", inp.key_name)
            key: CryptoKey = self._find(KeyRepository, project, name, "Key")
            env_name = required_text("environmentName", inp.environment_name)
            row = self._row_in(key, KeyRepository, env_name, "Key")
            if key.project_id != project.id and source_type == "PRIVATE_KEY":
                raise BadRequest(
                    f"Key (name: {name}) belongs to the {ADMIN_PROJECT} project: another project"
                    " may derive only public JWKs from it; use sourceType PUBLIC_KEY!"
                )
            material = material_of(row, key.key_type, self.keyring)
            jwk = self._from_material(material, source_type, inp.use_type, inp.algorithm, kid)
            return ResolvedSource(
                jwk, source_type, key_id=key.id, environment=env_name, use_type=inp.use_type
            )
        if source_type == "KEYSTORE":
            name = required_text("keyStoreName", inp.key_store_name)
            store: Keystore = self._find(KeystoreRepository, project, name, "Keystore")
            env_name = required_text("environmentName", inp.environment_name)
            alias = required_text("aliasName", inp.alias_name)
            row = self._row_in(store, KeystoreRepository, env_name, "Keystore")
            entry = entry_of(row, alias, self.keyring)
            if entry is None:
                raise BadRequest(f"Alias ({alias}) is not found in keystore (name: {name})!")
            jwk = self._from_entry(entry, inp.use_type, inp.algorithm, kid)
            if store.project_id != project.id:
                jwk = _public_only(jwk, f"Alias ({alias}) of keystore (name: {name})")
            return ResolvedSource(
                jwk,
                "KEYSTORE",
                keystore_id=store.id,
                alias=alias,
                environment=env_name,
                use_type=inp.use_type,
            )
        raise BadRequest(
            f"Source type ({source_type}) is not valid! Valid values: {', '.join(SOURCE_TYPES)}"
        )

    @staticmethod
    def _from_material(
        material: KeyMaterial | None,
        source_type: str,
        use_type: str | None,
        algorithm: str | None,
        kid: str | None,
    ) -> dict[str, Any]:
        if material is None:
            raise BadRequest("The key has no material in that environment!")
        private = source_type == "PRIVATE_KEY"
        if private and material.private_der is None and material.secret is None:
            raise BadRequest("The key has no private part; use sourceType PUBLIC_KEY!")
        return _crypto(
            lambda: jwk_from_key(
                material, include_private=private, use_type=use_type, algorithm=algorithm, kid=kid
            )
        )

    @staticmethod
    def _from_entry(
        entry: KeystoreEntry, use_type: str | None, algorithm: str | None, kid: str | None
    ) -> dict[str, Any]:
        return _crypto(
            lambda: jwk_from_keystore_entry(entry, use_type=use_type, algorithm=algorithm, kid=kid)
        )

    # --- writing ---------------------------------------------------------------------

    def _store(self, row: Jwk, jwk: dict[str, Any]) -> None:
        public, private = split_private(jwk)
        row.public_json = json.dumps(public)
        row.private_sealed = (
            self.keyring.seal(json.dumps(private).encode("utf-8"), Purpose.JWK_PRIVATE)
            if private
            else None
        )
        row.kid = str(jwk.get("kid") or "")
        row.key_type = str(jwk["kty"])
        row.algorithm = jwk.get("alg")

    def artifact_of(self, project: Project, jwk: Jwk) -> Any:
        return jwk_artifact(project.name, jwk, self.full(jwk))

    def _deploy_everywhere(self, project: Project, jwk: Jwk, plan: ChangePlan) -> None:
        artifact = self.artifact_of(project, jwk)
        for env in self.environments.list_for_project(project):
            plan.deploy(env, artifact)

    def check_new_name(self, project: Project, name: str | None) -> str:
        """A valid JWK name that is free in the project."""
        clean = jwk_name(name)
        if self.jwks.get(project.id, clean) is not None:
            raise _already_exists(clean)
        return clean

    def create(self, project: Project, inp: JwkInput, *, fetched: Any = None) -> JwkChange:
        """Create a JWK from a URL, pasted JSON, certificate, key or keystore."""
        name = self.check_new_name(project, inp.name)
        if inp.source_type is None or not inp.source_type.strip():
            raise BadRequest("Source type is required!")
        source_type = inp.source_type.strip()
        if source_type == "GENERATE":
            raise BadRequest("Use the Generate JWK endpoint for the GENERATE source type!")
        if source_type == "URL" and not (inp.url and inp.url.strip()):
            raise BadRequest("URL is required for URL source type!")
        source = self.resolve_source(project, inp, fetched)
        row = Jwk(
            project_id=project.id,
            name=name,
            description=(inp.description or "").strip(),
            source_type=source.source_type,
            source_certificate_id=source.certificate_id,
            source_key_id=source.key_id,
            source_keystore_id=source.keystore_id,
            source_alias=source.alias,
            source_environment=source.environment,
            source_url=source.url,
            use_type=source.use_type,
            kid_given=bool(inp.kid and inp.kid.strip()),
        )
        self._store(row, source.jwk)
        return self._insert(project, row)

    def generate(self, project: Project, inp: GenerateInput, jwk: dict[str, Any]) -> JwkChange:
        """Store a JWK generated beforehand (generation runs off the event loop)."""
        name = self.check_new_name(project, inp.name)
        row = Jwk(
            project_id=project.id,
            name=name,
            description=(inp.description or "").strip(),
            source_type="GENERATE",
            use_type={"sig": "SIGNATURE", "enc": "ENCRYPTION"}.get(str(jwk.get("use")), None),
            kid_given=bool(inp.kid and inp.kid.strip()),
        )
        self._store(row, jwk)
        return self._insert(project, row)

    def _insert(self, project: Project, row: Jwk) -> JwkChange:
        try:
            self.jwks.add(row)
        except IntegrityError as exc:
            if is_unique_violation(exc, "jwks"):
                raise _already_exists(row.name) from None
            raise
        plan = ChangePlan()
        self._deploy_everywhere(project, row, plan)
        return JwkChange(row, plan)

    def update(
        self, project: Project, name: str, new_name: str | None, description: str | None
    ) -> JwkChange:
        """Rename or re-describe; the JWK is detached from its source (update-jwk.md)."""
        jwk = self.jwks.get(project.id, name)
        if jwk is None:
            raise BadRequest(f"JWK (name: {name}) is not found! Try create operation.")
        target = name
        if new_name is not None and new_name.strip() and new_name.strip() != name:
            target = jwk_name(new_name)
            if self.jwks.get(project.id, target) is not None:
                raise BadRequest(f"JWK (name: {target}) is already exist!")
        plan = ChangePlan()
        if target != name:
            for env in self.environments.list_for_project(project):
                plan.undeploy(env, jwk_ref(project.name, name))
        jwk.name = target
        if description is not None:
            jwk.description = description.strip()
        _detach(jwk)
        jwk.updated_at = utcnow()
        try:
            self.session.flush()
        except IntegrityError as exc:
            if is_unique_violation(exc, "jwks"):
                raise BadRequest(f"JWK (name: {target}) is already exist!") from None
            raise
        self._deploy_everywhere(project, jwk, plan)
        return JwkChange(jwk, plan)

    def delete(self, project: Project, name: str) -> JwkChange:
        jwk = self.get(project, name)
        plan = ChangePlan()
        for env in self.environments.list_for_project(project):
            plan.undeploy(env, jwk_ref(project.name, jwk.name))
        self.jwks.delete(jwk)
        return JwkChange(jwk, plan)

    # --- keeping derived JWKs in step with their source ------------------------------

    def derive_from_certificate(self, jwk: Jwk, parsed: ParsedCertificate) -> dict[str, Any]:
        return _crypto(
            lambda: jwk_from_certificate(
                parsed,
                use_type=jwk.use_type,
                algorithm=jwk.algorithm,
                kid=jwk.kid if jwk.kid_given else None,
            )
        )

    def derive_from_key_material(
        self, jwk: Jwk, material: KeyMaterial | None
    ) -> dict[str, Any] | None:
        if material is None:
            return None  # its environment left the key: nothing to derive from
        kid = jwk.kid if jwk.kid_given else None
        return self._from_material(material, jwk.source_type, jwk.use_type, jwk.algorithm, kid)

    def derive_from_entry(self, jwk: Jwk, entry: KeystoreEntry | None) -> dict[str, Any] | None:
        if entry is None:
            return None  # its alias or environment left the keystore
        kid = jwk.kid if jwk.kid_given else None
        return self._from_entry(entry, jwk.use_type, jwk.algorithm, kid)

    def plan_replacement(
        self,
        referencing: Sequence[Jwk],
        project: Project,
        derive: Callable[[Jwk], dict[str, Any] | None],
        jwk_update: JwkUpdate,
    ) -> list[Rederivation]:
        """Work out, before writing anything, what a source's replacement does to each
        JWK derived from it; a JWK that can not follow refuses the whole update."""
        result = []
        for jwk in referencing:
            owner = project
            if jwk.project_id != project.id:
                found = self.session.get(Project, jwk.project_id)
                assert found is not None, "a JWK's project is missing"
                owner = found
            in_scope = jwk_update.action is JwkUpdateAction.UPDATE and (
                jwk_update.scope is UpdateScope.ALL_PROJECTS or jwk.project_id == project.id
            )
            new = None
            if in_scope:
                try:
                    new = derive(jwk)
                except BadRequest as exc:
                    raise BadRequest(
                        f"JWK (name: {jwk.name}, project: {owner.name}) can not be re-derived"
                        f" from the new material: {exc.description}"
                    ) from None
            if new is not None and jwk.project_id != project.id:
                # The admin project's material reaches another project only as its public
                # part (decision 11); a secret key has none, so such a JWK is detached.
                new = None if new.get("kty") == "oct" else split_private(new)[0]
            result.append(Rederivation(jwk, owner, new))
        return result

    def apply_replacement(self, items: Sequence[Rederivation], plan: ChangePlan) -> None:
        """Write the re-derived or detached JWKs and add their roll-out to the plan."""
        now = utcnow()
        for item in items:
            jwk = item.jwk
            jwk.updated_at = now
            if item.new is None:
                _detach(jwk)
                continue
            self._store(jwk, item.new)
            self._deploy_everywhere(item.project, jwk, plan)


def _public_only(jwk: dict[str, Any], what: str) -> dict[str, Any]:
    """The public members of a JWK derived from another project's (the admin project's)
    key material: its secrets never reach a project whose members may not read them."""
    public, _ = split_private(jwk)
    if jwk.get("kty") == "oct":
        raise BadRequest(
            f"{what} is a secret key of the {ADMIN_PROJECT} project: another project may"
            " derive only public JWKs from it!"
        )
    return public


def _detach(jwk: Jwk) -> None:
    jwk.source_certificate_id = None
    jwk.source_key_id = None
    jwk.source_keystore_id = None
    jwk.source_alias = None


def generate_from_input(inp: GenerateInput, now: datetime) -> dict[str, Any]:
    """Validate the generate body and make the key (slow for big RSA: run off the loop)."""
    if inp.type is None or not inp.type.strip():
        raise BadRequest("JWK type can not be empty!")
    kty = inp.type.strip().upper()
    if kty not in ("RSA", "EC", "OCT", "OKP"):
        raise BadRequest(f"JWK type ({inp.type}) is not valid! Valid values: RSA, EC, OCT, OKP")
    params = inp.params
    if params is None:
        raise BadRequest(f"{kty.lower()} value can not be empty!")

    def opt_dt(field: str) -> datetime | None:
        value = params.get(field)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise BadRequest(f"{field} must be an ISO 8601 date/time!")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{field} ({value}) is not a valid ISO 8601 date/time!") from None
        if parsed.tzinfo is None:
            raise BadRequest(f"{field} ({value}) needs a time zone, e.g. Z!")
        return parsed

    size = params.get("keySize")
    if size is not None and not isinstance(size, int):
        raise BadRequest("keySize must be an integer!")
    curve = params.get("curveType")
    if curve is not None and not isinstance(curve, str):
        raise BadRequest("curveType must be a string!")
    return _crypto(
        lambda: generate_jwk(
            kty,
            key_size=size,
            curve=curve,
            use_type=params.get("keyUseType"),
            algorithm=params.get("algorithm"),
            kid=inp.kid.strip() if inp.kid and inp.kid.strip() else None,
            key_id_type=params.get("keyIdType"),
            not_before=opt_dt("notBeforeTime"),
            expiration=opt_dt("expirationTime"),
            now=now,
        )
    )
