"""``Client`` and ``AsyncClient``: the resource groups on one HTTP connection pool.

Both are built from the same groups (``_ops.py``): ``Client`` runs each call with
``httpx.Client`` and returns its result, ``AsyncClient`` with ``httpx.AsyncClient`` and
returns an awaitable. Use either as a context manager, or ``close()`` it.
"""

from __future__ import annotations

from typing import Any, Generic, Self

import httpx

from keyops.client._ops import Async, Mode, Sync
from keyops.client.admin import Auth, Tokens, Users
from keyops.client.audit import Audit, Expiring, System
from keyops.client.certificates import Certificates
from keyops.client.environments import Deployments, Environments, Nodes, Projects
from keyops.client.jwks import Jwks
from keyops.client.keys import Keys, Keystores
from keyops.client.webhooks import Webhooks

__all__ = ["DEFAULT_TIMEOUT", "AsyncClient", "Client"]

DEFAULT_TIMEOUT = 30.0


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class _Groups(Generic[Mode]):
    """Every resource group; ``Mode`` says how their calls run."""

    auth: Auth[Mode]
    system: System[Mode]
    projects: Projects[Mode]
    environments: Environments[Mode]
    deployments: Deployments[Mode]
    nodes: Nodes[Mode]
    certificates: Certificates[Mode]
    keys: Keys[Mode]
    keystores: Keystores[Mode]
    jwks: Jwks[Mode]
    users: Users[Mode]
    tokens: Tokens[Mode]
    webhooks: Webhooks[Mode]
    audit: Audit[Mode]
    expiring: Expiring[Mode]

    _http: httpx.Client | httpx.AsyncClient

    def _attach(self, http: httpx.Client | httpx.AsyncClient) -> None:
        self._http = http
        self.auth = Auth(http)
        self.system = System(http)
        self.projects = Projects(http)
        self.environments = Environments(http)
        self.deployments = Deployments(http)
        self.nodes = Nodes(http)
        self.certificates = Certificates(http)
        self.keys = Keys(http)
        self.keystores = Keystores(http)
        self.jwks = Jwks(http)
        self.users = Users(http)
        self.tokens = Tokens(http)
        self.webhooks = Webhooks(http)
        self.audit = Audit(http)
        self.expiring = Expiring(http)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def set_token(self, token: str | None) -> None:
        """Send ``token`` as the bearer token from now on (``None``: no token)."""
        self._http.headers.pop("Authorization", None)
        self._http.headers.update(_headers(token))


class Client(_Groups[Sync]):
    """A keyops (or Apinizer) server, called synchronously.

    ``Client(url, token)``; or ``Client.login(url, username, password)`` to get a token
    first. ``http`` takes a ready ``httpx.Client`` (its base URL is used); other keyword
    arguments go to the ``httpx.Client`` made here (``verify=``, ``transport=``, ...).
    """

    def __init__(
        self,
        base_url: str = "",
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
        **httpx_options: Any,
    ) -> None:
        if http is None:
            http = httpx.Client(base_url=base_url, timeout=timeout, **httpx_options)
        self._attach(http)
        self.http = http
        if token is not None:
            self.set_token(token)

    @classmethod
    def login(cls, base_url: str, username: str, password: str, **options: Any) -> Client:
        """A client holding a fresh access token for ``username``; ``Unauthorized`` on bad
        credentials."""
        client = cls(base_url, **options)
        try:
            client.set_token(client.auth.token(username, password).access_token)
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Groups[Async]):
    """The same as ``Client``, each call awaited (``httpx.AsyncClient``)."""

    def __init__(
        self,
        base_url: str = "",
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
        **httpx_options: Any,
    ) -> None:
        if http is None:
            http = httpx.AsyncClient(base_url=base_url, timeout=timeout, **httpx_options)
        self._attach(http)
        self.http = http
        if token is not None:
            self.set_token(token)

    @classmethod
    async def login(
        cls, base_url: str, username: str, password: str, **options: Any
    ) -> AsyncClient:
        """An async client holding a fresh access token for ``username``."""
        client = cls(base_url, **options)
        try:
            client.set_token((await client.auth.token(username, password)).access_token)
        except BaseException:
            await client.aclose()
            raise
        return client

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
