"""Paging, filters and expiry on lists: the query parameters, the paged envelope, and
the answer of ``GET /apiops/expiring/``.

Every parameter is optional and additive; without any, a list is the whole list by name,
as Apinizer clients expect. ``page`` is 0-based (Spring Data's ``Pageable``, which the
Apinizer API follows); ``size`` is 1 to 1,000 and a page is asked for once ``page`` or
``size`` is given (``page`` alone: ``size`` 20, Spring's default). A paged answer adds
``page``, ``size`` and ``totalCount`` to the envelope. ``sort`` is ``name`` or
``notAfter`` (where the kind has one in SQL: certificates), ascending, or descending as
``-name`` or Spring's ``name,desc``. ``name`` is a case-sensitive prefix; ``environment``
keeps resources deployed to that environment; ``expiringWithinDays=N`` keeps resources
with a not-after at most N days from now, expired ones included.

A parameter given twice, empty, or out of range is a ``400`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from pydantic import BaseModel, create_model

from keyops.api.schemas.common import CamelModel
from keyops.crypto.x509 import format_instant
from keyops.domain.expiry import Expiring
from keyops.domain.listing import ListQuery
from keyops.errors import BadRequest

__all__ = [
    "ExpiringList",
    "ExpiringRead",
    "ListParams",
    "expiring_item",
    "list_envelope",
    "paged_answer",
    "parse_days",
]

MAX_SIZE = 1000
DEFAULT_SIZE = 20
MAX_PAGE = 10**9
# About 270 years: far enough for any certificate, near enough for date arithmetic.
MAX_DAYS = 100_000
SORTS = ("name", "notAfter")
SORT_HELP = (
    "name or -name; certificates also notAfter or -notAfter (the soonest end date);"
    " Spring's form (name,asc, name,desc) too."
)


def _once(request: Request, name: str) -> None:
    if len(request.query_params.getlist(name)) > 1:
        raise BadRequest(f"{name} may be given only once!")


def _text(request: Request, name: str, value: str | None) -> str | None:
    _once(request, name)
    if value is None:
        return None
    if not value.strip():
        raise BadRequest(f"{name} value can not be empty!")
    return value.strip()


def _integer(request: Request, name: str, value: str | None, low: int, high: int) -> int | None:
    text = _text(request, name, value)
    if text is None:
        return None
    # ASCII digits only: ``str.isdigit`` also takes "²", which ``int`` refuses.
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise BadRequest(f"{name} ({text}) must be an integer between {low} and {high}!")
    return int(text)


def parse_days(request: Request, name: str, value: str | None) -> int | None:
    """A days parameter (``expiringWithinDays``, ``withinDays``): 0 to ``MAX_DAYS``."""
    return _integer(request, name, value, 0, MAX_DAYS)


def _sort(text: str | None, sorts: tuple[str, ...]) -> tuple[str, bool]:
    if text is None:
        return "name", False
    field, descending = text, False
    if text.startswith("-"):
        field, descending = text[1:], True
    elif "," in text:
        field, _, direction = text.partition(",")
        if direction.strip().lower() not in ("asc", "desc"):
            field = ""
        descending = direction.strip().lower() == "desc"
    field = field.strip()
    if field not in sorts:
        choices = ", ".join(f"{s}, -{s}" for s in sorts)
        raise BadRequest(f"sort ({text}) is not supported! Use one of: {choices}")
    return field, descending


def list_query(
    request: Request,
    *,
    sorts: tuple[str, ...],
    page: str | None,
    size: str | None,
    sort: str | None,
    name: str | None,
    environment: str | None,
    expiring_within_days: str | None,
    now: datetime,
) -> ListQuery:
    """The list's query from its parameters; BadRequest naming the first bad one."""
    page_number = _integer(request, "page", page, 0, MAX_PAGE)
    page_size = _integer(request, "size", size, 1, MAX_SIZE)
    field, descending = _sort(_text(request, "sort", sort), sorts)
    days = parse_days(request, "expiringWithinDays", expiring_within_days)
    if page_number is not None and page_size is None:
        page_size = DEFAULT_SIZE
    return ListQuery(
        page=page_number or 0,
        size=page_size,
        sort=field,
        descending=descending,
        name_prefix=_text(request, "name", name),
        environment=_text(request, "environment", environment),
        until=now + timedelta(days=days) if days is not None else None,
    )


def list_params(sorts: tuple[str, ...]) -> Any:
    """The list parameters as a dependency answering a function to call once the caller
    is authenticated (a bad parameter must not answer before a missing token does)."""

    async def dependency(
        request: Request,
        page: Annotated[str | None, Query(description="0-based page number.")] = None,
        size: Annotated[str | None, Query(description="Page size, 1 to 1000; paging on.")] = None,
        sort: Annotated[str | None, Query(description=SORT_HELP)] = None,
        name: Annotated[str | None, Query(description="Name prefix (case-sensitive).")] = None,
        environment: Annotated[
            str | None, Query(description="Only resources deployed to this environment.")
        ] = None,
        expiringWithinDays: Annotated[
            str | None,
            Query(description="Only resources with a not-after within N days (expired too)."),
        ] = None,
    ) -> Callable[[], ListQuery]:
        return lambda: list_query(
            request,
            sorts=sorts,
            page=page,
            size=size,
            sort=sort,
            name=name,
            environment=environment,
            expiring_within_days=expiringWithinDays,
            now=datetime.now(UTC),
        )

    return dependency


ListParams = Annotated[Callable[[], ListQuery], Depends(list_params(("name",)))]
# Certificates also sort by their soonest end date.
DatedListParams = Annotated[Callable[[], ListQuery], Depends(list_params(SORTS))]


@cache
def paged_answer(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` (a ``ResultList[...]``) with the paged envelope's ``page``, ``size`` and
    ``totalCount``, present only on a paged answer (``exclude_unset``)."""
    return create_model(
        f"Paged{model.__name__.replace('[', '_').replace(']', '')}",
        __base__=model,
        page=(int | None, None),
        size=(int | None, None),
        total_count=(int | None, None),
    )


def list_envelope(rows: list[Any], query: ListQuery, total: int | None) -> dict[str, Any]:
    """The list envelope, with the paging fields when a page was asked for."""
    body: dict[str, Any] = {"success": True, "resultList": rows, "resultCount": len(rows)}
    if query.paged:
        body.update(page=query.page, size=query.size, totalCount=total)
    return body


class ExpiringRead(CamelModel):
    """One not-after: a certificate, keystore entry or JWK in one environment."""

    project: str
    kind: Literal["certificate", "keystore", "jwk"]
    name: str
    # null for a JWK: JWKs are not stored per environment.
    environment: str | None
    # The keystore entry's alias; only on keystore entries.
    alias: str | None = None
    not_after: str
    # Whole days left, rounded down; negative once expired.
    days_left: int


class ExpiringList(CamelModel):
    success: bool = True
    result_list: list[ExpiringRead]
    result_count: int
    within_days: int


def expiring_item(e: Expiring) -> dict[str, Any]:
    item: dict[str, Any] = {
        "project": e.project,
        "kind": e.kind,
        "name": e.name,
        "environment": e.environment,
    }
    if e.alias is not None:
        item["alias"] = e.alias
    item.update(notAfter=format_instant(e.not_after), daysLeft=e.days_left)
    return item
