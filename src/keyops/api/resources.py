"""The endpoints every per-environment resource shares: create, list, get, update, delete.

A router describes its kind once (``ResourceRoutes``) and adds the operations it has;
every operation runs through its kind's ``PerEnvironmentService``.

This module deliberately does not use ``from __future__ import annotations``: FastAPI
reads the endpoints' annotations at runtime, and the body type is the router's.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from keyops.api.deps import Access, DeployerAccess, Keyops, KeyopsDep, ReaderProject
from keyops.api.list_cache import list_cache_key
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import DeploymentRead, SourceUpdateRead
from keyops.api.schemas.listing import DatedListParams, ListParams, list_envelope, paged_answer
from keyops.api.schemas.versions import version_list_answer
from keyops.crypto.x509 import format_instant
from keyops.domain.history import ChangeAuthor, rollback_input, versions_of
from keyops.domain.jwks import JwkResult, JwkUpdate, jwk_results, jwk_update_from_query
from keyops.domain.listing import ListQuery, resource_listing
from keyops.domain.resources import PerEnvironmentService
from keyops.errors import BadRequest

if TYPE_CHECKING:
    from keyops.storage.models import Project

__all__ = ["JwkUpdateParams", "ResourceRoutes", "author_of", "change_answer", "update_answer"]

Service = PerEnvironmentService[Any, Any, Any, Any]
# The resource as the contract shows it; ``full`` is a get's (decision 9), else a list's.
Shape = Callable[[Service, Any, dict[int, str], "Project", bool], dict[str, Any]]
# Work done between the request and its write, outside any transaction (keystore parsing).
BeforeWrite = Callable[[Keyops, "Project", Any, "str | None"], Awaitable[Any]]


async def _jwk_update_params(
    updateReferencedJwks: Annotated[str | None, Query()] = None,
    jwkUpdateAction: Annotated[str | None, Query()] = None,
    updateScope: Annotated[str | None, Query()] = None,
) -> Callable[[], JwkUpdate]:
    # Checked when the endpoint runs, after the body: a bad body is reported first.
    return lambda: jwk_update_from_query(updateReferencedJwks, jwkUpdateAction, updateScope)


# The JWK parameters of an update (decision 4): call it to check them.
JwkUpdateParams = Annotated[Callable[[], JwkUpdate], Depends(_jwk_update_params)]


def author_of(k: Keyops, access: Access) -> ChangeAuthor:
    """Who makes a change, as its history records it."""
    return ChangeAuthor(access.principal.username, k.settings.history_keep)


def _version_number(request: Request, value: str | None) -> int:
    """``version`` of a rollback: once, and ASCII digits only (``str.isdigit`` also takes
    ``²``, which ``int`` refuses, and ``١``, which it reads as 1)."""
    if len(request.query_params.getlist("version")) > 1:
        # Which version to restore must never be a guess.
        raise BadRequest("version may be given only once!")
    if value is None or not value.strip():
        raise BadRequest("version value can not be empty!")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise BadRequest(f"version ({text}) must be a positive integer!")
    return int(text)


async def change_answer(
    k: Keyops, work: Callable[[Session], Any], *, undeploy: bool = False
) -> dict[str, Any]:
    """Run one change and answer its deployment result."""
    result = await k.deployer.change(work, undeploy=undeploy)
    return {"success": True, "deploymentResult": result.as_contract()}


async def update_answer(k: Keyops, work: Callable[[Session], Any]) -> dict[str, Any]:
    """Run a certificate, key or keystore update and answer its deployment result and
    what it did to the JWKs derived from it (``jwkResults``, ``[]`` when none)."""
    results: list[JwkResult] = []

    def unit(session: Session) -> Any:
        plan = work(session)
        results[:] = jwk_results(session)
        return plan

    result = await k.deployer.change(unit)
    return {
        "success": True,
        "deploymentResult": result.as_contract(),
        "jwkResults": [r.as_contract() for r in results],
    }


def _named(endpoint: Callable[..., Awaitable[Any]], param: str) -> Callable[..., Awaitable[Any]]:
    """The endpoint with its ``name`` parameter called ``param``, as the path names it."""
    signature = inspect.signature(endpoint)

    async def renamed(**kwargs: Any) -> Any:
        kwargs["name"] = kwargs.pop(param)
        return await endpoint(**kwargs)

    parameters = [
        p.replace(name=param) if p.name == "name" else p for p in signature.parameters.values()
    ]
    setattr(renamed, "__signature__", signature.replace(parameters=parameters))  # noqa: B010
    return renamed


@dataclass(frozen=True)
class ResourceRoutes:
    """One kind's shared endpoints, each added by its own method so that a router keeps
    its operations in its order; ``singular`` names them ("Get key", ``get_key``)."""

    router: SlashAgnosticRouter
    singular: str
    param: str
    service: Callable[[Keyops, Session], Service]
    shape: Shape
    # ResultList[<the kind's Read model>]
    answer: type[BaseModel]
    # For a JSON create and update: the body's model and the domain input it gives.
    body_type: type[BaseModel] | None = None
    to_input: Callable[[Any], Any] | None = None
    before_write: BeforeWrite | None = None
    # Lists of public material only (api/list_cache.py): kept until the project changes.
    cached_list: bool = False

    def _add(self, path: str, endpoint: Any, method: str, verb: str, **kwargs: Any) -> None:
        noun = self.singular + ("s" if verb == "list" else "")
        if path != "/":
            endpoint = _named(endpoint, self.param)
            path = "/{" + self.param + "}/"
        self.router.add_api_route(
            path,
            endpoint,
            methods=[method],
            summary=f"{verb.capitalize()} {noun}",
            name=f"{verb}_{noun}",
            **kwargs,
        )

    def add_list(self) -> None:
        """The list, with paging and filters (api/schemas/listing.py); certificates also
        sort by not-after."""

        async def list_all(project: ReaderProject, k: KeyopsDep, params: ListParams) -> Any:
            query = params()

            def read(session: Session) -> dict[str, Any]:
                service = self.service(k, session)
                listed = resource_listing(service, project, query)
                names = listed.environment_names
                rows = [self.shape(service, r, names, project, False) for r in listed.items]
                return list_envelope(rows, query, listed.total)

            async def build() -> dict[str, Any]:
                return await k.db.read(read)

            key = list_cache_key(self.singular, query)
            if self.cached_list and key is not None:
                return await k.lists.answer(project, key, self._list_model(query), build)
            return await build()

        if self.singular == "certificate":
            list_all.__annotations__["params"] = DatedListParams
        self._add(
            "/",
            list_all,
            "GET",
            "list",
            response_model=paged_answer(self.answer),
            response_model_exclude_unset=True,
        )

    def _list_model(self, query: ListQuery) -> type[BaseModel]:
        return paged_answer(self.answer) if query.paged else self.answer

    def add_get(self) -> None:
        async def get_one(name: str, project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
            def read(session: Session) -> dict[str, Any]:
                service = self.service(k, session)
                resource = service.get(project, name)
                names = service.environment_names(resource)
                return self.shape(service, resource, names, project, True)

            return {"success": True, "resultList": [await k.db.read(read)], "resultCount": 1}

        self._add("/{}/", get_one, "GET", "get", **self._read_answer())

    def add_delete(self) -> None:
        async def delete(name: str, access: DeployerAccess, k: KeyopsDep) -> dict[str, Any]:
            author = author_of(k, access)
            return await change_answer(
                k, lambda s: self.service(k, s).delete(access.project, name, author), undeploy=True
            )

        self._add("/{}/", delete, "DELETE", "delete", response_model=DeploymentRead)

    async def _prepared(self, k: Keyops, project: "Project", body: Any, name: str | None) -> Any:
        assert self.to_input is not None
        inp = self.to_input(body)
        if self.before_write is None:
            return inp
        return await self.before_write(k, project, inp, name)

    def add_create(self) -> None:
        async def create(body: self.body_type, access: DeployerAccess, k: KeyopsDep) -> Any:  # type: ignore[name-defined]
            project = access.project
            inp = await self._prepared(k, project, body, None)
            return await change_answer(k, lambda s: self.service(k, s).create(project, inp))

        self._add("/", create, "POST", "create", response_model=DeploymentRead)

    def add_update(self) -> None:
        async def update(
            name: str,
            body: self.body_type,  # type: ignore[name-defined]
            access: DeployerAccess,
            k: KeyopsDep,
            jwk_update: JwkUpdateParams,
        ) -> Any:
            checked = jwk_update()
            project, author = access.project, author_of(k, access)
            inp = await self._prepared(k, project, body, name)
            return await update_answer(
                k, lambda s: self.service(k, s).update(project, name, inp, checked, author)
            )

        self._add("/{}/", update, "PUT", "update", response_model=SourceUpdateRead)

    def add_history(self) -> None:
        """``GET .../{name}/versions/`` and ``POST .../{name}/rollback?version=N``."""

        async def versions(name: str, project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
            def read(session: Session) -> list[dict[str, Any]]:
                return [
                    {
                        "version": v.version,
                        "createdAt": format_instant(v.created_at),
                        "createdBy": v.created_by,
                        "reason": v.reason,
                        "description": v.description,
                        "environmentList": v.environments,
                    }
                    for v in versions_of(self.service(k, session), project, name)
                ]

            rows = await k.db.read(read)
            return {"success": True, "resultList": rows, "resultCount": len(rows)}

        async def rollback(
            name: str,
            request: Request,
            access: DeployerAccess,
            k: KeyopsDep,
            jwk_update: JwkUpdateParams,
            version: Annotated[str | None, Query()] = None,
        ) -> Any:
            checked = jwk_update()
            number = _version_number(request, version)
            project, author = access.project, author_of(k, access)
            inp, exists = await k.db.read(
                lambda s: rollback_input(self.service(k, s), project, name, number)
            )
            if self.before_write is not None:
                inp = await self.before_write(k, project, inp, name if exists else None)
            # A rollback is an update: its answer says what it did to the JWKs too
            # (``jwkResults``, ``[]`` for a re-created resource, which no JWK follows).
            if exists:
                return await update_answer(
                    k, lambda s: self.service(k, s).update(project, name, inp, checked, author)
                )
            return await update_answer(k, lambda s: self.service(k, s).create(project, inp))

        base = "/{" + self.param + "}/"
        listing = version_list_answer(self.singular)
        for path, endpoint, method, verb in (
            (base + "versions/", versions, "GET", "list_versions"),
            (base + "rollback/", rollback, "POST", "rollback"),
        ):
            self.router.add_api_route(
                path,
                _named(endpoint, self.param),
                methods=[method],
                summary=f"{verb.replace('_', ' ').capitalize()} of {self.singular}",
                name=f"{verb}_{self.singular}",
                response_model=SourceUpdateRead if method == "POST" else listing,
            )

    def _read_answer(self) -> dict[str, Any]:
        # A list leaves out what only a get shows (decision 9), rather than show it null.
        return {"response_model": self.answer, "response_model_exclude_unset": True}
