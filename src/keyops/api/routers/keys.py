"""Crypto keys: create, list, get, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.orm import Session

from keyops.api.deps import DeployerProject, Keyops, KeyopsDep, ReaderProject
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.keys import KeyBody, key_environment
from keyops.domain.jwks import jwk_update_from_query
from keyops.domain.keys import KeyEnvironmentInput, KeyInput, KeyService
from keyops.domain.material import material_of
from keyops.secrets import Keyring
from keyops.storage.models import CryptoKey

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/keys", tags=["keys"])


def _input(body: KeyBody) -> KeyInput:
    return KeyInput(
        name=body.name,
        description=body.description,
        key_type=body.key_type,
        environments=[
            KeyEnvironmentInput(e.environment_name, e.public_key, e.private_key)
            for e in body.crypto_key_info_environment_list
        ],
    )


def _service(k: Keyops, session: Session) -> KeyService:
    return KeyService(session, k.environments(session), k.keyring)


def _read(key: CryptoKey, names: dict[int, str], project: str, keyring: Keyring) -> dict[str, Any]:
    return {
        "name": key.name,
        "description": key.description,
        "projectId": project,
        "keyType": key.key_type,
        "cryptoKeyInfoEnvironmentList": [
            key_environment(names[row.environment_id], material_of(row, key.key_type, keyring))
            for row in key.environments
        ],
    }


@router.post("/", summary="Create key")
async def create_key(body: KeyBody, project: DeployerProject, k: KeyopsDep) -> dict[str, Any]:
    inp = _input(body)
    result = await k.deployer.change(lambda s: _service(k, s).create(project, inp).plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/", summary="List keys")
async def list_keys(project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
    def read(session: Session) -> list[dict[str, Any]]:
        keys, names = _service(k, session).listing(project)
        return [_read(key, names, project.name, k.keyring) for key in keys]

    rows = await k.db.read(read)
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


@router.get("/{keyName}/", summary="Get key")
async def get_key(keyName: str, project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        service = _service(k, session)
        key = service.get(project, keyName)
        return _read(key, service.environment_names(key), project.name, k.keyring)

    return {"success": True, "resultList": [await k.db.read(read)], "resultCount": 1}


@router.put("/{keyName}/", summary="Update key")
async def update_key(
    keyName: str,
    body: KeyBody,
    project: DeployerProject,
    k: KeyopsDep,
    updateReferencedJwks: Annotated[str | None, Query()] = None,
    jwkUpdateAction: Annotated[str | None, Query()] = None,
    updateScope: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    jwk_update = jwk_update_from_query(updateReferencedJwks, jwkUpdateAction, updateScope)
    inp = _input(body)
    result = await k.deployer.change(
        lambda s: _service(k, s).update(project, keyName, inp, jwk_update).plan
    )
    return {"success": True, "deploymentResult": result.as_contract()}


@router.delete("/{keyName}/", summary="Delete key")
async def delete_key(keyName: str, project: DeployerProject, k: KeyopsDep) -> dict[str, Any]:
    result = await k.deployer.change(
        lambda s: _service(k, s).delete(project, keyName).plan, undeploy=True
    )
    return {"success": True, "deploymentResult": result.as_contract()}
