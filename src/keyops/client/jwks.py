"""JWKs: list, get, update, delete; create from a source, parse from each source, generate.

The parse-from-* calls name their source (a URL, pasted JWK text, a certificate, key or
keystore entry of the project or of the admin project); ``create`` is the generic form
of create-jwk.md (``source_type`` plus that source's fields); ``generate`` makes a new
key on the server.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic.alias_generators import to_camel

from keyops.client._ops import Call, Group, Mode, first_call, json_call, operation, seg
from keyops.client._resources import list_params
from keyops.client.models import Change, Jwk, ResultList

__all__ = ["Jwks"]

KeySource = Literal["PUBLIC_KEY", "PRIVATE_KEY"]


def _body(**fields: Any) -> dict[str, Any]:
    """A JSON body from snake_case fields, camelCase on the wire; ``None`` left out."""
    return {to_camel(k): v for k, v in fields.items() if v is not None}


class Jwks(Group[Mode]):
    """``/apiops/projects/{project}/jwks/``."""

    def _base(self, project: str) -> str:
        return f"/apiops/projects/{seg(project)}/jwks/"

    def _post(self, project: str, sub: str, body: dict[str, Any]) -> Call[Change]:
        return json_call("POST", self._base(project) + sub, Change, json=body)

    @operation
    def list(
        self,
        project: str,
        *,
        page: int | None = None,
        size: int | None = None,
        sort: str | None = None,
        name: str | None = None,
        environment: str | None = None,
        expiring_within_days: int | None = None,
    ) -> Call[ResultList[Jwk]]:
        """The project's JWKs, without key material (decision 9)."""
        params = list_params(page, size, sort, name, environment, expiring_within_days)
        return json_call("GET", self._base(project), ResultList[Jwk], params=params)

    @operation
    def get(self, project: str, name: str) -> Call[Jwk]:
        """One JWK, with its material and ``jwk``, the JWK itself."""
        return first_call("GET", f"{self._base(project)}{seg(name)}/", Jwk)

    @operation
    def update(
        self,
        project: str,
        name: str,
        *,
        new_name: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """Rename it or change its description (a JWK made from a source is detached)."""
        body = _body(name=new_name, description=description)
        return json_call("PUT", f"{self._base(project)}{seg(name)}/", Change, json=body)

    @operation
    def delete(self, project: str, name: str) -> Call[Change]:
        """Delete the JWK and undeploy it."""
        return json_call("DELETE", f"{self._base(project)}{seg(name)}/", Change)

    @operation
    def create(
        self, /, project: str, name: str, *, source_type: str, **fields: Any
    ) -> Call[Change]:
        """Create a JWK from any source (create-jwk.md): ``source_type`` URL, COPY_PASTE,
        CERTIFICATE, PUBLIC_KEY, PRIVATE_KEY or KEYSTORE, and that source's fields in
        snake_case (``certificate_name=...``, ``environment_name=...``, ``jwk_str=...``)."""
        return self._post(project, "", _body(name=name, source_type=source_type, **fields))

    @operation
    def parse_from_url(
        self,
        project: str,
        name: str,
        url: str,
        *,
        kid: str | None = None,
        description: str | None = None,
        connect_timeout_ms: int | None = None,
        read_timeout_ms: int | None = None,
        size_limit: int | None = None,
    ) -> Call[Change]:
        """A JWK fetched from ``url``; ``kid`` picks one from a JWK Set."""
        body = _body(
            name=name,
            description=description,
            url=url,
            kid=kid,
            url_option_connect_timeout=connect_timeout_ms,
            url_option_read_timeout=read_timeout_ms,
            url_option_size_limit=size_limit,
        )
        return self._post(project, "parse-from-url", body)

    @operation
    def parse_from_clipboard(
        self,
        project: str,
        name: str,
        jwk: str | Mapping[str, Any],
        *,
        kid: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """A JWK (or a JWK Set, with ``kid``) given as text or as a mapping."""
        text = jwk if isinstance(jwk, str) else jsonlib.dumps(dict(jwk))
        body = _body(name=name, description=description, jwk_str=text, kid=kid)
        return self._post(project, "parse-from-clipboard", body)

    @operation
    def parse_from_certificate(
        self,
        project: str,
        name: str,
        certificate_name: str,
        environment_name: str,
        *,
        use_type: str,
        algorithm: str,
        kid: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """A JWK of a certificate's public key, as deployed to one environment;
        ``use_type`` SIGNATURE or ENCRYPTION, ``algorithm`` one for the key (``ES256``)."""
        body = _body(
            name=name,
            description=description,
            certificate_name=certificate_name,
            environment_name=environment_name,
            use_type=use_type,
            algorithm=algorithm,
            kid=kid,
        )
        return self._post(project, "parse-from-certificate", body)

    @operation
    def parse_from_key(
        self,
        project: str,
        name: str,
        key_name: str,
        environment_name: str,
        *,
        source_type: KeySource = "PUBLIC_KEY",
        use_type: str,
        algorithm: str,
        kid: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """A JWK of a key's public half, or with ``source_type="PRIVATE_KEY"`` all of it."""
        body = _body(
            name=name,
            description=description,
            source_type=source_type,
            key_name=key_name,
            environment_name=environment_name,
            use_type=use_type,
            algorithm=algorithm,
            kid=kid,
        )
        return self._post(project, "parse-from-key", body)

    @operation
    def parse_from_keystore(
        self,
        project: str,
        name: str,
        keystore_name: str,
        alias_name: str,
        environment_name: str,
        *,
        use_type: str,
        algorithm: str,
        kid: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """A JWK of a keystore entry's key, as deployed to one environment."""
        body = _body(
            name=name,
            description=description,
            key_store_name=keystore_name,
            alias_name=alias_name,
            environment_name=environment_name,
            use_type=use_type,
            algorithm=algorithm,
            kid=kid,
        )
        return self._post(project, "parse-from-keystore", body)

    @operation
    def generate(
        self,
        project: str,
        name: str,
        type: str = "RSA",
        *,
        options: Mapping[str, Any] | None = None,
        kid: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """A new key made by the server: ``type`` RSA, EC, OCT or OKP, with that type's
        ``options`` as generate-jwk.md names them (``{"keySize": 2048, ...}``)."""
        body = _body(name=name, description=description, type=type, kid=kid)
        body[type.lower()] = dict(options or {})
        return self._post(project, "generate", body)
