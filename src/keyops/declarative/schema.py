"""The keyops.yaml schema: the desired state of projects' certificates, keys, keystores
and JWKs, and how a file becomes resolved material (``load``).

    version: 1
    projects:
      MyProject:
        certificates:
          my-certificate:
            file: certs/my-certificate.pem      # or pem: | ... inline, or env: VAR
            environments: [production, staging]
            update_jwks: same-project           # re-derive the JWKs made from it
        keys:
          signer:
            type: EC
            public_key: {file: keys/signer.pub.pem}
            private_key: {env: SIGNER_PRIVATE_KEY}
            environments: [production]
        keystores:
          tls:
            file: tls.p12
            password: {env: TLS_PASSWORD}
            environments: [production]
        jwks:
          signer-jwk:
            from: {certificate: my-certificate, environment: production}
            use: SIGNATURE
            alg: ES256

Material is inline text, ``{file: PATH}`` (relative to the YAML file) or
``{env: NAME}`` (an environment variable: the way to hand over a secret). Unknown
fields are refused, so a misspelt field is an error, not a silently ignored line; every
error is one ``SpecError`` line naming where in the file it is.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "CertificateSpec",
    "DesiredCertificate",
    "DesiredJwk",
    "DesiredKey",
    "DesiredKeystore",
    "DesiredProject",
    "DesiredState",
    "JwkSource",
    "JwkSpec",
    "KeySpec",
    "KeystoreSpec",
    "Material",
    "ProjectSpec",
    "Spec",
    "SpecError",
    "UpdateJwks",
    "jwk_source_kind",
    "load",
    "parse",
    "resolve",
]

UpdateJwks = Literal["no", "same-project", "all-projects"]
# What the update's query says for each choice (client ``update_scope``).
UpdateScope = Literal["SAME_PROJECT", "ALL_PROJECTS"]
UPDATE_SCOPES: dict[str, UpdateScope] = {
    "same-project": "SAME_PROJECT",
    "all-projects": "ALL_PROJECTS",
}
Name = Annotated[str, Field(min_length=1, max_length=200)]


class SpecError(ValueError):
    """A keyops.yaml that can not be used: one line saying where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Material(_Strict):
    """Exactly one of ``value`` (inline), ``file`` (relative to the YAML) or ``env``."""

    value: str | None = None
    file: str | None = None
    env: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> Material:
        given = [n for n in ("value", "file", "env") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of value, file or env")
        return self


def _update_jwks(value: Any) -> Any:
    if value is True:
        return "same-project"
    if value is False or value is None:
        return "no"
    return value


class _Resource(_Strict):
    environments: list[Name] = Field(min_length=1)
    description: str | None = None
    update_jwks: UpdateJwks = "no"

    @model_validator(mode="before")
    @classmethod
    def _jwks_flag(cls, data: Any) -> Any:
        if isinstance(data, dict) and "update_jwks" in data:
            data = {**data, "update_jwks": _update_jwks(data["update_jwks"])}
        return data


class CertificateSpec(_Resource):
    """A certificate (PEM or DER): ``pem`` inline, or ``file``/``env``."""

    pem: str | None = None
    file: str | None = None
    env: str | None = None
    alias: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CertificateSpec:
        if sum(v is not None for v in (self.pem, self.file, self.env)) != 1:
            raise ValueError("give exactly one of pem, file or env")
        return self

    def material(self) -> Material:
        return Material(value=self.pem, file=self.file, env=self.env)


class KeySpec(_Resource):
    """A crypto key: ``type`` (RSA, EC, ED25519, SYMMETRIC, ...) and its public and/or
    private part (PEM, or base64 DER; a SYMMETRIC key's secret as ``private_key``)."""

    type: Annotated[str, Field(min_length=1, max_length=32)]
    public_key: Material | None = None
    private_key: Material | None = None

    @model_validator(mode="after")
    def _some_material(self) -> KeySpec:
        if self.public_key is None and self.private_key is None:
            raise ValueError("give public_key, private_key or both")
        return self


class KeystoreSpec(_Resource):
    """A keystore file (PKCS12, JKS or JCEKS): ``file`` (the store itself) or ``env`` /
    ``base64`` (its base64), with ``password`` and, when it differs, ``key_password``."""

    file: str | None = None
    env: str | None = None
    base64: str | None = None
    type: Literal["PKCS12", "JKS", "JCEKS"] = "PKCS12"
    password: Material | None = None
    key_password: Material | None = None

    @model_validator(mode="before")
    @classmethod
    def _upper_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            data = {**data, "type": data["type"].upper()}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> KeystoreSpec:
        if sum(v is not None for v in (self.file, self.env, self.base64)) != 1:
            raise ValueError("give exactly one of file, env or base64")
        return self


class JwkSource(_Strict):
    """Where a JWK comes from: one of ``certificate``, ``key`` or ``keystore`` (with
    ``alias``), as deployed to ``environment``; ``private`` takes a key's private part."""

    certificate: Name | None = None
    key: Name | None = None
    keystore: Name | None = None
    alias: Name | None = None
    environment: Name
    private: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> JwkSource:
        if sum(v is not None for v in (self.certificate, self.key, self.keystore)) != 1:
            raise ValueError("give exactly one of certificate, key or keystore")
        if (self.keystore is None) != (self.alias is None):
            raise ValueError("alias goes with keystore, and a keystore needs one")
        if self.private and self.key is None:
            raise ValueError("private applies to a key source only")
        return self


class JwkSpec(_Strict):
    """A JWK derived from a certificate, key or keystore entry of the same project."""

    source: JwkSource = Field(alias="from")
    use: Literal["SIGNATURE", "ENCRYPTION"] = "SIGNATURE"
    alg: Annotated[str, Field(min_length=1, max_length=64)]
    kid: str | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _upper_use(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("use"), str):
            use = data["use"].upper()
            data = {**data, "use": {"SIG": "SIGNATURE", "ENC": "ENCRYPTION"}.get(use, use)}
        return data


class ProjectSpec(_Strict):
    certificates: dict[Name, CertificateSpec] = Field(default_factory=dict)
    keys: dict[Name, KeySpec] = Field(default_factory=dict)
    keystores: dict[Name, KeystoreSpec] = Field(default_factory=dict)
    jwks: dict[Name, JwkSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sources_declared(self) -> ProjectSpec:
        for name, jwk in self.jwks.items():
            src = jwk.source
            for kind, ref, declared in (
                ("certificate", src.certificate, self.certificates),
                ("key", src.key, self.keys),
                ("keystore", src.keystore, self.keystores),
            ):
                if ref is not None and ref not in declared:
                    raise ValueError(f"jwks.{name}: {kind} {ref} is not in this project")
                if ref is not None and src.environment not in declared[ref].environments:
                    raise ValueError(
                        f"jwks.{name}: {kind} {ref} is not deployed to {src.environment}"
                    )
        return self


class Spec(_Strict):
    """The whole file."""

    version: Literal[1] = 1
    projects: dict[Name, ProjectSpec]


# --- resolved ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredCertificate:
    project: str
    name: str
    content: bytes = field(repr=False)  # PEM or DER, as the file has it
    environments: tuple[str, ...]
    alias: str
    description: str
    update_jwks: UpdateJwks


@dataclass(frozen=True)
class DesiredKey:
    project: str
    name: str
    key_type: str
    # The text the API takes: PEM as it is, DER as base64.
    public_key: str | None = field(repr=False)
    private_key: str | None = field(repr=False)
    environments: tuple[str, ...]
    description: str
    update_jwks: UpdateJwks


@dataclass(frozen=True)
class DesiredKeystore:
    project: str
    name: str
    content: bytes = field(repr=False)
    store_type: str
    password: str | None = field(repr=False)
    key_password: str | None = field(repr=False)
    environments: tuple[str, ...]
    description: str
    update_jwks: UpdateJwks


@dataclass(frozen=True)
class DesiredJwk:
    project: str
    name: str
    source_kind: Literal["certificate", "key", "keystore"]
    source: str
    environment: str
    alias: str | None
    private: bool
    use: str
    alg: str
    kid: str | None
    description: str

    @property
    def source_type(self) -> str:
        """The JWK's ``sourceType`` as the server reports it."""
        if self.source_kind == "certificate":
            return "CERTIFICATE"
        if self.source_kind == "keystore":
            return "KEYSTORE"
        return "PRIVATE_KEY" if self.private else "PUBLIC_KEY"


@dataclass(frozen=True)
class DesiredProject:
    name: str
    certificates: dict[str, DesiredCertificate]
    keys: dict[str, DesiredKey]
    keystores: dict[str, DesiredKeystore]
    jwks: dict[str, DesiredJwk]


@dataclass(frozen=True)
class DesiredState:
    projects: dict[str, DesiredProject]


# --- reading ------------------------------------------------------------------------------


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(top)"


def parse(text: str, *, source: str = "keyops.yaml") -> Spec:
    """The file's text as a ``Spec``; ``SpecError`` (one line) if it is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SpecError(f"{source}: invalid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping with 'projects', got {type(data).__name__}")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(tuple(first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise SpecError(f"{source}: {where}: {message}{suffix}") from None


class _Reader:
    """Reads material from inline text, files next to the YAML, or the environment."""

    def __init__(self, base: Path, environ: Mapping[str, str], source: str) -> None:
        self.base = base
        self.environ = environ
        self.source = source

    def raw(self, where: str, value: str | None, file: str | None, env: str | None) -> bytes:
        if value is not None:
            return value.encode("utf-8")
        if file is not None:
            path = (self.base / file).resolve()
            try:
                return path.read_bytes()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise SpecError(f"{self.source}: {where}: can not read {file}: {reason}") from None
        assert env is not None
        if env not in self.environ:
            raise SpecError(f"{self.source}: {where}: environment variable {env} is not set")
        return self.environ[env].encode("utf-8")

    def material(self, where: str, m: Material) -> bytes:
        return self.raw(where, m.value, m.file, m.env)

    def optional(self, where: str, m: Material | None) -> bytes | None:
        return None if m is None else self.material(where, m)

    def text(self, where: str, m: Material | None) -> str | None:
        return None if m is None else self.material(where, m).decode("utf-8")


def key_text(data: bytes) -> str:
    """Key material as the API takes it: text (PEM, base64) as it is, binary DER as base64."""
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii")
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return text
    return base64.b64encode(data).decode("ascii")


def resolve(
    spec: Spec,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    source: str = "keyops.yaml",
) -> DesiredState:
    """Read every file and variable the spec refers to."""
    reader = _Reader(base_dir, os.environ if environ is None else environ, source)
    projects: dict[str, DesiredProject] = {}
    for pname, p in spec.projects.items():
        at = f"projects.{pname}"
        certificates = {
            name: DesiredCertificate(
                pname,
                name,
                reader.material(f"{at}.certificates.{name}", c.material()),
                tuple(c.environments),
                c.alias or name,
                # The API takes no empty description: the client sends the name instead.
                c.description or name,
                c.update_jwks,
            )
            for name, c in p.certificates.items()
        }
        keys = {}
        for name, k in p.keys.items():
            where = f"{at}.keys.{name}"
            pub = (
                None
                if k.public_key is None
                else reader.material(f"{where}.public_key", k.public_key)
            )
            priv = (
                None
                if k.private_key is None
                else reader.material(f"{where}.private_key", k.private_key)
            )
            keys[name] = DesiredKey(
                pname,
                name,
                k.type,
                None if pub is None else key_text(pub),
                None if priv is None else key_text(priv),
                tuple(k.environments),
                k.description or "",
                k.update_jwks,
            )
        keystores = {}
        for name, s in p.keystores.items():
            where = f"{at}.keystores.{name}"
            if s.file is not None:
                content = reader.raw(where, None, s.file, None)
            else:
                text = reader.raw(where, s.base64, None, s.env)
                try:
                    content = base64.b64decode(b"".join(text.split()), validate=True)
                except binascii.Error:
                    raise SpecError(
                        f"{source}: {where}: the keystore is not valid base64"
                    ) from None
            keystores[name] = DesiredKeystore(
                pname,
                name,
                content,
                s.type,
                reader.text(f"{where}.password", s.password),
                reader.text(f"{where}.key_password", s.key_password),
                tuple(s.environments),
                s.description or "",
                s.update_jwks,
            )
        jwks = {}
        for name, j in p.jwks.items():
            src = j.source
            kind: Literal["certificate", "key", "keystore"]
            if src.certificate is not None:
                kind, ref = "certificate", src.certificate
            elif src.key is not None:
                kind, ref = "key", src.key
            else:
                assert src.keystore is not None
                kind, ref = "keystore", src.keystore
            jwks[name] = DesiredJwk(
                pname,
                name,
                kind,
                ref,
                src.environment,
                src.alias,
                src.private,
                j.use,
                j.alg,
                j.kid,
                j.description or "",
            )
        projects[pname] = DesiredProject(pname, certificates, keys, keystores, jwks)
    return DesiredState(projects)


def load(path: Path | str, *, environ: Mapping[str, str] | None = None) -> DesiredState:
    """Read, validate and resolve a keyops.yaml; ``SpecError`` (one line) on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: can not read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    spec = parse(text, source=str(path))
    return resolve(spec, base_dir=path.parent, environ=environ, source=str(path))


_DERIVED_KINDS = {
    "CERTIFICATE": "certificate",
    "PUBLIC_KEY": "key",
    "PRIVATE_KEY": "key",
    "KEYSTORE": "keystore",
}


def jwk_source_kind(
    source_type: str | None, source_id: str | None, source_environment: str | None
) -> tuple[str | None, str]:
    """Which kind of a keyops.yaml a server JWK is made from (``certificate``, ``key``,
    ``keystore``), or None with the reason a file can not describe it: a JWK from a URL,
    pasted or generated, or one detached from its source. ``dump`` leaves those out, and
    ``apply --prune`` leaves them alone (it can not make them again)."""
    kind = _DERIVED_KINDS.get(source_type or "")
    if kind is None:
        return None, f"sourceType {source_type}"
    if source_id is None or source_environment is None:
        return None, "detached from its source"
    return kind, ""
