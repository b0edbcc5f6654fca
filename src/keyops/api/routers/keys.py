"""Crypto keys: create, list, get, update, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyops.api.deps import Keyops
from keyops.api.resources import ResourceRoutes, Service
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import ResultList
from keyops.api.schemas.keys import KeyBody, KeyRead, key_environment
from keyops.domain.keys import KeyEnvironmentInput, KeyInput, KeyService
from keyops.domain.material import material_of

if TYPE_CHECKING:
    # Only to annotate the shapes: routers reach storage through their dependencies.
    from keyops.storage.models import CryptoKey, Project

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


def _shape(
    service: Service, key: CryptoKey, names: dict[int, str], project: Project, full: bool
) -> dict[str, Any]:
    return {
        "name": key.name,
        "description": key.description,
        "projectId": project.name,
        "keyType": key.key_type,
        "cryptoKeyInfoEnvironmentList": [
            key_environment(
                names[row.environment_id], material_of(row, key.key_type, service.keyring)
            )
            for row in key.environments
        ],
    }


def _service(k: Keyops, session: Any) -> KeyService:
    return KeyService(session, k.environments(session), k.keyring)


routes = ResourceRoutes(
    router, "key", "keyName", _service, _shape, ResultList[KeyRead], KeyBody, _input
)
routes.add_create()
routes.add_list()
routes.add_get()
routes.add_update()
routes.add_delete()
routes.add_history()
