"""The web console at ``/console/``: server-rendered pages on the public API.

Every page is a client of ``/apiops/...`` through ``keyops.client`` with the logged-in
user's access token (``session.py``), called in process over ASGI: the console can do
exactly what that user may do through the API, its changes are audited as theirs (with
the browser's address), and nothing here reads storage. Forms post back here with the
session's CSRF token; each action answers the per-environment deployment result.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData, UploadFile

from keyops.client import AsyncClient, KeyopsError
from keyops.client.admin_models import EnvironmentDeployments, EnvironmentNodes
from keyops.client.errors import Unauthorized
from keyops.client.models import Change
from keyops.console import present
from keyops.console.session import (
    LOGIN_CSRF_COOKIE,
    ConsoleSession,
    clear_session,
    csrf_matches,
    new_csrf,
    read_session,
    set_login_csrf,
    write_session,
)
from keyops.crypto.x509 import format_instant
from keyops.secrets import Keyring

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

_templates = Environment(
    loader=PackageLoader("keyops.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["q"] = lambda value: quote(str(value), safe="")
_templates.filters["instant"] = lambda value: (
    format_instant(value) if isinstance(value, datetime) else str(value or "")
)

_STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}

KINDS: dict[str, str] = {
    "certificates": "Certificates",
    "keys": "Keys",
    "keystores": "Keystores",
    "jwks": "JWKs",
}
# The audit trail names kinds in the singular.
_AUDIT_KIND = {"certificates": "certificate", "keys": "key", "keystores": "keystore", "jwks": "jwk"}

# JWK generation presets: generate-jwk.md's type and options, one choice per line.
GENERATE_PRESETS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "rsa-rs256": (
        "RSA 2048, RS256 (signature)",
        "RSA",
        {"keySize": 2048, "keyUseType": "SIGNATURE", "algorithm": "RS256"},
    ),
    "rsa-ps256": (
        "RSA 3072, PS256 (signature)",
        "RSA",
        {"keySize": 3072, "keyUseType": "SIGNATURE", "algorithm": "PS256"},
    ),
    "rsa-oaep": (
        "RSA 2048, RSA-OAEP-256 (encryption)",
        "RSA",
        {"keySize": 2048, "keyUseType": "ENCRYPTION", "algorithm": "RSA-OAEP-256"},
    ),
    "ec-es256": (
        "EC P-256, ES256 (signature)",
        "EC",
        {"curveType": "P256", "keyUseType": "SIGNATURE", "algorithm": "ES256"},
    ),
    "ec-es384": (
        "EC P-384, ES384 (signature)",
        "EC",
        {"curveType": "P384", "keyUseType": "SIGNATURE", "algorithm": "ES384"},
    ),
    "okp-eddsa": (
        "OKP Ed25519, EdDSA (signature)",
        "OKP",
        {"curveType": "ED25519", "keyUseType": "SIGNATURE", "algorithm": "EdDSA"},
    ),
    "oct-hs256": (
        "oct 256 bits, HS256 (signature)",
        "OCT",
        {"keySize": 256, "keyUseType": "SIGNATURE", "algorithm": "HS256"},
    ),
}


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


@dataclass
class Page:
    """One request's console context: its session, its API client, and rendering."""

    request: Request
    session: ConsoleSession
    api: AsyncClient
    keyring: Keyring

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(
            self.request,
            template,
            status,
            session=self.session,
            keyring=self.keyring,
            **values,
        )

    async def result(
        self, title: str, change: Change, back: str, project: str | None = None
    ) -> HTMLResponse:
        """An action's answer: its deployment result per environment, in the full layout
        (the header's project links and switcher need the projects)."""
        if project is not None:
            context = await _project_context(self, project)
        else:
            context = {"projects": (await self.api.projects.list()).result_list}
        return self.render("result.html", title=title, change=change, back=back, **context)


def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    session: ConsoleSession | None = None,
    keyring: Keyring | None = None,
    **values: Any,
) -> HTMLResponse:
    body = _templates.get_template(template).render(
        session=session,
        csrf=session.csrf if session else values.pop("login_csrf", ""),
        kinds=KINDS,
        path=request.url.path,
        **values,
    )
    response = HTMLResponse(body, status_code=status)
    # Pages carry a user's material and CSRF token: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    if session is not None and keyring is not None:
        write_session(response, request, keyring, session)  # the idle window slides
    return response


def _keyring(request: Request) -> Keyring:
    keyring = request.app.state.keyops.keyring
    assert isinstance(keyring, Keyring)
    return keyring


def _idle(request: Request) -> float:
    return float(request.app.state.settings.console_idle_seconds)


def _api(request: Request, token: str | None) -> AsyncClient:
    """A client of this very application, in process, as the browser's address."""
    peer = request.client
    transport = httpx.ASGITransport(
        app=request.app, client=(peer.host, peer.port) if peer else ("127.0.0.1", 0)
    )
    return AsyncClient("http://keyops-console", token, transport=transport)


def _login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/console/login?next={quote(target, safe='')}"


def _safe_next(value: str | None) -> str:
    """Only a console path may be the target after login (no open redirect)."""
    if not value:
        return "/console/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return "/console/"
    return value


@asynccontextmanager
async def _page(request: Request) -> AsyncIterator[Page]:
    keyring = _keyring(request)
    session = read_session(request, keyring, _idle(request))
    if session is None:
        raise _Redirect(_login_url(request))
    api = _api(request, session.token)
    try:
        yield Page(request, session.touched(time.time()), api, keyring)
    except Unauthorized as exc:
        # The token expired or was revoked: log in again.
        raise _Redirect(_login_url(request)) from exc
    finally:
        await api.aclose()


Handler = Callable[[Page], Awaitable[Response]]


async def _run(request: Request, handler: Handler, *, post: FormData | None = None) -> Response:
    """Run ``handler`` in a page context; POSTs must carry the session's CSRF token."""
    try:
        async with _page(request) as page:
            if post is not None and not csrf_matches(page.session.csrf, post.get("csrf_token")):
                return page.render(
                    "error.html",
                    403,
                    title="Refused",
                    message="The form's CSRF token is missing or wrong: reload the page "
                    "and try again.",
                )
            try:
                return await handler(page)
            except Unauthorized:
                raise
            except KeyopsError as exc:
                return page.render(
                    "error.html",
                    exc.status if 400 <= exc.status < 600 else 502,
                    title="The server refused",
                    message=exc.error_description or str(exc),
                )
    except _Redirect as redirect:
        return RedirectResponse(redirect.url, status_code=303)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _file(form: FormData, name: str) -> bytes:
    value = form.get(name)
    if isinstance(value, UploadFile):
        return await value.read()
    return b""


def _checked(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str) and v]


async def _certificate_fields(form: FormData) -> dict[str, Any]:
    """The certificate form's fields, as the create and the update (the seed) take them."""
    return {
        "pem": await _file(form, "file"),
        "environments": _checked(form, "environments"),
        "alias": _text(form, "alias") or None,
        "description": _text(form, "description") or None,
    }


def _jwk_choice(value: str) -> dict[str, Any]:
    """The update's JWK option: re-derive in a scope, or detach (the server's default)."""
    if value in ("SAME_PROJECT", "ALL_PROJECTS"):
        return {"update_referenced_jwks": True, "update_scope": value}
    return {"jwk_update_action": "NULLIFY"}


def _base(project: str, kind: str) -> str:
    return f"/console/projects/{quote(project, safe='')}/{kind}/"


def _one(project: str, kind: str, name: str) -> str:
    return _base(project, kind) + quote(name, safe="") + "/"


# --- static assets, login, logout -------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media = _STATIC.get(name)
    if media is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    from importlib.resources import files

    body = (files("keyops.console") / "static" / name).read_bytes()
    return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=300"})


@router.get("/login")
async def login_page(request: Request, next: str | None = Query(default=None)) -> Response:
    csrf = new_csrf()
    response = render(
        request, "login.html", title="Log in to keyops", login_csrf=csrf, next=_safe_next(next)
    )
    set_login_csrf(response, request, csrf)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    target = _safe_next(_text(form, "next"))

    def again(status: int, message: str) -> Response:
        csrf = new_csrf()
        response = render(
            request,
            "login.html",
            status,
            title="Log in to keyops",
            login_csrf=csrf,
            next=target,
            error=message,
            username=_text(form, "username"),
        )
        set_login_csrf(response, request, csrf)
        return response

    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        return again(403, "The form's CSRF token is missing or wrong: try again.")
    username, password, token = _text(form, "username"), form.get("password"), _text(form, "token")
    api = _api(request, None)
    try:
        if token:
            api.set_token(token)
            me = await api.projects.list()  # proves the token; any user may list
            who = username or "token"
            del me
        elif username and isinstance(password, str) and password:
            token = (await api.auth.token(username, password)).access_token
            who = username
        else:
            return again(400, "Give a username and password, or a personal access token.")
    except Unauthorized:
        return again(401, "Bad credentials")
    except KeyopsError as exc:
        return again(exc.status, exc.error_description or str(exc))
    finally:
        await api.aclose()
    session = ConsoleSession(who, token, new_csrf(), time.time())
    response = RedirectResponse(target, status_code=303)
    write_session(response, request, _keyring(request), session)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    keyring = _keyring(request)
    session = read_session(request, keyring, _idle(request))
    if session is not None:
        if not csrf_matches(session.csrf, form.get("csrf_token")):
            return render(
                request,
                "error.html",
                403,
                session=session,
                keyring=keyring,
                title="Refused",
                message="The form's CSRF token is missing or wrong: reload the page.",
            )
        api = _api(request, None)
        try:
            await api.auth.revoke(session.token)  # the cookie is worth nothing from now
        except KeyopsError:
            pass
        finally:
            await api.aclose()
    response = RedirectResponse("/console/login", status_code=303)
    clear_session(response, request)
    return response


# --- dashboard, project switcher ------------------------------------------------------


@router.get("/")
async def dashboard(request: Request, days: int = Query(default=30, ge=0, le=3650)) -> Response:
    async def handle(page: Page) -> Response:
        projects = (await page.api.projects.list()).result_list
        expiring = await page.api.expiring.list(within_days=days)
        rows = [(e, present.badge(e.days_left)) for e in expiring.result_list]
        return page.render(
            "dashboard.html", title="Dashboard", projects=projects, rows=rows, days=days
        )

    return await _run(request, handle)


@router.get("/switch")
async def switch(request: Request, project: str = Query(default="")) -> Response:
    async def handle(page: Page) -> Response:
        if not project:
            return RedirectResponse("/console/", status_code=303)
        return RedirectResponse(_base(project, "certificates"), status_code=303)

    return await _run(request, handle)


async def _project_context(page: Page, project: str) -> dict[str, Any]:
    projects = (await page.api.projects.list()).result_list
    environments = (await page.api.environments.for_project(project)).result_list
    return {
        "projects": projects,
        "project": project,
        "environments": [e.name for e in environments],
    }


# --- lists ------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    description: str
    detail: str
    environments: list[str]
    badge: present.Badge | None


def _rows(kind: str, items: list[Any]) -> list[Row]:
    rows: list[Row] = []
    for item in items:
        if kind == "certificates":
            envs = [e.environment_name for e in item.certificate_environment_list]
            detail = ", ".join(sorted({e.subject_dn for e in item.certificate_environment_list}))
            badge = present.soonest(e.end_date for e in item.certificate_environment_list)
        elif kind == "keys":
            envs = [e.environment_name for e in item.crypto_key_info_environment_list]
            detail = item.key_type
            badge = None
        elif kind == "keystores":
            envs = [e.environment_name for e in item.key_store_environment_list]
            detail = ", ".join(sorted({e.type for e in item.key_store_environment_list}))
            badge = present.soonest(
                entry.end_date for e in item.key_store_environment_list for entry in e.entries
            )
        else:
            envs = [item.source_environment] if item.source_environment else []
            parts = [item.type, item.use_type or "", item.algorithm or "", item.kid or ""]
            detail = " · ".join(p for p in parts if p)
            badge = None
        rows.append(Row(item.name, item.description, detail, envs, badge))
    return rows


@router.get("/projects/{project}/{kind}/")
async def resource_list(
    request: Request,
    project: str,
    kind: str,
    q: str = Query(default=""),
    environment: str = Query(default=""),
    expiring: str = Query(default=""),
) -> Response:
    async def handle(page: Page) -> Response:
        if kind not in KINDS:
            return page.render("error.html", 404, title="Not found", message="No such page.")
        context = await _project_context(page, project)
        within = int(expiring) if expiring.strip().isdigit() else None
        group = getattr(page.api, kind)
        answer = await group.list(
            project, environment=environment or None, expiring_within_days=within
        )
        rows = [r for r in _rows(kind, answer.result_list) if q.lower() in r.name.lower()]
        return page.render(
            "list.html",
            title=f"{KINDS[kind]} of {project}",
            kind=kind,
            rows=rows,
            q=q,
            environment=environment,
            expiring=expiring,
            **context,
        )

    return await _run(request, handle)


# --- create / generate ------------------------------------------------------------------


async def _new_form(
    request: Request, project: str, kind: str, template: str, **values: Any
) -> Response:
    """A create form: the project's environments, the first one ticked."""

    async def handle(page: Page) -> Response:
        context = await _project_context(page, project)
        label = KINDS[kind][:-1].lower()
        return page.render(
            template,
            title=f"New {label} in {project}",
            kind=kind,
            checked=context["environments"][:1],
            **values,
            **context,
        )

    return await _run(request, handle)


@router.get("/projects/{project}/certificates/new")
async def certificate_new(request: Request, project: str) -> Response:
    return await _new_form(request, project, "certificates", "certificate_form.html", mode="new")


@router.post("/projects/{project}/certificates/new")
async def certificate_create(request: Request, project: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        name = _text(form, "name")
        change = await page.api.certificates.create(
            project, name, **await _certificate_fields(form)
        )
        return await page.result(
            f"Created certificate {name}", change, _one(project, "certificates", name), project
        )

    return await _run(request, handle, post=form)


@router.get("/projects/{project}/keystores/new")
async def keystore_new(request: Request, project: str) -> Response:
    return await _new_form(request, project, "keystores", "keystore_form.html")


@router.post("/projects/{project}/keystores/new")
async def keystore_create(request: Request, project: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        name = _text(form, "name")
        password = form.get("password")
        change = await page.api.keystores.create(
            project,
            name,
            environments=_checked(form, "environments"),
            file=await _file(form, "file"),
            store_type=_text(form, "type") or "PKCS12",
            password=password if isinstance(password, str) and password else None,
            description=_text(form, "description"),
        )
        return await page.result(
            f"Created keystore {name}", change, _one(project, "keystores", name), project
        )

    return await _run(request, handle, post=form)


@router.get("/projects/{project}/jwks/generate")
async def jwk_generate_page(request: Request, project: str) -> Response:
    async def handle(page: Page) -> Response:
        context = await _project_context(page, project)
        return page.render(
            "jwk_generate.html",
            title=f"Generate a JWK in {project}",
            kind="jwks",
            presets=GENERATE_PRESETS,
            **context,
        )

    return await _run(request, handle)


@router.post("/projects/{project}/jwks/generate")
async def jwk_generate(request: Request, project: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        name = _text(form, "name")
        preset = GENERATE_PRESETS.get(_text(form, "preset"))
        if preset is None:
            return page.render("error.html", 400, title="Refused", message="Choose a key type.")
        _label, key_type, options = preset
        change = await page.api.jwks.generate(
            project,
            name,
            key_type,
            options=options,
            kid=_text(form, "kid") or None,
            description=_text(form, "description") or None,
        )
        return await page.result(
            f"Generated JWK {name}", change, _one(project, "jwks", name), project
        )

    return await _run(request, handle, post=form)


def default_algorithm(key: str, use: str) -> str:
    """The usual JOSE algorithm for a certificate's key (``RSA 2048``, ``EC P-384``)."""
    if key.startswith("EC"):
        if use == "ENCRYPTION":
            return "ECDH-ES"
        return {"P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}.get(
            key.partition(" ")[2], "ES256"
        )
    if key.startswith("OKP"):
        return "ECDH-ES" if use == "ENCRYPTION" else "EdDSA"
    return "RSA-OAEP-256" if use == "ENCRYPTION" else "RS256"


@router.post("/projects/{project}/jwks/from-certificate")
async def jwk_from_certificate(request: Request, project: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        name, certificate = _text(form, "name"), _text(form, "certificate")
        environment, use = _text(form, "environment"), _text(form, "use") or "SIGNATURE"
        algorithm = _text(form, "algorithm")
        if not algorithm:
            found = await page.api.certificates.get(project, certificate)
            content = next(
                (
                    e.base64_encoded_content
                    for e in found.certificate_environment_list
                    if e.environment_name == environment
                ),
                None,
            )
            facts = present.certificate_facts(content)
            algorithm = default_algorithm(facts.key if facts else "RSA", use)
        change = await page.api.jwks.parse_from_certificate(
            project, name, certificate, environment, use_type=use, algorithm=algorithm
        )
        return await page.result(f"Made JWK {name}", change, _one(project, "jwks", name), project)

    return await _run(request, handle, post=form)


# --- one resource: detail, update, export, rollback, delete -----------------------------


async def _history(page: Page, project: str, kind: str, name: str) -> dict[str, Any]:
    """Versions and audit entries, each left out (with the reason) if not readable."""
    values: dict[str, Any] = {"versions": None, "audit": None, "audit_note": ""}
    if kind != "jwks":
        values["versions"] = (await getattr(page.api, kind).versions(project, name)).result_list
    try:
        found = await page.api.audit.search(
            project=project, kind=_AUDIT_KIND[kind], name=name, size=20
        )
        values["audit"] = found.result_list
    except KeyopsError as exc:
        if exc.status not in (403, 404):
            raise
        values["audit_note"] = "The audit trail is shown to administrators (ROLE_ADMIN)."
    return values


@router.get("/projects/{project}/{kind}/{name}/")
async def resource_detail(request: Request, project: str, kind: str, name: str) -> Response:
    async def handle(page: Page) -> Response:
        if kind not in KINDS:
            return page.render("error.html", 404, title="Not found", message="No such page.")
        context = await _project_context(page, project)
        item = await getattr(page.api, kind).get(project, name)
        values: dict[str, Any] = {}
        if kind == "certificates":
            values["facts"] = [
                (e, present.certificate_facts(e.base64_encoded_content))
                for e in item.certificate_environment_list
            ]
        if kind != "jwks":
            jwks = (await page.api.jwks.list(project)).result_list
            values["derived"] = [j for j in jwks if j.source_id == name and _derives(kind, j)]
        values.update(await _history(page, project, kind, name))
        return page.render(
            f"detail_{kind}.html",
            title=f"{KINDS[kind][:-1] if kind != 'keys' else 'Key'} {name}",
            kind=kind,
            item=item,
            name=name,
            **values,
            **context,
        )

    return await _run(request, handle)


def _derives(kind: str, jwk: Any) -> bool:
    source = {"certificates": ("CERTIFICATE",), "keystores": ("KEYSTORE",)}.get(
        kind, ("PUBLIC_KEY", "PRIVATE_KEY")
    )
    return jwk.source_type in source


@router.get("/projects/{project}/certificates/{name}/update")
async def certificate_update_page(request: Request, project: str, name: str) -> Response:
    async def handle(page: Page) -> Response:
        context = await _project_context(page, project)
        item = await page.api.certificates.get(project, name)
        current = [e.environment_name for e in item.certificate_environment_list]
        return page.render(
            "certificate_form.html",
            title=f"Update certificate {name}",
            kind="certificates",
            mode="update",
            name=name,
            item=item,
            checked=current,
            **context,
        )

    return await _run(request, handle)


@router.post("/projects/{project}/certificates/{name}/update")
async def certificate_update(request: Request, project: str, name: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        change = await page.api.certificates.update(
            project, name, **await _certificate_fields(form), **_jwk_choice(_text(form, "jwks"))
        )
        return await page.result(
            f"Updated certificate {name}", change, _one(project, "certificates", name), project
        )

    return await _run(request, handle, post=form)


@router.get("/projects/{project}/certificates/{name}/export")
async def certificate_export(request: Request, project: str, name: str) -> Response:
    async def handle(page: Page) -> Response:
        body = await page.api.certificates.export(project, name)
        filename = quote(f"{name}.zip", safe="")
        return Response(
            body,
            media_type="application/zip",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
                "Cache-Control": "no-store",
            },
        )

    return await _run(request, handle)


@router.post("/projects/{project}/{kind}/{name}/rollback")
async def resource_rollback(request: Request, project: str, kind: str, name: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        version = _text(form, "version")
        if kind not in ("certificates", "keys", "keystores") or not version.isdigit():
            return page.render("error.html", 400, title="Refused", message="No such version.")
        change = await getattr(page.api, kind).rollback(
            project, name, int(version), **_jwk_choice(_text(form, "jwks"))
        )
        return await page.result(
            f"Rolled {name} back to version {version}", change, _one(project, kind, name), project
        )

    return await _run(request, handle, post=form)


def _environments_of(kind: str, item: Any) -> list[str]:
    if kind == "certificates":
        return [e.environment_name for e in item.certificate_environment_list]
    if kind == "keys":
        return [e.environment_name for e in item.crypto_key_info_environment_list]
    if kind == "keystores":
        return [e.environment_name for e in item.key_store_environment_list]
    return []


@router.get("/projects/{project}/{kind}/{name}/delete")
async def resource_delete_page(request: Request, project: str, kind: str, name: str) -> Response:
    async def handle(page: Page) -> Response:
        if kind not in KINDS:
            return page.render("error.html", 404, title="Not found", message="No such page.")
        context = await _project_context(page, project)
        item = await getattr(page.api, kind).get(project, name)
        envs = _environments_of(kind, item)
        if kind == "jwks":
            envs = context["environments"]  # a JWK is published in its project's JWK Sets
        return page.render(
            "confirm_delete.html",
            title=f"Delete {name}?",
            kind=kind,
            name=name,
            undeployed=envs,
            **context,
        )

    return await _run(request, handle)


@router.post("/projects/{project}/{kind}/{name}/delete")
async def resource_delete(request: Request, project: str, kind: str, name: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        if kind not in KINDS:
            return page.render("error.html", 404, title="Not found", message="No such page.")
        change = await getattr(page.api, kind).delete(project, name)
        return await page.result(f"Deleted {name}", change, _base(project, kind), project)

    return await _run(request, handle, post=form)


# --- environments -----------------------------------------------------------------------


@router.get("/environments/")
async def environments_page(request: Request) -> Response:
    async def handle(page: Page) -> Response:
        projects = (await page.api.projects.list()).result_list
        environments = (await page.api.environments.list()).result_list
        nodes: dict[str, Any] = {}
        for env in environments:
            try:
                nodes[env.name] = await page.api.nodes.list(env.name)
            except KeyopsError as exc:
                if exc.status not in (403, 404):
                    raise
        return page.render(
            "environments.html",
            title="Environments",
            projects=projects,
            items=environments,
            nodes=nodes,
        )

    return await _run(request, handle)


@router.get("/environments/{environment}/")
async def environment_page(request: Request, environment: str) -> Response:
    async def handle(page: Page) -> Response:
        projects = (await page.api.projects.list()).result_list
        env = next(
            (e for e in (await page.api.environments.list()).result_list if e.name == environment),
            None,
        )
        if env is None:
            return page.render(
                "error.html", 404, title="Not found", message=f"No environment {environment}."
            )
        nodes: EnvironmentNodes | None
        deployments: EnvironmentDeployments | None
        try:
            nodes = await page.api.nodes.list(environment)
            deployments = await page.api.deployments.get(environment)
            note = ""
        except KeyopsError as exc:
            if exc.status not in (403, 404):
                raise
            nodes, deployments = None, None
            note = exc.error_description or "Only administrators see gateway nodes."
        return page.render(
            "environment.html",
            title=f"Environment {environment}",
            projects=projects,
            env=env,
            nodes=nodes,
            deployments=deployments,
            note=note,
        )

    return await _run(request, handle)


@router.post("/environments/{environment}/republish")
async def environment_republish(request: Request, environment: str) -> Response:
    form = await request.form()

    async def handle(page: Page) -> Response:
        change = await page.api.deployments.republish(environment)
        back = f"/console/environments/{quote(environment, safe='')}/"
        return await page.result(f"Republished {environment}", change, back)

    return await _run(request, handle, post=form)
