"""One definition per call, run by a sync or an async transport.

Each operation of a resource group is written once, as a method that returns a
``Call``: the request to send and the parser of its answer. The ``operation`` decorator
turns it into a method that sends that request, through ``httpx.Client`` on a
``Group[Sync]`` (returns the result) or ``httpx.AsyncClient`` on a ``Group[Async]``
(returns an awaitable of it). Nothing about a call is written twice, and mypy sees
each method's parameters and result in both forms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from keyops.client.errors import TransportError, error_from

__all__ = [
    "Async",
    "Call",
    "Group",
    "Sync",
    "first_call",
    "json_call",
    "operation",
    "result_call",
    "seg",
    "success_call",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
Mode = TypeVar("Mode", "Sync", "Async")

Params = Mapping[str, str | int | bool | None]


def seg(value: str | int) -> str:
    """A path segment from a name: every character that is not unreserved is escaped."""
    return quote(str(value), safe="")


def _query(params: Params | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params | None = None
    json: Any = None
    data: Mapping[str, str] | None = None
    files: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # The token endpoint takes credentials, not a bearer token.
    authenticated: bool = True

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        request = http.build_request(
            self.method,
            self.path,
            params=_query(self.params),
            json=self.json,
            data=self.data,
            files=self.files,
            headers=dict(self.headers),
        )
        if not self.authenticated:
            request.headers.pop("Authorization", None)
        return request

    def result(self, response: httpx.Response) -> T:
        if response.status_code >= 400:
            raise error_from(response)
        return self.parse(response)


def json_call(
    method: str, path: str, model: type[M], *, params: Params | None = None, json: Any = None
) -> Call[M]:
    """A call whose answer is the JSON of ``model``."""
    return Call(method, path, lambda r: model.model_validate(r.json()), params=params, json=json)


class Sync:
    """Marks a group run by ``httpx.Client``."""


class Async:
    """Marks a group run by ``httpx.AsyncClient``."""


class Group(Generic[Mode]):
    """A resource group: its operations run on the client's HTTP connection pool."""

    def __init__(self, http: httpx.Client | httpx.AsyncClient) -> None:
        self._http = http

    def _run_sync(self, call: Call[T]) -> T:
        assert isinstance(self._http, httpx.Client)
        try:
            response = self._http.send(call.request(self._http))
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return call.result(response)

    async def _run_async(self, call: Call[T]) -> T:
        assert isinstance(self._http, httpx.AsyncClient)
        try:
            response = await self._http.send(call.request(self._http))
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return call.result(response)


class operation(Generic[P, T]):
    """Make a ``Call``-building method of a group into the method that runs it."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, group: Group[Sync], owner: Any) -> Callable[P, T]: ...

    @overload
    def __get__(self, group: Group[Async], owner: Any) -> Callable[P, Awaitable[T]]: ...

    @overload
    def __get__(self, group: None, owner: Any) -> operation[P, T]: ...

    def __get__(self, group: Group[Any] | None, owner: Any) -> Any:
        if group is None:
            return self
        build = self._build
        run = group._run_async if isinstance(group._http, httpx.AsyncClient) else group._run_sync

        def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(build(group, *args, **kwargs))

        bound.__name__ = self.__name__
        bound.__doc__ = self.__doc__
        return bound

    def call(self, group: Group[Any], *args: P.args, **kwargs: P.kwargs) -> Call[T]:
        """The request this operation would send, without sending it."""
        return self._build(group, *args, **kwargs)


# --- the envelopes -------------------------------------------------------------------


def result_call(
    method: str, path: str, model: type[M], *, params: Params | None = None, json: Any = None
) -> Call[M]:
    """A call answered by ``{"success": true, "result": {...}}``: the object."""
    return Call(
        method, path, lambda r: model.model_validate(r.json()["result"]), params=params, json=json
    )


def first_call(method: str, path: str, model: type[M]) -> Call[M]:
    """A get answered by a list of one: the one."""
    return Call(method, path, lambda r: model.model_validate(r.json()["resultList"][0]))


def success_call(method: str, path: str, *, params: Params | None = None) -> Call[None]:
    """A call answered by ``{"success": true}``."""
    return Call(method, path, lambda r: None, params=params)
