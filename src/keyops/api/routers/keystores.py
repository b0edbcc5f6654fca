"""Keystores: create, list, get, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.orm import Session

from keyops.api.deps import DeployerProject, Keyops, KeyopsDep, ReaderProject
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.keys import KeystoreBody, keystore_environment
from keyops.domain.jwks import jwk_update_from_query
from keyops.domain.keystore_parsing import parse_all
from keyops.domain.keystores import KeystoreEnvironmentInput, KeystoreInput, KeystoreService
from keyops.domain.material import file_of
from keyops.secrets import Keyring
from keyops.storage.models import Keystore

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/keystores", tags=["keystores"])


def _input(body: KeystoreBody) -> KeystoreInput:
    return KeystoreInput(
        name=body.name,
        description=body.description,
        environments=[
            KeystoreEnvironmentInput(e.environment_name, e.type, e.file, e.password, e.key_password)
            for e in body.key_store_environment_list
        ],
    )


def _service(k: Keyops, session: Session) -> KeystoreService:
    return KeystoreService(session, k.environments(session), k.keyring)


def _read(
    keystore: Keystore, names: dict[int, str], project: str, keyring: Keyring
) -> dict[str, Any]:
    rows = []
    for row in keystore.environments:
        data = file_of(row, keyring)
        rows.append(
            keystore_environment(names[row.environment_id], row.store_type, data, row.entries_json)
        )
    return {
        "name": keystore.name,
        "description": keystore.description,
        "projectId": project,
        "keyStoreEnvironmentList": rows,
    }


@router.post("/", summary="Create keystore")
async def create_keystore(
    body: KeystoreBody, project: DeployerProject, k: KeyopsDep
) -> dict[str, Any]:
    inp = _input(body)
    jobs = await k.db.read(lambda s: _service(k, s).parse_jobs(project, inp, name=None))
    parsed = await parse_all(jobs)
    result = await k.deployer.change(lambda s: _service(k, s).create(project, inp, parsed).plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/", summary="List keystores")
async def list_keystores(project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
    def read(session: Session) -> list[dict[str, Any]]:
        stores, names = _service(k, session).listing(project)
        return [_read(store, names, project.name, k.keyring) for store in stores]

    rows = await k.db.read(read)
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


@router.get("/{keystoreName}/", summary="Get keystore")
async def get_keystore(keystoreName: str, project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        service = _service(k, session)
        store = service.get(project, keystoreName)
        return _read(store, service.environment_names(store), project.name, k.keyring)

    return {"success": True, "resultList": [await k.db.read(read)], "resultCount": 1}


@router.put("/{keystoreName}/", summary="Update keystore")
async def update_keystore(
    keystoreName: str,
    body: KeystoreBody,
    project: DeployerProject,
    k: KeyopsDep,
    updateReferencedJwks: Annotated[str | None, Query()] = None,
    jwkUpdateAction: Annotated[str | None, Query()] = None,
    updateScope: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    jwk_update = jwk_update_from_query(updateReferencedJwks, jwkUpdateAction, updateScope)
    inp = _input(body)
    jobs = await k.db.read(lambda s: _service(k, s).parse_jobs(project, inp, name=keystoreName))
    parsed = await parse_all(jobs)
    result = await k.deployer.change(
        lambda s: _service(k, s).update(project, keystoreName, inp, parsed, jwk_update).plan
    )
    return {"success": True, "deploymentResult": result.as_contract()}


@router.delete("/{keystoreName}/", summary="Delete keystore")
async def delete_keystore(
    keystoreName: str, project: DeployerProject, k: KeyopsDep
) -> dict[str, Any]:
    result = await k.deployer.change(
        lambda s: _service(k, s).delete(project, keystoreName).plan, undeploy=True
    )
    return {"success": True, "deploymentResult": result.as_contract()}
