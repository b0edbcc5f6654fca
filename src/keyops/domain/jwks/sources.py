"""Where a new JWK comes from: one resolver per source type."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from keyops.crypto.jwk import (
    jwk_from_certificate,
    jwk_from_key,
    jwk_from_keystore_entry,
    parse_jwk_text,
    split_private,
)
from keyops.crypto.keys import KeyMaterial
from keyops.crypto.keystores import KeystoreEntry
from keyops.crypto.x509 import parse_certificate
from keyops.domain.common import required_text
from keyops.domain.jwks.model import (
    SOURCE_TYPES,
    JwkInput,
    ResolvedSource,
    crypto,
    with_kid,
)
from keyops.domain.material import entry_of, material_of
from keyops.domain.projects import ADMIN_PROJECT
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.models import Certificate, CryptoKey, Keystore, Project
from keyops.storage.repositories.certificates import CertificateRepository
from keyops.storage.repositories.keys import KeyRepository
from keyops.storage.repositories.keystores import KeystoreRepository
from keyops.storage.repositories.projects import ProjectRepository


class SourceResolver:
    """Turns a create request's source into the JWK it yields and the rows it names."""

    def __init__(self, session: Session, keyring: Keyring) -> None:
        self.session = session
        self.keyring = keyring

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

    def resolve(self, project: Project, inp: JwkInput, fetched: Any = None) -> ResolvedSource:
        """The JWK a create request asks for. ``fetched`` is the URL's JSON, fetched
        beforehand and outside any transaction."""
        source_type = (inp.source_type or "").strip()
        kid = inp.kid.strip() if inp.kid and inp.kid.strip() else None
        if source_type == "URL":
            if fetched is None:
                raise BadRequest("URL is required for URL source type!")
            text = json.dumps(fetched)
            jwk = crypto(lambda: parse_jwk_text(text, kid))
            return ResolvedSource(
                with_kid(jwk), "URL", url=(inp.url or "").strip(), kid_chosen=bool(jwk.get("kid"))
            )
        if source_type == "COPY_PASTE":
            jwk_str = required_text("jwkStr", inp.jwk_str)
            jwk = crypto(lambda: parse_jwk_text(jwk_str, kid))
            return ResolvedSource(with_kid(jwk), "COPY_PASTE", kid_chosen=bool(jwk.get("kid")))
        if source_type == "CERTIFICATE":
            name = required_text("certificateName", inp.certificate_name)
            cert: Certificate = self._find(CertificateRepository, project, name, "Certificate")
            env_name = required_text("environmentName", inp.environment_name)
            row = self._row_in(cert, CertificateRepository, env_name, "Certificate")
            parsed = parse_certificate(row.der)
            jwk = crypto(
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
                kid_chosen=kid is not None,
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
            jwk = self.from_material(material, source_type, inp.use_type, inp.algorithm, kid)
            return ResolvedSource(
                jwk,
                source_type,
                key_id=key.id,
                environment=env_name,
                use_type=inp.use_type,
                kid_chosen=kid is not None,
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
            jwk = self.from_entry(entry, inp.use_type, inp.algorithm, kid)
            if store.project_id != project.id:
                jwk = public_only(jwk, f"Alias ({alias}) of keystore (name: {name})")
            return ResolvedSource(
                jwk,
                "KEYSTORE",
                keystore_id=store.id,
                alias=alias,
                environment=env_name,
                use_type=inp.use_type,
                kid_chosen=kid is not None,
            )
        raise BadRequest(
            f"Source type ({source_type}) is not valid! Valid values: {', '.join(SOURCE_TYPES)}"
        )

    @staticmethod
    def from_material(
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
        return crypto(
            lambda: jwk_from_key(
                material, include_private=private, use_type=use_type, algorithm=algorithm, kid=kid
            )
        )

    @staticmethod
    def from_entry(
        entry: KeystoreEntry, use_type: str | None, algorithm: str | None, kid: str | None
    ) -> dict[str, Any]:
        return crypto(
            lambda: jwk_from_keystore_entry(entry, use_type=use_type, algorithm=algorithm, kid=kid)
        )


def public_only(jwk: dict[str, Any], what: str) -> dict[str, Any]:
    """The public members of a JWK derived from another project's (the admin project's)
    key material: its secrets never reach a project whose members may not read them."""
    public, _ = split_private(jwk)
    if jwk.get("kty") == "oct":
        raise BadRequest(
            f"{what} is a secret key of the {ADMIN_PROJECT} project: another project may"
            " derive only public JWKs from it!"
        )
    return public
