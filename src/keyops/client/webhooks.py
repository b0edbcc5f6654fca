"""Webhooks (admin): global ones, or a project's with ``project=``; their deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from keyops.client._ops import (
    Call,
    Group,
    Mode,
    json_call,
    operation,
    result_call,
    seg,
    success_call,
)
from keyops.client.admin_models import Delivery, Webhook
from keyops.client.models import ResultList

__all__ = ["Webhooks"]

EVENTS = ("expiry", "created", "replaced", "deleted", "deployment_failed")


def _base(project: str | None) -> str:
    if project is None:
        return "/apiops/admin/webhooks/"
    return f"/apiops/projects/{seg(project)}/webhooks/"


class Webhooks(Group[Mode]):
    """``/apiops/admin/webhooks/`` and ``/apiops/projects/{project}/webhooks/``."""

    @operation
    def create(
        self, url: str, *, events: Sequence[str] | None = None, project: str | None = None
    ) -> Call[Webhook]:
        """A webhook for ``events`` (all of ``EVENTS`` if ``None``), global or a
        project's; its signing ``secret`` is in this answer only."""
        body: dict[str, object] = {"url": url}
        if events is not None:
            if isinstance(events, str):
                raise TypeError("events is a sequence of event names, not one string")
            body["events"] = list(events)
        return result_call("POST", _base(project), Webhook, json=body)

    @operation
    def list(self, *, project: str | None = None) -> Call[ResultList[Webhook]]:
        """Every webhook (global and per project), or one project's."""
        return json_call("GET", _base(project), ResultList[Webhook])

    @operation
    def delete(self, webhook_id: int, *, project: str | None = None) -> Call[None]:
        """Delete a webhook with its deliveries."""
        return success_call("DELETE", f"{_base(project)}{seg(webhook_id)}/")

    @operation
    def deliveries(
        self, webhook_id: int, *, project: str | None = None, limit: int | None = None
    ) -> Call[ResultList[Delivery]]:
        """A webhook's deliveries, newest first (``limit`` 1 to 1000, default 100)."""
        path = f"{_base(project)}{seg(webhook_id)}/deliveries/"
        return json_call("GET", path, ResultList[Delivery], params={"limit": limit})
