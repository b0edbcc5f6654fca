"""The server's current state as a keyops.yaml (``dump``), which ``apply`` reproduces.

Public material (certificates, public keys) is written inline. Secrets never are unless
asked (``secrets="inline"``):

- private keys and symmetric secrets: with ``secrets="file"`` into files under
  ``secrets/`` next to the YAML (mode 0600) and referenced by path; with ``"env"`` as
  ``{env: KEYOPS_<PROJECT>_<NAME>_PRIVATE_KEY}`` references (their values are not
  written anywhere: the dump says which variables to set);
- keystore files (binary, encrypted by their password) into files as well, or as a
  ``{env: ...}`` reference to their base64 when there is no directory;
- keystore passwords are write-only on the server: always ``{env: ...}`` references.

What a keyops.yaml can not describe is left out and said in a comment at the top: JWKs
not derived from a certificate, key or keystore of their project (URL, pasted,
generated, detached), and a key or keystore whose material differs between
environments (the first environment's is written).

A JWK's source is marked ``update_jwks: same-project``: the server keeps it attached,
and a later edit of the source in the file should re-derive it, not detach it.
"""

from __future__ import annotations

import base64
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from keyops.client import Client
from keyops.crypto.jwk import JwkError, key_thumbprint
from keyops.declarative.schema import jwk_source_kind

__all__ = ["SecretMode", "dump", "env_name"]

SecretMode = Literal["file", "env", "inline"]


def env_name(project: str, name: str, what: str) -> str:
    """The variable a dump refers to for a secret: ``KEYOPS_MYPROJECT_TLS_PASSWORD``."""
    return re.sub(r"[^A-Z0-9]+", "_", f"KEYOPS_{project}_{name}_{what}".upper()).strip("_")


def _pem(label: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


class _Dumper(yaml.SafeDumper):
    """Multi-line text (PEM) as literal blocks; mappings in the order built."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class _Writer:
    def __init__(self, client: Client, secrets: SecretMode, directory: Path | None) -> None:
        if secrets == "file" and directory is None:
            raise ValueError('secrets="file" needs the directory to write them to')
        self.client = client
        self.secrets = secrets
        self.directory = directory
        self.notes: list[str] = []
        self.variables: list[str] = []

    def _write(self, project: str, filename: str, data: bytes) -> str:
        assert self.directory is not None
        relative = Path("secrets") / _safe(project) / filename
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)  # an existing file keeps its mode on open
        return relative.as_posix()

    def _env(self, variable: str) -> dict[str, str]:
        self.variables.append(variable)
        return {"env": variable}

    def secret_text(self, project: str, name: str, text: str, filename: str) -> Any:
        if self.secrets == "inline":
            return text
        if self.secrets == "file":
            return {"file": self._write(project, filename, text.encode("ascii"))}
        return self._env(env_name(project, name, "PRIVATE_KEY"))

    def certificates(self, project: str, derived_from: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for listed in self.client.certificates.list(project).result_list:
            got = self.client.certificates.get(project, listed.name)
            rows = got.certificate_environment_list
            if not rows:
                self.notes.append(f"{project}: certificate {got.name} is in no environment")
                continue
            ders = {e.base64_encoded_content for e in rows}
            if len(ders) > 1:
                self.notes.append(
                    f"{project}: certificate {got.name} differs between environments;"
                    f" {rows[0].environment_name}'s is written"
                )
            item: dict[str, Any] = {
                "environments": [e.environment_name for e in rows],
                "pem": _pem("CERTIFICATE", base64.b64decode(rows[0].base64_encoded_content or "")),
            }
            if rows[0].alias != got.name:
                item["alias"] = rows[0].alias
            if got.description != got.name:
                item["description"] = got.description
            if got.name in derived_from:
                item["update_jwks"] = "same-project"
            out[got.name] = item
        return out

    def keys(self, project: str, derived_from: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.client.keys.list(project).result_list:
            rows = key.crypto_key_info_environment_list
            if not rows:
                self.notes.append(f"{project}: key {key.name} is in no environment")
                continue
            if len({(e.public_key, e.private_key) for e in rows}) > 1:
                self.notes.append(
                    f"{project}: key {key.name} differs between environments;"
                    f" {rows[0].environment_name}'s is written"
                )
            first = rows[0]
            item: dict[str, Any] = {
                "type": key.key_type,
                "environments": [e.environment_name for e in rows],
            }
            if first.public_key:
                item["public_key"] = _pem("PUBLIC KEY", base64.b64decode(first.public_key))
            if first.private_key:
                symmetric = key.key_type == "SYMMETRIC"
                text = (
                    first.private_key
                    if symmetric
                    else _pem("PRIVATE KEY", base64.b64decode(first.private_key))
                )
                filename = f"{_safe(key.name)}.{'secret' if symmetric else 'key.pem'}"
                item["private_key"] = self.secret_text(project, key.name, text, filename)
            if key.description:
                item["description"] = key.description
            if key.name in derived_from:
                item["update_jwks"] = "same-project"
            out[key.name] = item
        return out

    def keystores(self, project: str, derived_from: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for store in self.client.keystores.list(project).result_list:
            rows = store.key_store_environment_list
            if not rows:
                self.notes.append(f"{project}: keystore {store.name} is in no environment")
                continue
            if len({(e.file, e.type) for e in rows}) > 1:
                self.notes.append(
                    f"{project}: keystore {store.name} differs between environments;"
                    f" {rows[0].environment_name}'s is written"
                )
            first = rows[0]
            item: dict[str, Any] = {
                "type": first.type.upper(),
                "environments": [e.environment_name for e in rows],
            }
            data = base64.b64decode(first.file or "")
            if self.secrets == "inline":
                item["base64"] = "\n".join(textwrap.wrap(first.file or "", 76)) + "\n"
            elif self.directory is not None:
                extension = {"PKCS12": "p12", "JKS": "jks", "JCEKS": "jceks"}.get(
                    item["type"], "store"
                )
                item["file"] = self._write(project, f"{_safe(store.name)}.{extension}", data)
            else:
                item["env"] = self._env(env_name(project, store.name, "KEYSTORE"))["env"]
            # Write-only on the server: the value can only come from whoever has it.
            item["password"] = self._env(env_name(project, store.name, "PASSWORD"))
            if store.description:
                item["description"] = store.description
            if store.name in derived_from:
                item["update_jwks"] = "same-project"
            out[store.name] = item
        return out

    def jwks(self, project: str) -> tuple[dict[str, Any], dict[str, set[str]]]:
        out: dict[str, Any] = {}
        sources: dict[str, set[str]] = {"certificate": set(), "key": set(), "keystore": set()}
        for jwk in self.client.jwks.list(project).result_list:
            kind, why = jwk_source_kind(jwk.source_type, jwk.source_id, jwk.source_environment)
            if kind is None or jwk.source_id is None:
                self.notes.append(f"{project}: jwk {jwk.name} is not written ({why})")
                continue
            origin: dict[str, Any] = {kind: jwk.source_id, "environment": jwk.source_environment}
            if kind == "keystore":
                origin["alias"] = jwk.source_alias
            if jwk.source_type == "PRIVATE_KEY":
                origin["private"] = True
            item: dict[str, Any] = {"from": origin, "use": jwk.use_type or "SIGNATURE"}
            item["alg"] = jwk.algorithm
            if jwk.kid and not self._kid_made(project, jwk.name, jwk.kid):
                item["kid"] = jwk.kid
            if jwk.description:
                item["description"] = jwk.description
            sources[kind].add(jwk.source_id)
            out[jwk.name] = item
        return out, sources

    def _kid_made(self, project: str, name: str, kid: str) -> bool:
        """Whether keyops made the kid (the RFC 7638 thumbprint, perhaps suffixed to keep
        it unique): such a kid is left out, so the JWK gets one the same way again."""
        full = self.client.jwks.get(project, name).jwk or {}
        try:
            thumbprint = key_thumbprint(full)
        except JwkError:
            return False
        return kid == thumbprint or kid.startswith(thumbprint + "-")

    def project(self, project: str) -> dict[str, Any]:
        jwks, sources = self.jwks(project)
        section = {
            "certificates": self.certificates(project, sources["certificate"]),
            "keys": self.keys(project, sources["key"]),
            "keystores": self.keystores(project, sources["keystore"]),
            "jwks": jwks,
        }
        return {k: v for k, v in section.items() if v}


def dump(
    client: Client,
    projects: Sequence[str],
    *,
    secrets: SecretMode = "env",
    directory: Path | None = None,
) -> str:
    """The projects' certificates, keys, keystores and derived JWKs as keyops.yaml text.

    ``directory`` is where the YAML goes: secret files (``secrets="file"``) and keystore
    files are written under it, and referenced relative to it."""
    writer = _Writer(client, secrets, directory)
    doc = {"version": 1, "projects": {p: writer.project(p) for p in projects}}
    header = ["# keyops.yaml written by keyops dump"]
    if writer.variables:
        header.append("# Set before apply: " + ", ".join(dict.fromkeys(writer.variables)))
    header += [f"# Note: {n}" for n in writer.notes]
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body
