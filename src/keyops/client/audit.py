"""The audit log (admin), what expires soon, and the test endpoints."""

from __future__ import annotations

from datetime import datetime

from keyops.client._ops import Call, Group, Mode, json_call, operation, seg
from keyops.client.admin_models import AuditEntry, ExpiringList
from keyops.client.models import ResultList

__all__ = ["Audit", "Expiring", "System"]


def _instant(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class Audit(Group[Mode]):
    """``GET /apiops/admin/audit/``: search, newest first, a page at a time."""

    @operation
    def search(
        self,
        *,
        user: str | None = None,
        project: str | None = None,
        kind: str | None = None,
        name: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        page: int | None = None,
        size: int | None = None,
    ) -> Call[ResultList[AuditEntry]]:
        """Entries matching every filter given; ``since``/``until`` are ISO-8601 instants
        (the ``from`` and ``to`` parameters). The answer has ``page``, ``size`` and
        ``total_count``."""
        params = {
            "user": user,
            "project": project,
            "kind": kind,
            "name": name,
            "from": _instant(since),
            "to": _instant(until),
            "page": page,
            "size": size,
        }
        return json_call("GET", "/apiops/admin/audit/", ResultList[AuditEntry], params=params)


class Expiring(Group[Mode]):
    """``GET /apiops/expiring/``."""

    @operation
    def list(self, within_days: int | None = None) -> Call[ExpiringList]:
        """Certificates, keystore entries and JWKs whose not-after is at most
        ``within_days`` (default 30) away, expired ones included, soonest first."""
        params = {"withinDays": within_days}
        return json_call("GET", "/apiops/expiring/", ExpiringList, params=params)


class System(Group[Mode]):
    """The test endpoints of the Apinizer API."""

    @operation
    def healthcheck(self) -> Call[str]:
        """``OK`` when the server is up (needs no token)."""
        return Call("GET", "/apiops/test/healthcheck", lambda r: r.text, authenticated=False)

    @operation
    def hello(self, name: str) -> Call[str]:
        """The secure hello: checks the token."""
        return Call("GET", f"/apiops/test/hello/{seg(name)}", lambda r: r.text)
