"""Webhooks (admin only): global ones under ``/apiops/admin/webhooks/``, a project's under
``/apiops/projects/{projectName}/webhooks/``. The secret is in the create's answer only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Query
from sqlalchemy.orm import Session

from keyops.api.deps import AdminPrincipal, KeyopsDep
from keyops.api.responses import result, result_list
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import SuccessRead
from keyops.api.schemas.webhooks import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead
from keyops.domain.projects import ProjectService
from keyops.domain.webhooks import WebhookService, events_of

if TYPE_CHECKING:
    # Only to annotate the shapes: routers reach storage through their dependencies.
    from keyops.storage.models import Project, Webhook, WebhookDelivery

router = SlashAgnosticRouter(prefix="/apiops", tags=["webhooks"])

ADMIN = "/admin/webhooks"
PROJECT = "/projects/{projectName}/webhooks"
DeliveryLimit = Query(100, ge=1, le=1000, description="How many, newest first.")


def _read(webhook: Webhook, project_name: str | None) -> WebhookRead:
    return WebhookRead(
        id=webhook.id,
        project_name=project_name,
        url=webhook.url,
        events=events_of(webhook),
        created_at=webhook.created_at,
        created_by=webhook.created_by,
    )


def _delivery(d: WebhookDelivery) -> dict[str, Any]:
    return DeliveryRead(
        id=d.id,
        webhook_id=d.webhook_id,
        event=d.event,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        updated_at=d.updated_at,
        delivered_at=d.delivered_at,
        payload=json.loads(d.payload),
    ).model_dump(mode="json", by_alias=True)


def _project(session: Session, name: str | None) -> Project | None:
    return ProjectService(session).get(name) if name is not None else None


async def _create(
    k: KeyopsDep, project_name: str | None, body: WebhookCreate, author: str
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        project = _project(session, project_name)
        made = WebhookService(session, k.keyring).create(project, body.url, body.events, author)
        read = _read(made.webhook, project.name if project is not None else None)
        created = WebhookCreated(**read.model_dump(), secret=made.secret)
        return result(created.model_dump(mode="json", by_alias=True))

    return await k.db.write(work)


async def _list(k: KeyopsDep, project_name: str | None, *, every: bool) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        service = WebhookService(session, k.keyring)
        hooks = service.listing(_project(session, project_name), every=every)
        names = service.project_names(hooks)
        return result_list(
            _read(w, names.get(w.project_id) if w.project_id is not None else None).model_dump(
                mode="json", by_alias=True
            )
            for w in hooks
        )

    return await k.db.read(work)


async def _delete(k: KeyopsDep, project_name: str | None, webhook_id: int) -> SuccessRead:
    def work(session: Session) -> SuccessRead:
        service = WebhookService(session, k.keyring)
        project = _project(session, project_name)
        service.delete(service.get(webhook_id, project, every=project is None))
        return SuccessRead()

    return await k.db.write(work)


async def _deliveries(
    k: KeyopsDep, project_name: str | None, webhook_id: int, limit: int
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        service = WebhookService(session, k.keyring)
        project = _project(session, project_name)
        webhook = service.get(webhook_id, project, every=project is None)
        return result_list(_delivery(d) for d in service.deliveries(webhook, limit))

    return await k.db.read(work)


# --- global (and every webhook, for admins) ------------------------------------------


@router.post(f"{ADMIN}/", summary="Create a global webhook")
async def create_global(
    body: WebhookCreate, principal: AdminPrincipal, k: KeyopsDep
) -> dict[str, Any]:
    return await _create(k, None, body, principal.username)


@router.get(f"{ADMIN}/", summary="List every webhook (global and per project)")
async def list_all(_: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    return await _list(k, None, every=True)


@router.delete(f"{ADMIN}/{{webhookId}}/", summary="Delete a webhook", response_model=SuccessRead)
async def delete_any(webhookId: int, _: AdminPrincipal, k: KeyopsDep) -> SuccessRead:
    return await _delete(k, None, webhookId)


@router.get(f"{ADMIN}/{{webhookId}}/deliveries/", summary="List a webhook's deliveries")
async def deliveries_any(
    webhookId: int, _: AdminPrincipal, k: KeyopsDep, limit: int = DeliveryLimit
) -> dict[str, Any]:
    return await _deliveries(k, None, webhookId, limit)


# --- a project's ---------------------------------------------------------------------


@router.post(f"{PROJECT}/", summary="Create a project's webhook")
async def create_in_project(
    projectName: str, body: WebhookCreate, principal: AdminPrincipal, k: KeyopsDep
) -> dict[str, Any]:
    return await _create(k, projectName, body, principal.username)


@router.get(f"{PROJECT}/", summary="List a project's webhooks")
async def list_in_project(projectName: str, _: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    return await _list(k, projectName, every=False)


@router.delete(
    f"{PROJECT}/{{webhookId}}/", summary="Delete a project's webhook", response_model=SuccessRead
)
async def delete_in_project(
    projectName: str, webhookId: int, _: AdminPrincipal, k: KeyopsDep
) -> SuccessRead:
    return await _delete(k, projectName, webhookId)


@router.get(f"{PROJECT}/{{webhookId}}/deliveries/", summary="List a project webhook's deliveries")
async def deliveries_in_project(
    projectName: str, webhookId: int, _: AdminPrincipal, k: KeyopsDep, limit: int = DeliveryLimit
) -> dict[str, Any]:
    return await _deliveries(k, projectName, webhookId, limit)
