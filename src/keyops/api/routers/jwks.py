"""JWKs: create from any source, parse-from-*, generate, list, get, update, delete."""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.api.deps import (
    DeployerDep,
    KeyringDep,
    SecurityDeployer,
    SecurityReader,
    SessionDep,
    SettingsDep,
    environment_service,
    visible_project,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.jwks import (
    JwkCreate,
    JwkFromCertificate,
    JwkFromClipboard,
    JwkFromKey,
    JwkFromKeystore,
    JwkFromUrl,
    JwkGenerate,
    JwkUpdateBody,
    jwk_detail,
    jwk_summary,
)
from keyops.config import Settings
from keyops.deploy.service import Deployer, commit_and_roll_out
from keyops.domain.jwks import GenerateInput, JwkInput, JwkService, generate_from_input
from keyops.errors import BadRequest
from keyops.net.fetch import FetchError, FetchPolicy, fetch_json, parse_allow_list
from keyops.secrets import Keyring
from keyops.storage.models.base import utcnow

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/jwks", tags=["jwks"])


def _service(session: AsyncSession, settings: Settings, keyring: Keyring) -> JwkService:
    return JwkService(session, environment_service(session, settings), keyring)


async def _fetch(inp: JwkInput, body: JwkCreate | JwkFromUrl, settings: Settings) -> Any:
    """Fetch a URL source. Called with no transaction open: it may take seconds."""
    try:
        policy = FetchPolicy(
            connect_timeout_ms=body.url_option_connect_timeout or 5000,
            read_timeout_ms=body.url_option_read_timeout or 10000,
            size_limit=body.url_option_size_limit or 1024 * 1024,
            allow_networks=parse_allow_list(settings.url_allow_list),
        )
        return await fetch_json((inp.url or "").strip(), policy)
    except FetchError as exc:
        raise BadRequest(exc.reason) from None


async def _create(
    projectName: str,
    inp: JwkInput,
    body: JwkCreate | JwkFromUrl | None,
    principal: Any,
    session: AsyncSession,
    settings: Settings,
    keyring: Keyring,
    deployer: Deployer,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = _service(session, settings, keyring)
    fetched = None
    if (inp.source_type or "").strip() == "URL" and body is not None:
        # Cheap checks first, then let go of the database while the URL answers.
        await service.check_new_name(project, inp.name)
        if not (inp.url and inp.url.strip()):
            raise BadRequest("URL is required for URL source type!")
        await session.commit()
        fetched = await _fetch(inp, body, settings)
    change = await service.create(project, inp, fetched=fetched)
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.post("/", summary="Create JWK")
async def create_jwk(
    projectName: str,
    body: JwkCreate,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type=body.source_type,
        certificate_name=body.certificate_name,
        key_name=body.key_name,
        key_store_name=body.key_store_name,
        alias_name=body.alias_name,
        environment_name=body.environment_name,
        use_type=body.use_type,
        algorithm=body.algorithm,
        kid=body.kid,
        url=body.url,
        jwk_str=body.jwk_str,
    )
    return await _create(projectName, inp, body, principal, session, settings, keyring, deployer)


@router.post("/parse-from-url", summary="Parse JWK from URL")
async def parse_from_url(
    projectName: str,
    body: JwkFromUrl,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type="URL",
        url=body.url,
        kid=body.kid,
    )
    return await _create(projectName, inp, body, principal, session, settings, keyring, deployer)


@router.post("/parse-from-clipboard", summary="Parse JWK from clipboard")
async def parse_from_clipboard(
    projectName: str,
    body: JwkFromClipboard,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type="COPY_PASTE",
        jwk_str=body.jwk_str,
        kid=body.kid,
    )
    return await _create(projectName, inp, None, principal, session, settings, keyring, deployer)


@router.post("/parse-from-certificate", summary="Parse JWK from certificate")
async def parse_from_certificate(
    projectName: str,
    body: JwkFromCertificate,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type="CERTIFICATE",
        certificate_name=body.certificate_name,
        environment_name=body.environment_name,
        use_type=body.use_type,
        algorithm=body.algorithm,
        kid=body.kid,
    )
    return await _create(projectName, inp, None, principal, session, settings, keyring, deployer)


@router.post("/parse-from-key", summary="Parse JWK from key")
async def parse_from_key(
    projectName: str,
    body: JwkFromKey,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type=body.source_type or "PUBLIC_KEY",
        key_name=body.key_name,
        environment_name=body.environment_name,
        use_type=body.use_type,
        algorithm=body.algorithm,
        kid=body.kid,
    )
    if inp.source_type not in ("PUBLIC_KEY", "PRIVATE_KEY"):
        raise BadRequest("sourceType must be PUBLIC_KEY or PRIVATE_KEY!")
    return await _create(projectName, inp, None, principal, session, settings, keyring, deployer)


@router.post("/parse-from-keystore", summary="Parse JWK from keystore")
async def parse_from_keystore(
    projectName: str,
    body: JwkFromKeystore,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type="KEYSTORE",
        key_store_name=body.key_store_name,
        environment_name=body.environment_name,
        alias_name=body.alias_name,
        use_type=body.use_type,
        algorithm=body.algorithm,
        kid=body.kid,
    )
    return await _create(projectName, inp, None, principal, session, settings, keyring, deployer)


@router.post("/generate", summary="Generate JWK")
async def generate(
    projectName: str,
    body: JwkGenerate,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = _service(session, settings, keyring)
    kty = (body.type or "").strip().upper()
    params = {"RSA": body.rsa, "EC": body.ec, "OCT": body.oct, "OKP": body.okp}.get(kty)
    inp = GenerateInput(body.name, body.description, body.type, body.kid, params)
    await service.check_new_name(project, inp.name)
    # Key generation (RSA 4096 takes a while) runs in a worker thread with no
    # transaction open, so the database and the event loop stay free meanwhile.
    await session.commit()
    jwk = await anyio.to_thread.run_sync(generate_from_input, inp, utcnow())
    change = await service.generate(project, inp, jwk)
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/", summary="List JWKs")
async def list_jwks(
    projectName: str,
    principal: SecurityReader,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = _service(session, settings, keyring)
    rows = [
        jwk_summary(j, project.name, await service.source_name(j))
        for j in await service.list_in_project(project)
    ]
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


@router.get("/{jwkName}/", summary="Get JWK")
async def get_jwk(
    projectName: str,
    jwkName: str,
    principal: SecurityReader,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = _service(session, settings, keyring)
    jwk = await service.get(project, jwkName)
    item = jwk_detail(jwk, project.name, await service.source_name(jwk), service.full(jwk))
    return {"success": True, "resultList": [item], "resultCount": 1}


@router.put("/{jwkName}/", summary="Update JWK")
async def update_jwk(
    projectName: str,
    jwkName: str,
    body: JwkUpdateBody,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = _service(session, settings, keyring)
    change = await service.update(project, jwkName, body.name, body.description)
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.delete("/{jwkName}/", summary="Delete JWK")
async def delete_jwk(
    projectName: str,
    jwkName: str,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = _service(session, settings, keyring)
    change = await service.delete(project, jwkName)
    result = await commit_and_roll_out(session, deployer, change.plan, undeploy=True)
    return {"success": True, "deploymentResult": result.as_contract()}
