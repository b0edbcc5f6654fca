"""create_app(): middleware, exception handlers, routers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import yaml
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from keyops import metrics
from keyops.api import metrics as metrics_api
from keyops.api import openapi_docs, query_params
from keyops.api.deps import Keyops
from keyops.api.errors import BodyLimitMiddleware, InputGuardMiddleware, install_error_handlers
from keyops.api.openapi import contract_openapi
from keyops.api.request_context import RequestContextMiddleware
from keyops.api.responses import ContractJSONResponse
from keyops.api.routers import (
    admin,
    audit,
    auth,
    certificates,
    deployments,
    environments,
    expiring,
    gateway,
    jwks,
    keys,
    keystores,
    projects,
    test,
    webhooks,
)
from keyops.config import Settings
from keyops.console import views as console
from keyops.deploy.registry import target_names
from keyops.deploy.service import Deployer
from keyops.domain import audit as audit_log
from keyops.domain import webhooks as webhook_events
from keyops.domain.alerts import ExpiryWatcher
from keyops.domain.bootstrap import ADMIN_USER, bootstrap
from keyops.domain.deliveries import DeliveryWorker
from keyops.domain.gateway_hub import NodeHub
from keyops.domain.masterkey import check_master_key, open_keyring
from keyops.secrets import Keyring
from keyops.storage.db import Database
from keyops.storage.migrate import upgrade_to_head

log = logging.getLogger("keyops")

DESCRIPTION = """keyops keeps TLS and CA certificates, crypto keys, keystores and JWKs per
project and rolls every change out to environments. It speaks the Apinizer Management
API (`/apiops/...`, Bearer personal access tokens).

Endpoints under `/apiops/admin/` are keyops additions for setting up an install
without a shell (users, tokens, projects, members, environments); they need
`ROLE_ADMIN`."""


def prepare_database(settings: Settings, db: Database, *, demo: bool) -> Keyring:
    """Migrate the schema, open and check the master key, and create first-run data.

    The key is opened after the migration, against what the database records: a new key
    file is made only for a database that records none (never beside sealed secrets).
    """
    upgrade_to_head(settings.async_database_url)
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    with db.transaction() as session:
        keyring = open_keyring(session, settings)
        check_master_key(session, keyring)
    with db.transaction() as session:
        outcome = bootstrap(
            session,
            admin_password=admin_password,
            demo=demo,
            known_targets=target_names(settings),
        )
    if outcome.generated_password is not None:
        # Shown once, on the console of the operator who started the first run.
        print(
            f"keyops: created user '{ADMIN_USER}' with generated password: "
            f"{outcome.generated_password}\n"
            "keyops: it is not shown again; set KEYOPS_ADMIN_PASSWORD before the first run"
            " to choose it.",
            file=sys.stderr,
            flush=True,
        )
    return keyring


def _render(document: dict[str, Any]) -> bytes:
    """A gateway snapshot as the API answers it (rendered once per revision)."""
    return bytes(ContractJSONResponse(document).body)


def _listen(settings: Settings, db: Database) -> None:
    """Hear other processes' commits: every replica on PostgreSQL, sibling workers on
    SQLite."""
    if not db.is_sqlite:
        dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        db.notifier.listen_postgres(dsn)
    elif settings.workers > 1 and db.engine.url.database:
        db.notifier.watch_sqlite(db.engine.url.database)


def _settle_heap() -> None:
    """Leave what start-up built out of the cyclic garbage collector's full passes.

    Everything alive once the service has started (modules, the routes and their models,
    SQLAlchemy's mappers, the keyring) lives as long as the process. Left in the
    collector's oldest generation, each full pass walks all of it: about 90 ms on this
    machine, landing in the middle of whichever request allocated last, which made it
    the slowest part of a 1,000-JWK re-derivation and of the seed update's p99. Frozen,
    a full pass walks only what requests have built since.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, demo: bool = False) -> FastAPI:
    """The keyops ASGI application."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database.of(settings)
        audit_log.install(db)  # every change's audit entry, appended with its commit
        app.state.db = db
        reconciler: asyncio.Task[None] | None = None
        background: list[asyncio.Task[None]] = []
        try:
            keyring = await anyio.to_thread.run_sync(
                lambda: prepare_database(settings, db, demo=demo)
            )
            deployer = Deployer(db, settings, keyring)
            app.state.keyring = keyring
            app.state.deployer = deployer
            nodes = NodeHub(db, keyring, settings, render=_render)
            app.state.keyops = Keyops(settings, db, keyring, deployer, nodes)
            _listen(settings, db)
            # Webhooks: failed roll-outs, expiry alerts and the sender of both.
            deployer.on_failed = webhook_events.deployment_failed
            # Resumes, at once, every roll-out a crash or restart cut short.
            reconciler = asyncio.create_task(deployer.run_reconciler())
            app.state.expiry_watcher = ExpiryWatcher(db, settings)
            app.state.webhook_worker = DeliveryWorker(db, settings, keyring)
            background += [
                asyncio.create_task(nodes.run()),
                asyncio.create_task(app.state.expiry_watcher.run()),
                asyncio.create_task(app.state.webhook_worker.run()),
            ]
            _settle_heap()
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if reconciler is not None:
                reconciler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reconciler
            db.notifier.close()
            await anyio.to_thread.run_sync(db.dispose)
            metrics.process_exited()

    app = FastAPI(
        title="keyops",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=ContractJSONResponse,
        openapi_url="/apiops/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.router.redirect_slashes = False
    install_error_handlers(app)
    query_params.install(app)  # unknown query parameters: 400, for every route below
    # Added first, so it runs inside the body limit: it reads JSON bodies whole.
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    # Outermost: the request id and audit context cover every answer, refusals included.
    app.add_middleware(RequestContextMiddleware)
    for module in (
        auth,
        test,
        projects,
        environments,
        deployments,
        certificates,
        jwks,
        keys,
        keystores,
        gateway,
        admin,
        webhooks,
        expiring,
        audit,
    ):
        app.include_router(module.router)
    app.include_router(console.router)  # the web console, a client of the routes above
    _install_openapi_routes(app)
    # Last, so its middleware is outermost: it times every answer.
    metrics_api.install(app, settings)
    return app


def _install_openapi_routes(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        # Built once, on first use: routes are all in place by then.
        if app.openapi_schema is None:
            app.openapi_schema = contract_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/apiops/openapi.yaml", include_in_schema=False)
    async def openapi_yaml() -> Response:
        document: dict[str, Any] = app.openapi()
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return Response(text, media_type="application/yaml")

    @app.get("/apiops/openapi", include_in_schema=False)
    async def openapi_page() -> HTMLResponse:
        return openapi_docs.swagger_page("/apiops/openapi.json", "keyops API")

    # Swagger UI's own files, packaged: the page works without internet access.
    @app.get(f"{openapi_docs.ASSETS_PATH}/{{version}}/{{name}}", include_in_schema=False)
    async def openapi_asset(version: str, name: str) -> Response:
        asset = openapi_docs.swagger_asset(version, name)
        return Response(asset.body, media_type=asset.media_type, headers=dict(asset.headers))
