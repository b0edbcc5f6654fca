"""Keystores: create, list, get, update, delete; the files are parsed between the checks
and the write, outside any transaction (``domain/keystores.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from keyops.api.deps import Keyops
from keyops.api.resources import ResourceRoutes, Service
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import ResultList
from keyops.api.schemas.keys import KeystoreBody, KeystoreRead, keystore_environment
from keyops.domain.keystore_parsing import parse_all
from keyops.domain.keystores import KeystoreEnvironmentInput, KeystoreInput, KeystoreService
from keyops.domain.material import file_of

if TYPE_CHECKING:
    # Only to annotate the shapes: routers reach storage through their dependencies.
    from keyops.storage.models import Keystore, Project

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


def _shape(
    service: Service, keystore: Keystore, names: dict[int, str], project: Project, full: bool
) -> dict[str, Any]:
    rows = []
    for row in keystore.environments:
        data = file_of(row, service.keyring)
        rows.append(
            keystore_environment(names[row.environment_id], row.store_type, data, row.entries_json)
        )
    return {
        "name": keystore.name,
        "description": keystore.description,
        "projectId": project.name,
        "keyStoreEnvironmentList": rows,
    }


def _service(k: Keyops, session: Any) -> KeystoreService:
    return KeystoreService(session, k.environments(session), k.keyring)


async def _parse(k: Keyops, project: Project, inp: KeystoreInput, name: str | None) -> Any:
    """The cheap checks in a read, then the parse with no transaction open."""
    jobs = await k.db.read(lambda s: _service(k, s).parse_jobs(project, inp, name=name))
    return replace(inp, parsed=await parse_all(jobs))


routes = ResourceRoutes(
    router,
    "keystore",
    "keystoreName",
    _service,
    _shape,
    ResultList[KeystoreRead],
    KeystoreBody,
    _input,
    _parse,
)
routes.add_create()
routes.add_list()
routes.add_get()
routes.add_update()
routes.add_delete()
routes.add_history()
