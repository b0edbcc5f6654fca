"""Lists with paging and filters (``ListQuery``), for every kind, in a constant number of
statements.

Each kind answers ``Listed``: the page's resources (with their rows' environment names
for per-environment kinds) and, when a page was asked for, the total count. Filters
decided here:

- ``until`` (``expiringWithinDays``): certificates in SQL (any row's end date, in the
  asked environment if given); keystores and JWKs by their stored public dates (the
  keystore entries' summaries, the JWK's ``exp``), read first in one statement and then
  passed to the page's query as ids, so the page, its sort and its count stay in SQL.
  Keys have no not-after (a raw key carries no validity period): with the filter, a
  key list is empty.
- ``environment`` on JWKs: a JWK is deployed to every environment its project may use,
  so it matches every JWK of the project if the project may use that environment, none
  otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from keyops.domain.expiry import jwk_not_after, keystore_not_afters
from keyops.domain.jwks import JwkService
from keyops.domain.resources import PerEnvironmentService
from keyops.storage.models import Project
from keyops.storage.repositories.expiry import ExpiryRepository
from keyops.storage.repositories.paging import ListQuery, jwk_page

__all__ = ["ListQuery", "Listed", "jwk_listing", "resource_listing"]


@dataclass(frozen=True, slots=True)
class Listed:
    items: Sequence[Any]
    environment_names: dict[int, str] = field(default_factory=dict)
    # Only when a page was asked for.
    total: int | None = None


def resource_listing(
    service: PerEnvironmentService[Any, Any, Any, Any], project: Project, query: ListQuery
) -> Listed:
    """A certificate, key or keystore list as the query asks."""
    repo = service.repo
    only_ids = None
    if query.until is not None and service.kind != "certificate":
        if service.kind == "keystore":
            rows = ExpiryRepository(service.session).keystore_entries_of(
                project.id, query.environment
            )
            only_ids = {
                keystore_id
                for keystore_id, entries in rows
                if any(end <= query.until for _alias, end in keystore_not_afters(entries))
            }
        else:
            only_ids = set()
        query = replace(query, until=None)
    if only_ids is not None and not only_ids:
        return Listed([], {}, 0 if query.paged else None)
    items, names, total = repo.page(project.id, query, only_ids=only_ids)
    return Listed(items, names, total)


def jwk_listing(service: JwkService, project: Project, query: ListQuery) -> Listed:
    """A JWK list as the query asks."""
    if query.environment is not None:
        usable = {e.name for e in service.environments_of(project)}
        if query.environment not in usable:
            return Listed([], {}, 0 if query.paged else None)
    only_ids = None
    if query.until is not None:
        until = query.until
        docs = ExpiryRepository(service.session).jwk_documents_of(project.id)
        only_ids = {
            jwk_id
            for jwk_id, text in docs
            if (end := jwk_not_after(text)) is not None and end <= until
        }
        if not only_ids:
            return Listed([], {}, 0 if query.paged else None)
    jwks, total = jwk_page(service.session, project.id, query, only_ids=only_ids)
    return Listed(jwks, {}, total)
