"""Certificates: create, list, get, update, delete, export, truststore."""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from keyops.api.deps import DeployerAccess, DeployerProject, Keyops, KeyopsDep, ReaderProject
from keyops.api.forms import read_form, single_file, single_text
from keyops.api.resources import (
    JwkUpdateParams,
    ResourceRoutes,
    Service,
    author_of,
    change_answer,
    update_answer,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.certificates import CertificateRead, certificate, truststore_certificate
from keyops.api.schemas.common import DeploymentRead, ResultList, SourceUpdateRead
from keyops.domain.certificates import (
    CertificateInput,
    CertificateService,
    parse_environment_list,
)
from keyops.domain.deployments import truststore
from keyops.domain.projects import ADMIN_PROJECT
from keyops.errors import BadRequest

if TYPE_CHECKING:
    # Only to annotate the shapes: routers reach storage through their dependencies.
    from keyops.storage.models import Certificate, Project

router = SlashAgnosticRouter(
    prefix="/apiops/projects/{projectName}/certificates", tags=["certificates"]
)

FIELDS = ("certificateName", "alias", "certificateDescription", "environmentList", "pemEncodedFile")
MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": list(FIELDS),
                    "properties": {
                        "certificateName": {"type": "string"},
                        "alias": {"type": "string"},
                        "certificateDescription": {"type": "string"},
                        "environmentList": {
                            "type": "string",
                            "description": "Comma-separated environment names",
                        },
                        "pemEncodedFile": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
# On update the name is in the path; sent in the form too, it must match.
MULTIPART_UPDATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    **MULTIPART_BODY["requestBody"]["content"]["multipart/form-data"]["schema"],
                    "required": [f for f in FIELDS if f != "certificateName"],
                }
            }
        },
    }
}


async def _read_input(request: Request, limit: int) -> CertificateInput:
    form = await read_form(request, allowed=FIELDS, file_field="pemEncodedFile", file_limit=limit)
    env_values = []
    for value in form.getlist("environmentList"):
        if not isinstance(value, str):
            raise BadRequest("environmentList must be a text field, not a file!")
        env_values.append(value)
    return CertificateInput(
        name=single_text(form, "certificateName"),
        alias=single_text(form, "alias"),
        description=single_text(form, "certificateDescription"),
        environment_names=parse_environment_list(env_values),
        pem=await single_file(form, "pemEncodedFile", limit),
    )


def _service(k: Keyops, session: Session) -> CertificateService:
    return CertificateService(session, k.environments(session), k.keyring)


def _shape(
    service: Service, cert: Certificate, names: dict[int, str], project: Project, full: bool
) -> dict[str, Any]:
    return certificate(cert, names, with_content=full)


routes = ResourceRoutes(
    router,
    "certificate",
    "certificateName",
    _service,
    _shape,
    ResultList[CertificateRead],
    cached_list=True,
)
CertificateList = ResultList[CertificateRead]


@router.post(
    "/",
    summary="Create certificate",
    openapi_extra=MULTIPART_BODY,
    response_model=DeploymentRead,
)
async def create_certificate(
    request: Request, project: DeployerProject, k: KeyopsDep
) -> dict[str, Any]:
    inp = await _read_input(request, k.settings.max_upload_bytes)
    return await change_answer(k, lambda s: _service(k, s).create(project, inp))


routes.add_list()


@router.get(
    "/truststore/{environmentName}/",
    summary="Get truststore certificates",
    response_model=CertificateList,
)
async def truststore_certificates(
    environmentName: str, project: ReaderProject, k: KeyopsDep
) -> dict[str, Any]:
    if project.name != ADMIN_PROJECT:
        raise BadRequest("Truststore certificates are only available in the admin project!")
    if not environmentName.strip():
        raise BadRequest("environmentName value can not be empty!")

    def read(session: Session) -> list[dict[str, Any]]:
        try:
            (env,) = k.environments(session).resolve_for_project([environmentName], project)
        except BadRequest:
            raise BadRequest(
                f"Environment ({environmentName}) is not found or user does not have privilege"
                " to access it!"
            ) from None
        return [truststore_certificate(e, env.name) for e in truststore(session, env)]

    rows = await k.db.read(read)
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


routes.add_get()


@router.put(
    "/{certificateName}/",
    summary="Update certificate",
    openapi_extra=MULTIPART_UPDATE_BODY,
    response_model=SourceUpdateRead,
)
async def update_certificate(
    certificateName: str,
    request: Request,
    access: DeployerAccess,
    k: KeyopsDep,
    jwk_update: JwkUpdateParams,
) -> dict[str, Any]:
    checked = jwk_update()
    project, author = access.project, author_of(k, access)
    inp = await _read_input(request, k.settings.max_upload_bytes)
    return await update_answer(
        k, lambda s: _service(k, s).update(project, certificateName, inp, checked, author)
    )


routes.add_delete()
routes.add_history()


@router.get(
    "/{certificateName}/export/",
    summary="Export certificate",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def export_certificate(
    certificateName: str, project: ReaderProject, k: KeyopsDep
) -> Response:
    def read(session: Session) -> tuple[Certificate, dict[int, str]]:
        service = _service(k, session)
        cert = service.get(project, certificateName)
        return cert, service.environment_names(cert)

    cert, names = await k.db.read(read)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for row in cert.environments:
            archive.writestr(f"{cert.name}-{names[row.environment_id]}.cer", row.der)
    data = buffer.getvalue()
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{cert.name}-certificates.zip"',
        },
    )
