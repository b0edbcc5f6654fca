"""Rendered list answers, kept per project until its resources change.

A list of thousands of certificates costs far more to build (rows, dates, JSON) than to
send. Each project counts the changes to its resources (``projects.content_revision``,
bumped in the change's own transaction by ``Deployer.stage`` and by deleting an
environment), and the caller's project is read with that count before the list is asked
for; a cached answer made at the same count is byte for byte what a new one would be.
Any replica's change is seen by every replica at its next request, since the count comes
from the database. Only lists of public material are cached (certificates, JWK
summaries): key and keystore lists carry secrets, which stay out of long-lived memory.

A paged or filtered list is kept under its own key (``list_cache_key``: the kind and the
query), on the same terms. A list filtered by expiry is never kept: its answer changes
with the clock, not with the project's content.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from keyops.api.responses import ContractJSONResponse
from keyops.domain.listing import ListQuery
from keyops.storage.models import Project

# The largest answers kept, in bytes, over all projects; the least recently used go.
MAX_BYTES = 64 * 1024 * 1024


def list_cache_key(kind: str, query: ListQuery) -> str | None:
    """The key of a list's answer: the kind alone for the whole list, the kind and the
    query for a page or a filtered list; None for one that must not be kept."""
    if query.until is not None:
        return None
    if query == ListQuery():
        return kind
    parts = (query.page, query.size, query.sort, query.descending)
    return f"{kind}{(*parts, query.name_prefix, query.environment)!r}"


class ListCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, str], tuple[int, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, project: Project, kind: str) -> bytes | None:
        if self.max_bytes <= 0:
            return None  # a cache of no size is off
        with self._lock:
            entry = self._entries.get((project.id, kind))
            if entry is None or entry[0] != project.content_revision:
                return None
            self._entries.move_to_end((project.id, kind))
            return entry[1]

    def put(self, project: Project, kind: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop((project.id, kind), None)
            if old is not None:
                self._size -= len(old[1])
            self._entries[(project.id, kind)] = (project.content_revision, body)
            self._size += len(body)
            while self._size > self.max_bytes:
                _key, (_rev, dropped) = self._entries.popitem(last=False)
                self._size -= len(dropped)

    async def answer(
        self,
        project: Project,
        kind: str,
        model: type[BaseModel],
        build: Callable[[], Awaitable[dict[str, Any]]],
    ) -> Response:
        """The cached answer for the project's list of ``kind``, or a new one, kept.

        A new one goes through ``model`` as FastAPI's ``response_model`` (with
        ``response_model_exclude_unset``) would, so a cached answer is the same bytes.
        """
        body = self.get(project, kind)
        if body is None:
            body = await _render(model, build)
            self.put(project, kind, body)
        return Response(body, media_type=ContractJSONResponse.media_type)

    async def fresh(
        self, model: type[BaseModel], build: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Response:
        """A new answer, shaped as ``answer`` shapes one, not kept."""
        return Response(await _render(model, build), media_type=ContractJSONResponse.media_type)


async def _render(model: type[BaseModel], build: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    shaped = model.model_validate(await build()).model_dump(
        mode="json", by_alias=True, exclude_unset=True
    )
    return bytes(ContractJSONResponse(shaped).body)
