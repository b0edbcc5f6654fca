"""Certificates: list, get, create, update (the seed), delete, export, truststore."""

from __future__ import annotations

from collections.abc import Sequence

from keyops.client._ops import Call, Mode, first_call, json_call, operation, seg
from keyops.client._resources import (
    JwkUpdateAction,
    UpdateScope,
    Versioned,
    jwk_update,
    list_params,
)
from keyops.client.models import Certificate, Change, ResultList

__all__ = ["Certificates"]

ADMIN_PROJECT = "admin"


def _form(
    name: str | None,
    alias: str,
    description: str,
    environments: Sequence[str],
    pem: bytes | str,
) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    if isinstance(environments, str):
        raise TypeError("environments is a sequence of names, not one string")
    data = {
        "alias": alias,
        "certificateDescription": description,
        "environmentList": ",".join(environments),
    }
    if name is not None:
        data = {"certificateName": name, **data}
    content = pem.encode() if isinstance(pem, str) else pem
    return data, {"pemEncodedFile": ("certificate.pem", content, "application/octet-stream")}


class Certificates(Versioned[Mode]):
    """``/apiops/projects/{project}/certificates/``."""

    _kind = "certificates"

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
    ) -> Call[ResultList[Certificate]]:
        """The project's certificates, without their content (decision 9)."""
        params = list_params(page, size, sort, name, environment, expiring_within_days)
        return json_call("GET", self._base(project), ResultList[Certificate], params=params)

    @operation
    def get(self, project: str, name: str) -> Call[Certificate]:
        """One certificate, with ``base64_encoded_content`` per environment."""
        return first_call("GET", self._one(project, name), Certificate)

    @operation
    def create(
        self,
        project: str,
        name: str,
        *,
        pem: bytes | str,
        environments: Sequence[str],
        alias: str | None = None,
        description: str | None = None,
    ) -> Call[Change]:
        """Upload a certificate (PEM or DER) to ``environments``; ``alias`` and
        ``description`` default to ``name`` (the contract requires both)."""
        data, files = _form(name, alias or name, description or name, environments, pem)
        return Call(
            "POST",
            self._base(project),
            lambda r: Change.model_validate(r.json()),
            data=data,
            files=files,
        )

    @operation
    def update(
        self,
        project: str,
        name: str,
        *,
        pem: bytes | str,
        environments: Sequence[str],
        alias: str | None = None,
        description: str | None = None,
        update_referenced_jwks: bool | None = None,
        jwk_update_action: JwkUpdateAction | None = None,
        update_scope: UpdateScope | None = None,
    ) -> Call[Change]:
        """Replace the certificate (the seed): environments left out are undeployed, and
        JWKs made from it are re-derived (``update_referenced_jwks=True`` with an
        ``update_scope``) or detached (the default)."""
        data, files = _form(None, alias or name, description or name, environments, pem)
        return Call(
            "PUT",
            self._one(project, name),
            lambda r: Change.model_validate(r.json()),
            params=jwk_update(update_referenced_jwks, jwk_update_action, update_scope),
            data=data,
            files=files,
        )

    @operation
    def delete(self, project: str, name: str) -> Call[Change]:
        """Delete the certificate and undeploy it everywhere."""
        return json_call("DELETE", self._one(project, name), Change)

    @operation
    def export(self, project: str, name: str) -> Call[bytes]:
        """The ZIP of the certificate's DER file per environment (``NAME-ENV.cer``)."""
        return Call("GET", self._one(project, name) + "export/", lambda r: r.content)

    @operation
    def truststore(
        self, environment: str, project: str = ADMIN_PROJECT
    ) -> Call[ResultList[Certificate]]:
        """The truststore certificates deployed to an environment (admin project only)."""
        path = f"{self._base(project)}truststore/{seg(environment)}/"
        return json_call("GET", path, ResultList[Certificate])
