"""The web console (issue 14) end to end: Debian's Chromium driven by Playwright against a
real ``keyops serve --demo`` per backend (SQLite, PostgreSQL), one browser per module and
one logged-in browser context shared by the tests (others make their own).

The main flow (issue 14, "Done when"): log in, switch to MyProject, upload a certificate
(dropped on the drop zone) to production and staging, make a JWK from it, perform the
seed's update with a new certificate re-deriving the JWKs of the project (the new SHA-256
in every environment section, the JWK's new kid in the result), roll back to version 1
(the old fingerprint back), download the export ZIP, delete (the confirmation names
production and staging; the API no longer finds it). Besides: a wrong password and a
CSRF-less POST are refused, lists filter and badge, the dashboard shows what expires in
30 days, a JWK is generated, environments show their status and a real gateway node.

Every page the browser lands on goes through ``PageChecks.visit``: axe-core (no serious
or critical violation), no horizontal scroll at 1280x800 and 390x844, a full-page
screenshot at both widths into ``$KEYOPS_SCREENSHOTS_DIR/<backend>/`` (default
``artifacts/console-screenshots/<backend>/``), checked to be a PNG, and no private key in
the page. No request may leave the server (no CDN). Differences from the console's
contract that do not stop a flow are collected and reported together at a test's end.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, sync_playwright

from tests.crypto import certs
from tests.support.console import (
    BADGE_CLASSES,
    DESKTOP,
    ENVIRONMENTS,
    KINDS,
    NAV_LINKS,
    PHONE,
    PROJECT,
    SESSION_COOKIE,
    AdminApi,
    ConsoleHttp,
    PageChecks,
    alerts_of,
    date_forms,
    definitions,
    deployment_rows,
    drop_file,
    focus_is_visible,
    launch_chromium,
    local_only,
    make_certificate,
    navigate,
    normalised,
    path_of,
    png_size,
    private_forms,
    public_jwk_thumbprint,
    query_of,
    redirect_location,
    redirect_statuses,
    rows,
    screenshots_dir,
    serial_forms,
    sha1_hex,
    sha256_hex,
    tab_to,
    unique,
)
from tests.support.databases import BACKENDS, database
from tests.support.gateway_nodes import FAST_ENV, NodeProcess
from tests.support.server import LiveServer, live_server

PASSWORD = "console-admin-password-1"
CERT_FIELDS = ("Subject", "Issuer", "SANs", "Serial", "SHA-1", "SHA-256", "Not before", "Not after")
JWK_CHOICES = (
    ("detach", "Detach JWKs made from it"),
    ("SAME_PROJECT", "Re-derive JWKs in this project"),
    ("ALL_PROJECTS", "Re-derive JWKs in every project"),
)
FILE_LABEL = "Certificate file (PEM or DER)"


@dataclass
class Console:
    backend: str
    server: LiveServer
    api: AdminApi
    browser: Browser
    context: BrowserContext
    page: Page
    checks: PageChecks
    workdir: Path

    def url(self, path: str) -> str:
        return f"{self.server.base_url}{path}"

    def goto(self, path: str, shot: str | None = None) -> None:
        """Open a console page (200 expected); ``shot`` puts it through the page checks."""
        response = self.page.goto(self.url(path))
        assert response is not None, path
        assert response.status == 200, f"GET {path}: {response.status}\n{page_text(self.page)}"
        if shot is not None:
            self.checks.visit(self.page, shot)

    def new_context(self) -> BrowserContext:
        """A fresh browser context (no session) held to the same checks."""
        return new_context(self.browser, self.server.base_url, self.checks)


def new_context(browser: Browser, base_url: str, checks: PageChecks) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    local_only(context, base_url, checks.problems)

    def watch(page: Page) -> None:
        page.on("pageerror", lambda error: checks.problems.append(f"{page.url}: JS error {error}"))
        # A confirm() before a destructive action is fine: a person would accept it.
        page.on("dialog", lambda dialog: dialog.accept())

    context.on("page", watch)
    return context


def page_text(page: Page, limit: int = 1500) -> str:
    try:
        return " ".join(page.locator("body").inner_text(timeout=2000).split())[:limit]
    except Exception as exc:  # only for a failure's message
        return f"(no text: {exc})"


def login_ui(page: Page, base_url: str, username: str, password: str) -> Any:
    page.goto(f"{base_url}/console/login")
    form = page.locator("form").filter(has=page.locator("[name=password]"))
    form.locator("[name=username]").fill(username)
    form.locator("[name=password]").fill(password)
    return navigate(page, lambda: form.get_by_role("button", name="Log in").click())


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module", params=BACKENDS)
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> Iterator[Console]:
    backend = str(request.param)
    root = tmp_path_factory.mktemp(f"console-{backend}")
    with (
        database(backend, root) as url,
        live_server(url, root / "data", admin_password=PASSWORD, extra_env=FAST_ENV) as server,
    ):
        r = httpx.get(f"{server.base_url}/console/login", timeout=30)
        if r.status_code != 200:
            pytest.fail(
                f"GET /console/login answered {r.status_code}: the console is not served\n"
                f"{r.text[:500]}",
                pytrace=False,
            )
        api = AdminApi(server.base_url, PASSWORD)
        checks = PageChecks(screenshots_dir(backend))
        context = new_context(browser, server.base_url, checks)
        page = context.new_page()
        response = login_ui(page, server.base_url, "admin", PASSWORD)
        assert path_of(page.url) == "/console/", (response.status, page.url, page_text(page))
        workdir = root / "files"
        workdir.mkdir()
        try:
            yield Console(backend, server, api, browser, context, page, checks, workdir)
        finally:
            context.close()
            api.close()


@pytest.fixture(scope="module")
def edge(console: Console) -> Iterator[NodeProcess]:
    """An admin-project environment with one real gateway node connected to it."""
    environment = "edge"
    console.api.ok(
        "POST",
        "/apiops/admin/environments/",
        json={"name": environment, "type": "TEST", "projects": ["admin"]},
    )
    token = console.api.ok(
        "POST",
        f"/apiops/admin/environments/{environment}/node-tokens/",
        json={"name": "console-e2e"},
    )["result"]["token"]
    node = NodeProcess(
        environment=environment,
        manager_url=console.server.base_url,
        token=token,
        name="edge-node-1",
        data_dir=console.workdir / "nodes" / "edge-node-1",
    )
    try:
        node.start()
        node.wait_status(
            lambda s: bool(s["managerReachable"]) and s["appliedRevision"] is not None,
            timeout=30,
            what="synced with the manager",
        )
        yield node
    finally:
        node.stop()


@pytest.fixture
def ui(console: Console) -> Iterator[Console]:
    """The shared logged-in console; problems of an earlier test do not carry over."""
    console.checks.problems.clear()
    yield console


# --- helpers on pages -------------------------------------------------------------------


def control(
    checks: PageChecks,
    scope: Page | Locator,
    label: str | None,
    name: str,
    where: str,
    *,
    element_id: str | None = None,
) -> Locator:
    """The control named ``name``; records it if ``label`` does not label it (or its id
    is not ``element_id``). Falls back to the labelled control when none has the name."""
    by_name = scope.locator(f'[name="{name}"]:not([type=hidden])')
    named = by_name.count()
    checks.expect(named >= 1, f"{where}: no control named {name!r}")
    by_label = None
    if label is not None:
        by_label = scope.get_by_label(label, exact=True)
        labelled = by_label.count()
        if checks.expect(labelled >= 1, f"{where}: no control labelled {label!r}"):
            names = [by_label.nth(i).get_attribute("name") for i in range(labelled)]
            checks.expect(
                name in names,
                f"{where}: the control labelled {label!r} is named {names}, not {name!r}",
            )
    if element_id is not None:
        checks.expect(
            scope.locator(f'#{element_id}[name="{name}"]').count() == 1,
            f"{where}: the {name!r} control's id is not {element_id!r}",
        )
    if named == 0 and by_label is not None and by_label.count() >= 1:
        return by_label.first
    assert named >= 1, f"{where}: no control {name!r} (label {label!r}) to use"
    return by_name.first


def environment_box(checks: PageChecks, scope: Locator, env: str, where: str) -> Locator:
    """The checkbox name=environments value=ENV, labelled with the environment's name."""
    box = scope.locator(f'input[type=checkbox][name=environments][value="{env}"]')
    assert box.count() == 1, f"{where}: no checkbox environments={env}"
    by_label = scope.get_by_label(env, exact=True)
    values = [by_label.nth(i).get_attribute("value") for i in range(by_label.count())]
    checks.expect(env in values, f"{where}: no checkbox labelled {env!r} (labelled: {values})")
    return box


def option_values(select: Locator) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = select.evaluate(
        "s => Array.from(s.options).map(o => [o.value, o.textContent.trim()])"
    )
    return found


def choose(select: Locator, wanted: str, where: str) -> None:
    """Select the option whose value or text is ``wanted`` (case-insensitively)."""
    options = option_values(select)
    for value, text in options:
        if wanted.lower() in (value.lower(), text.lower()):
            select.select_option(value)
            return
    raise AssertionError(f"{where}: no option {wanted!r} in {options}")


def link_to(page: Page, path: str) -> Locator | None:
    """A link whose target's path is ``path``."""
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    for i, href in enumerate(hrefs):
        if path_of(href) == path:
            return page.locator("a[href]").nth(i)
    return None


def form_with(page: Page, inner: str) -> Locator:
    form = page.locator("form").filter(has=page.locator(inner))
    assert form.count() >= 1, f"{page.url}: no form with {inner}\n{page_text(page)}"
    return form.first


def result_page(console: Console, shot: str, expected: dict[str, str], *, what: str) -> None:
    """An action's result page: a heading and the per-environment deployment result."""
    page = console.page
    console.checks.expect(
        page.get_by_role("heading").count() > 0, f"{shot}: the result page has no heading"
    )
    got = deployment_rows(page)
    assert got == expected, (
        f"{what}: deployment-result rows {got}, expected {expected} ({page.url})\n{page_text(page)}"
    )
    console.checks.visit(page, shot)


def follow_back(console: Console, path: str, where: str) -> None:
    """Follow the result page's link back to the resource (or go there, recording it)."""
    page = console.page
    link = link_to(page, path)
    if console.checks.expect(link is not None, f"{where}: no link back to {path}"):
        assert link is not None
        navigate(page, link.click)
        assert path_of(page.url) == path, page.url
    else:
        console.goto(path)


def switch_project(console: Console, project: str, where: str) -> None:
    page, checks = console.page, console.checks
    form = form_with(page, "select#project")
    checks.expect(
        (form.get_attribute("method") or "get").lower() == "get",
        f"{where}: the project switcher's form is not GET",
    )
    checks.expect(
        path_of(console.url(form.get_attribute("action") or "")) == "/console/switch",
        f"{where}: the project switcher posts to {form.get_attribute('action')!r},"
        " not /console/switch",
    )
    select = control(checks, form, "Project", "project", where, element_id="project")
    choose(select, project, where)
    response = navigate(page, form.get_by_role("button", name="Switch").click)
    assert path_of(page.url) == f"/console/projects/{project}/certificates/", page.url
    checks.expect(
        redirect_statuses(response) == [303],
        f"{where}: /console/switch answered {redirect_statuses(response)}, not a 303",
    )


def certificate_detail(
    console: Console, name: str, issued: certs.Issued, envs: tuple[str, ...], shot: str
) -> None:
    """The detail page shows ``issued`` in exactly ``envs``, every field as computed here."""
    page, checks = console.page, console.checks
    console.goto(f"/console/projects/{PROJECT}/certificates/{name}/")
    sections = page.locator("section.environment[data-environment]")
    shown = sorted(s.get_attribute("data-environment") or "" for s in sections.all())
    assert shown == sorted(envs), f"{shot}: environment sections {shown}, expected {envs}"
    cert = issued.cert
    cn = cert.subject.rfc4514_string().split(",")[0].removeprefix("CN=")
    try:
        sans = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    for section in sections.all():
        env = section.get_attribute("data-environment")
        where = f"{shot} [{env}]"
        fields = definitions(section)
        missing = [f for f in CERT_FIELDS if f not in fields or fields[f] is None]
        checks.expect(not missing, f"{where}: no <dt>/<dd> for {missing} (has {list(fields)})")
        for field, expected in (
            ("SHA-256", sha256_hex(issued.der)),
            ("SHA-1", sha1_hex(issued.der)),
        ):
            attr = "sha256" if field == "SHA-256" else "sha1"
            marked = section.locator(f'[data-field="{attr}"]')
            if marked.count() == 1:
                value = marked.inner_text().strip()
            else:
                checks.expect(False, f"{where}: {marked.count()} elements data-field={attr!r}")
                value = (fields.get(field) or {}).get("text") or ""
            checks.expect(
                (fields.get(field) or {}).get("field") == attr,
                f"{where}: the <dd> after <dt>{field}</dt> has no data-field={attr!r}",
            )
            checks.expect(
                value == expected,
                f"{where}: {field} shown as {value!r}, not lower-case hex without colons"
                f" {expected!r}",
            )
            assert normalised(value) == expected, f"{where}: {field} {value!r} != {expected}"
        text = {k: (v or {}).get("text") or "" for k, v in fields.items()}
        checks.expect(cn in text.get("Subject", ""), f"{where}: Subject {text.get('Subject')!r}")
        checks.expect(cn in text.get("Issuer", ""), f"{where}: Issuer {text.get('Issuer')!r}")
        checks.expect(
            all(s in text.get("SANs", "") for s in sans), f"{where}: SANs {text.get('SANs')!r}"
        )
        checks.expect(
            normalised(text.get("Serial", "")) in serial_forms(cert.serial_number),
            f"{where}: Serial {text.get('Serial')!r} is not {cert.serial_number}"
            f" ({cert.serial_number:x})",
        )
        for field, instant in (
            ("Not before", cert.not_valid_before_utc),
            ("Not after", cert.not_valid_after_utc),
        ):
            checks.expect(
                any(form in text.get(field, "") for form in date_forms(instant)),
                f"{where}: {field} {text.get(field)!r} does not show {instant:%Y-%m-%d}",
            )
    checks.visit(page, shot)


# --- authentication -----------------------------------------------------------------------


def test_unauthenticated_requests_go_to_login_and_back(ui: Console) -> None:
    checks = ui.checks
    with httpx.Client(base_url=ui.server.base_url, follow_redirects=False, timeout=30) as http:
        r = http.get("/console/")
        assert r.status_code == 303, (r.status_code, r.text[:300])
        target = redirect_location(r)
        assert path_of(target) == "/console/login", target
        assert query_of(target).get("next") == ["/console/"], target

        r = http.get("/console/environments/")
        checks.expect(
            r.status_code == 303
            and path_of(redirect_location(r)) == "/console/login"
            and query_of(redirect_location(r)).get("next") == ["/console/environments/"],
            f"GET /console/environments/ without a session: {r.status_code}"
            f" {r.headers.get('location')}",
        )
    http2 = ConsoleHttp(ui.server.base_url)
    try:
        r = http2.login("admin", PASSWORD, next_path="/console/environments/")
        assert r.status_code == 303, (r.status_code, r.text[:500])
        checks.expect(
            path_of(redirect_location(r)) == "/console/environments/",
            f"login with next=/console/environments/ went to {r.headers.get('location')}",
        )
        assert http2.get("/console/environments/").status_code == 200
    finally:
        http2.close()
    checks.assert_clean()


def test_login_page_wrong_password_and_keyboard_login(ui: Console) -> None:
    checks = ui.checks
    context = ui.new_context()
    try:
        page = context.new_page()
        response = page.goto(ui.url("/console/"))
        assert response is not None
        assert path_of(page.url) == "/console/login", page.url
        assert query_of(page.url).get("next") == ["/console/"], page.url
        checks.expect(
            redirect_statuses(response) == [303],
            f"GET /console/ without a session: redirects {redirect_statuses(response)}",
        )
        checks.visit(page, "login", header=False)

        form = form_with(page, "[name=password]")
        control(checks, form, "Username", "username", "login", element_id="username")
        control(checks, form, "Password", "password", "login", element_id="password")
        control(checks, page, "Personal access token", "token", "login", element_id="token")
        hidden = form.locator("input[type=hidden][name=csrf_token]")
        assert hidden.count() == 1, "login: no hidden csrf_token in the form"
        cookies = {c["name"]: c for c in context.cookies()}
        assert "keyops_console_csrf" in cookies, f"login: no keyops_console_csrf cookie: {cookies}"
        checks.expect(
            hidden.get_attribute("value") == cookies["keyops_console_csrf"]["value"],
            "login: the form's csrf_token is not the keyops_console_csrf cookie's value",
        )

        form.locator("[name=username]").fill("admin")
        form.locator("[name=password]").fill("not-the-password")
        response = navigate(page, form.get_by_role("button", name="Log in").click)
        assert response.status == 401, f"wrong password: {response.status}\n{page_text(page)}"
        alerts = page.get_by_role("alert").all_inner_texts()
        assert any("Bad credentials" in a for a in alerts), f"wrong password: alerts {alerts}"
        assert SESSION_COOKIE not in {c["name"] for c in context.cookies()}
        checks.visit(page, "login-bad-credentials", header=False)

        # With the keyboard alone, the focus visible on each field.
        page.goto(ui.url("/console/login"))
        for element_id, text in (("username", "admin"), ("password", PASSWORD)):
            reached = tab_to(page, element_id)
            assert reached, f"login: Tab never reaches #{element_id}"
            checks.expect(focus_is_visible(page), f"login: no visible focus on #{element_id}")
            page.keyboard.type(text)
        response = navigate(page, lambda: page.keyboard.press("Enter"))
        assert path_of(page.url) == "/console/", (page.url, page_text(page))
        checks.expect(
            redirect_statuses(response) == [303],
            f"login: the POST answered {redirect_statuses(response)}, not a 303",
        )
        session = {c["name"]: c for c in context.cookies()}.get(SESSION_COOKIE)
        assert session is not None, f"no {SESSION_COOKIE} cookie after login"
        checks.expect(session["httpOnly"] is True, f"{SESSION_COOKIE} is not HttpOnly")
        checks.expect(
            session["sameSite"] == "Strict", f"{SESSION_COOKIE} SameSite={session['sameSite']}"
        )
        checks.expect(session["secure"] is False, f"{SESSION_COOKIE} is Secure over plain http")
    finally:
        context.close()
    checks.assert_clean()


def test_personal_access_token_login(ui: Console) -> None:
    checks = ui.checks
    token = ui.api.personal_token("admin", unique("console-e2e"))
    context = ui.new_context()
    try:
        page = context.new_page()
        page.goto(ui.url("/console/login"))
        form = form_with(page, "[name=token]")
        control(checks, form, "Personal access token", "token", "login", element_id="token").fill(
            token
        )
        navigate(page, form.get_by_role("button", name="Log in").click)
        assert path_of(page.url) == "/console/", (page.url, page_text(page))
        assert SESSION_COOKIE in {c["name"] for c in context.cookies()}
    finally:
        context.close()
    checks.assert_clean()


def test_logout_button_ends_the_session(ui: Console) -> None:
    checks = ui.checks
    context = ui.new_context()
    try:
        page = context.new_page()
        login_ui(page, ui.server.base_url, "admin", PASSWORD)
        assert path_of(page.url) == "/console/", page.url
        cookie = {c["name"]: c["value"] for c in context.cookies()}[SESSION_COOKIE]
        in_header = page.locator("header").get_by_role("button", name="Log out")
        checks.expect(in_header.count() == 1, "no 'Log out' button in the header")
        button = in_header if in_header.count() == 1 else page.get_by_role("button", name="Log out")
        response = navigate(page, button.first.click)
        assert path_of(page.url) == "/console/login", page.url
        checks.expect(
            redirect_statuses(response) == [303],
            f"logout answered {redirect_statuses(response)}, not a 303",
        )
        with httpx.Client(
            base_url=ui.server.base_url,
            cookies={SESSION_COOKIE: cookie},
            follow_redirects=False,
            timeout=30,
        ) as http:
            r = http.get("/console/")
            assert r.status_code == 303, f"the logged-out cookie still works: {r.status_code}"
            assert path_of(redirect_location(r)) == "/console/login"
    finally:
        context.close()
    checks.assert_clean()


def test_csrf_less_post_is_refused(ui: Console) -> None:
    """A delete POSTed with a valid session cookie but no (or a wrong) csrf_token: 403,
    an alert naming CSRF, and the certificate still there; with the token it goes."""
    name = unique("csrf-cert")
    ui.api.create_certificate(
        PROJECT, name, make_certificate(f"{name}.example", days=60).pem, ["production", "staging"]
    )
    http = ConsoleHttp(ui.server.base_url)
    other = ConsoleHttp(ui.server.base_url)
    try:
        assert http.login("admin", PASSWORD).status_code == 303
        assert other.login("admin", PASSWORD).status_code == 303
        confirm = f"/console/projects/{PROJECT}/certificates/{name}/delete"
        form = http.form_on(confirm, button=f"Delete {name}")
        action = urljoin(confirm, form.action) if form.action else confirm
        assert form.fields.get("csrf_token"), f"{confirm}: the delete form has no csrf_token"
        another = other.form_on(confirm, button=f"Delete {name}").fields["csrf_token"]
        without = {k: v for k, v in form.fields.items() if k != "csrf_token"}
        attempts: list[tuple[str, dict[str, str]]] = [
            ("no csrf_token", without),
            ("an empty csrf_token", {**without, "csrf_token": ""}),
            ("a made-up csrf_token", {**without, "csrf_token": secrets.token_urlsafe(24)}),
        ]
        if another != form.fields["csrf_token"]:
            attempts.append(("another session's csrf_token", {**without, "csrf_token": another}))
        for what, data in attempts:
            r = http.post(action, data)
            assert r.status_code == 403, f"delete with {what}: {r.status_code} {r.text[:500]}"
            alerts = alerts_of(r.text)
            assert any("CSRF" in a for a in alerts), f"delete with {what}: alerts {alerts}"
            assert ui.api.certificate(PROJECT, name) is not None, f"deleted with {what}!"
        assert http.get("/console/").status_code == 200, "the refusal ended the session"

        r = http.post(action, form.fields)
        assert r.status_code in (200, 303), f"delete with the token: {r.status_code} {r.text[:500]}"
        assert ui.api.certificate(PROJECT, name) is None
    finally:
        http.close()
        other.close()
    ui.checks.assert_clean()


# --- layout and the main flow ---------------------------------------------------------------


def test_layout_and_project_switcher(ui: Console) -> None:
    page, checks = ui.page, ui.checks
    ui.goto("/console/")
    header = page.locator("header")
    assert header.count() >= 1, "no <header>"
    for label in NAV_LINKS:
        links = header.first.get_by_role("link", name=label, exact=True)
        if checks.expect(links.count() >= 1, f"header: no link {label!r}"):
            href = links.first.get_attribute("href") or ""
            r = ui.context.request.get(ui.url(path_of(ui.url(href)) if href else "/console/"))
            checks.expect(r.status == 200, f"header link {label!r} ({href}) answers {r.status}")
    select = page.locator("select#project")
    assert select.count() == 1, "no project switcher (select#project)"
    projects = [value for value, _ in option_values(select)]
    checks.expect(
        {"admin", PROJECT} <= set(projects),
        f"project switcher offers {projects}, not admin and {PROJECT}",
    )
    switch_project(ui, PROJECT, "project switcher")
    certificates = header.first.get_by_role("link", name="Certificates", exact=True)
    if certificates.count() >= 1:
        checks.expect(
            path_of(ui.url(certificates.first.get_attribute("href") or ""))
            == f"/console/projects/{PROJECT}/certificates/",
            "after switching, the header's Certificates link is not MyProject's list",
        )
    checks.assert_clean()


def test_certificate_lifecycle(ui: Console) -> None:
    page, checks, api = ui.page, ui.checks, ui.api
    name = unique("web-cert")
    jwk_name = f"{name}-jwk"
    base = f"/console/projects/{PROJECT}/certificates/"
    detail = f"{base}{name}/"
    first = make_certificate(
        f"{name}.example.com",
        days=20,
        key=certs.new_key("rsa2048"),
        sans=[f"{name}.example.com", f"www.{name}.example.com"],
    )
    second = make_certificate(
        f"{name}-v2.example.com",
        days=400,
        key=certs.new_key("rsa2048"),
        sans=[f"{name}-v2.example.com"],
    )
    pem_file = ui.workdir / f"{name}.pem"
    pem_file.write_bytes(first.pem)
    der_file = ui.workdir / f"{name}-v2.der"
    der_file.write_bytes(second.der)
    both = ("production", "staging")
    deployed = dict.fromkeys(both, "true")

    # Switch to MyProject, then "New certificate".
    ui.goto("/console/", "dashboard-before-upload")
    switch_project(ui, PROJECT, "lifecycle")
    checks.visit(page, "certificates")
    new = page.get_by_role("link", name="New certificate")
    assert new.count() >= 1, f"no 'New certificate' link on {page.url}"
    navigate(page, new.first.click)
    checks.expect(path_of(page.url) == f"{base}new", f"'New certificate' opened {page.url}")
    checks.visit(page, "certificate-new")

    form = form_with(page, "input[type=file]")
    where = "new certificate"
    control(checks, form, "Name", "name", where).fill(name)
    control(checks, form, "Alias", "alias", where).fill(f"{name}-alias")
    control(checks, form, "Description", "description", where).fill("uploaded from the console")
    upload = control(checks, form, FILE_LABEL, "file", where)
    drop_file(page, upload, pem_file, "application/x-pem-file")
    dropped = upload.evaluate("e => Array.from(e.files || []).map(f => f.name)")
    if not checks.expect(
        dropped == [pem_file.name],
        f"{where}: the drop zone did not take a dropped file ({dropped})",
    ):
        upload.set_input_files(pem_file)
    for env in ENVIRONMENTS:
        box = environment_box(checks, form, env, where)
        box.set_checked(env in both)
    response = navigate(page, form.get_by_role("button", name="Create").click)
    assert response.status == 200, f"create: {response.status}\n{page_text(page)}"
    result_page(ui, "certificate-create-result", deployed, what="create")
    assert api.certificate_der(PROJECT, name) == dict.fromkeys(both, first.der)
    follow_back(ui, detail, "create result")

    certificate_detail(ui, name, first, both, "certificate-detail")
    checks.expect(page.locator("#audit").count() == 1, "detail: no #audit (table or note)")
    if page.locator("table#versions").count() != 1:
        section = page.locator("section").filter(has=page.get_by_role("heading", name="Versions"))
        note = " ".join(section.first.inner_text().split()) if section.count() else "nothing"
        checks.expect(False, f"detail before any update: no table#versions; instead {note!r}")

    # Make a JWK from it.
    form = form_with(page, "[name=certificate]")
    where = "make a JWK"
    checks.expect(
        path_of(ui.url(form.get_attribute("action") or ""))
        == f"/console/projects/{PROJECT}/jwks/from-certificate",
        f"{where}: the form posts to {form.get_attribute('action')!r}",
    )
    hidden = form.locator("input[name=certificate]")
    checks.expect(
        hidden.get_attribute("type") == "hidden" and hidden.get_attribute("value") == name,
        f"{where}: certificate field is {hidden.get_attribute('type')}"
        f" {hidden.get_attribute('value')!r}",
    )
    control(checks, form, "JWK name", "name", where).fill(jwk_name)
    choose(control(checks, form, "From environment", "environment", where), "production", where)
    use = control(checks, form, "Use", "use", where)
    uses = {v for v, _ in option_values(use)}
    checks.expect({"SIGNATURE", "ENCRYPTION"} <= uses, f"{where}: Use offers {uses}")
    choose(use, "SIGNATURE", where)
    navigate(page, form.get_by_role("button", name="Make JWK").click)
    result_page(
        ui, "jwk-from-certificate-result", dict.fromkeys(ENVIRONMENTS, "true"), what="make JWK"
    )
    jwk = api.jwk(PROJECT, jwk_name)
    assert jwk is not None, f"no JWK {jwk_name} after 'Make JWK'"
    old_kid = public_jwk_thumbprint(first.key)
    assert (jwk["sourceId"], jwk["kid"]) == (name, old_kid), jwk
    ui.goto(detail)
    derived = page.locator("table#derived-jwks")
    assert derived.count() == 1, "detail: no table#derived-jwks"
    checks.expect(jwk_name in derived.inner_text(), f"derived-jwks does not list {jwk_name}")

    # The seed's update: a new certificate (DER), re-deriving the project's JWKs.
    link = page.get_by_role("link", name="Update", exact=True)
    assert link.count() >= 1, "detail: no 'Update' link"
    navigate(page, link.first.click)
    checks.expect(path_of(page.url) == f"{detail}update", f"'Update' opened {page.url}")
    checks.visit(page, "certificate-update")
    form = form_with(page, "input[type=file]")
    where = "update"
    control(checks, form, FILE_LABEL, "file", where).set_input_files(der_file)
    for env in ENVIRONMENTS:
        box = environment_box(checks, form, env, where)
        checks.expect(
            box.is_checked() == (env in both),
            f"{where}: {env} is {'' if box.is_checked() else 'not '}pre-checked",
        )
        box.set_checked(env in both)
    for value, label in JWK_CHOICES:
        radio = form.locator(f'input[type=radio][name=jwks][value="{value}"]')
        checks.expect(radio.count() == 1, f"{where}: no radio jwks={value}")
        labelled = form.get_by_label(label, exact=True)
        checks.expect(
            labelled.count() == 1 and labelled.get_attribute("value") == value,
            f"{where}: no radio labelled {label!r} with value {value}",
        )
    form.locator('input[type=radio][name=jwks][value="SAME_PROJECT"]').check()
    navigate(page, form.get_by_role("button", name="Update", exact=True).click)
    # The re-derived JWK is redeployed too, to every environment of the project (a JWK is
    # project-wide), so the result names development as well; the API check below shows
    # that the certificate itself stays in production and staging only.
    result_page(ui, "certificate-update-result", dict.fromkeys(ENVIRONMENTS, "true"), what="update")
    new_kid = public_jwk_thumbprint(second.key)
    jwk_rows = rows(page, "jwk-results")
    assert jwk_name in jwk_rows, f"jwk-results rows {jwk_rows} do not include {jwk_name}"
    for expected in ("UPDATED", old_kid, new_kid):
        checks.expect(
            expected in jwk_rows[jwk_name],
            f"jwk-results row {jwk_rows[jwk_name]!r} lacks {expected}",
        )
    jwk = api.jwk(PROJECT, jwk_name)
    assert jwk is not None
    assert jwk["kid"] == new_kid, (jwk["kid"], new_kid)
    assert (jwk.get("jwk") or {}).get("x5c") == [base64.b64encode(second.der).decode()]
    assert api.certificate_der(PROJECT, name) == dict.fromkeys(both, second.der)
    follow_back(ui, detail, "update result")
    certificate_detail(ui, name, second, both, "certificate-detail-updated")

    # Roll back to version 1: the first certificate again.
    version = page.locator('table#versions tr[data-version="1"]')
    assert version.count() == 1, f"versions: {rows(page, 'versions', 'data-version')}"
    button = version.get_by_role("button", name="Roll back to version 1")
    assert button.count() == 1, f"versions row 1: {version.inner_text()!r}"
    navigate(page, button.click)
    # The rollback re-derives the attached JWK as well: every environment again.
    result_page(
        ui, "certificate-rollback-result", dict.fromkeys(ENVIRONMENTS, "true"), what="rollback"
    )
    assert api.certificate_der(PROJECT, name) == dict.fromkeys(both, first.der)
    certificate_detail(ui, name, first, both, "certificate-detail-rolled-back")
    checks.expect(
        page.locator('table#versions tr[data-version="2"]').count() == 1,
        "versions: the state the rollback replaced is not version 2",
    )

    # Download the export ZIP.
    link = page.get_by_role("link", name="Download ZIP")
    assert link.count() == 1, "detail: no 'Download ZIP' link"
    export = path_of(ui.url(link.get_attribute("href") or ""))
    checks.expect(export == f"{detail}export", f"'Download ZIP' points at {export}")
    with page.expect_download() as download_info:
        link.click()
    saved = ui.workdir / f"{name}.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        members = archive.namelist()
        assert len(members) == len(both), members
        for member in members:
            assert archive.read(member) == first.der, member
    answer = ui.context.request.get(ui.url(export))
    checks.expect(
        answer.headers.get("content-type", "").startswith("application/zip"),
        f"export Content-Type {answer.headers.get('content-type')!r}",
    )
    checks.expect(
        answer.headers.get("content-disposition", "").startswith("attachment"),
        f"export Content-Disposition {answer.headers.get('content-disposition')!r}",
    )

    # Delete: the confirmation names the environments it leaves.
    link = page.get_by_role("link", name="Delete", exact=True)
    assert link.count() >= 1, "detail: no 'Delete' link"
    navigate(page, link.first.click)
    checks.expect(path_of(page.url) == f"{detail}delete", f"'Delete' opened {page.url}")
    text = page_text(page, 20_000)
    at = text.find("will be undeployed from")
    assert at >= 0, f"delete confirmation lacks 'will be undeployed from': {text}"
    named = text[at : at + 200]
    assert all(env in named for env in both), f"delete confirmation: {named!r}"
    checks.expect("development" not in named, f"delete confirmation names development: {named!r}")
    checks.visit(page, "certificate-delete-confirm")
    button = page.get_by_role("button", name=f"Delete {name}")
    assert button.count() == 1, f"no button 'Delete {name}'"
    navigate(page, button.click)
    result_page(ui, "certificate-delete-result", deployed, what="delete")
    assert api.certificate(PROJECT, name) is None, "the certificate is still there"
    jwk = api.jwk(PROJECT, jwk_name)
    checks.expect(jwk is not None and jwk["sourceId"] is None, f"the JWK after the delete: {jwk}")
    checks.assert_clean()


# --- lists, dashboard, other kinds ------------------------------------------------------------


def badge_of(row: Locator) -> tuple[str, str]:
    badge = row.locator(".badge").first
    return badge.inner_text().strip(), badge.get_attribute("class") or ""


def filtered(ui: Console, form: Locator) -> set[str]:
    navigate(ui.page, form.get_by_role("button", name="Filter").click)
    return set(rows(ui.page, "resources"))


def test_lists_filters_and_badges(ui: Console) -> None:
    page, checks, api = ui.page, ui.checks, ui.api
    tag = unique("lst")
    alpha, beta, gamma = f"{tag}-alpha", f"{tag}-beta", f"{tag}-gamma"
    api.create_certificate(PROJECT, alpha, make_certificate(f"{alpha}.e", days=5).pem, ["staging"])
    api.create_certificate(
        PROJECT, beta, make_certificate(f"{beta}.e", days=200).pem, ["production", "development"]
    )
    api.create_certificate(
        PROJECT, gamma, make_certificate(f"{gamma}.e", days=-3).pem, ["production"]
    )
    listing = f"/console/projects/{PROJECT}/certificates/"
    ui.goto(listing, "certificates-list")
    table = page.locator("table#resources")
    assert table.count() == 1, "no table#resources"
    assert {alpha, beta, gamma} <= set(rows(page, "resources"))

    for name, days, allowed in (
        (alpha, 5, ("badge-warn", "badge-danger")),
        (beta, 200, ("badge-ok",)),
        (gamma, None, ("badge-expired",)),
    ):
        text, classes = badge_of(table.locator(f'tr[data-name="{name}"]'))
        kinds = [c for c in classes.split() if c in BADGE_CLASSES]
        checks.expect(
            len(kinds) == 1 and kinds[0] in allowed,
            f"list: {name}'s badge has classes {classes!r}, expected one of {allowed}",
        )
        if days is not None:
            checks.expect(
                re.search(rf"\b{days} days\b", text) is not None,
                f"list: {name}'s badge says {text!r}, not '{days} days'",
            )

    form = form_with(page, "[name=q]")
    checks.expect(
        (form.get_attribute("method") or "get").lower() == "get", "filter form is not GET"
    )
    where = "filter"
    search = control(checks, form, "Search", "q", where)
    environment = control(checks, form, "Environment", "environment", where)
    expiring = control(checks, form, "Expiring within days", "expiring", where)
    search.fill(tag)
    assert filtered(ui, form) == {alpha, beta, gamma}
    checks.expect(query_of(page.url).get("q") == [tag], f"filter URL {page.url}")
    checks.visit(page, "certificates-list-filtered")

    form = form_with(page, "[name=q]")
    checks.expect(form.locator("[name=q]").input_value() == tag, "the search is not kept")
    choose(form.locator("[name=environment]"), "development", where)
    assert filtered(ui, form) == {beta}

    form = form_with(page, "[name=q]")
    form.locator("[name=environment]").select_option(index=0)
    form.locator("[name=expiring]").fill("30")
    found = filtered(ui, form)
    assert alpha in found and beta not in found, found

    form = form_with(page, "[name=q]")
    form.locator("[name=expiring]").fill("")
    form.locator("[name=q]").fill(alpha)
    assert filtered(ui, form) == {alpha}
    del environment, expiring
    checks.assert_clean()


def test_dashboard_lists_what_expires_within_30_days(ui: Console) -> None:
    page, checks, api = ui.page, ui.checks, ui.api
    tag = unique("exp")
    soon, admin_soon, later = f"{tag}-soon", f"{tag}-admin", f"{tag}-later"
    api.create_certificate(PROJECT, soon, make_certificate(f"{soon}.e", days=7).pem, ["staging"])
    api.create_certificate(
        "admin", admin_soon, make_certificate(f"{admin_soon}.e", days=12).pem, ["production"]
    )
    api.create_certificate(
        PROJECT, later, make_certificate(f"{later}.e", days=90).pem, ["production"]
    )
    ui.goto("/console/", "dashboard")
    table = page.locator("table#expiring")
    assert table.count() == 1, "dashboard: no table#expiring"
    shown: dict[tuple[str | None, str | None, str | None], Locator] = {}
    for row in table.locator("tr[data-name]").all():
        key = (
            row.get_attribute("data-name"),
            row.get_attribute("data-project"),
            row.get_attribute("data-environment"),
        )
        shown[key] = row
    for name, project, env, days in (
        (soon, PROJECT, "staging", 7),
        (admin_soon, "admin", "production", 12),
    ):
        found = shown.get((name, project, env))
        assert found is not None, f"dashboard: no row {name}/{project}/{env} in {list(shown)}"
        text, _ = badge_of(found)
        checks.expect(
            re.search(rf"\b{days} days\b", text) is not None,
            f"dashboard: {name}'s badge says {text!r}, not '{days} days'",
        )
    assert not [k for k in shown if k[0] == later], "dashboard lists a certificate 90 days out"
    expiring = api.ok("GET", "/apiops/expiring/")["resultList"]
    for item in expiring:
        if item["kind"] == "certificate" and item["daysLeft"] >= 0:
            checks.expect(
                (item["name"], item["project"], item["environment"]) in shown,
                f"dashboard lacks {item} (from /apiops/expiring/)",
            )
    checks.assert_clean()


def test_keys_keystores_and_jwks_pages_never_show_secrets(ui: Console) -> None:
    page, checks, api = ui.page, ui.checks, ui.api
    tag = unique("sec")
    key = certs.new_key("rsa2048")
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    checks.forbidden |= private_forms(key)
    api.deployed(
        "POST",
        f"/apiops/projects/{PROJECT}/keys/",
        json={
            "name": f"{tag}-key",
            "description": "a key made for the console test",
            "keyType": "RSA",
            "cryptoKeyInfoEnvironmentList": [
                {
                    "environmentName": "production",
                    "publicKey": base64.b64encode(spki).decode(),
                    "privateKey": base64.b64encode(pkcs8).decode(),
                }
            ],
        },
    )
    store_key = certs.new_key("p256")
    checks.forbidden |= private_forms(store_key)
    leaf = make_certificate(f"{tag}-store.example", days=40, key=store_key)
    password = f"store-pass-{secrets.token_hex(8)}"
    checks.forbidden.add(password)
    store = pkcs12.serialize_key_and_certificates(
        b"leaf",
        store_key,  # type: ignore[arg-type]
        leaf.cert,
        None,
        BestAvailableEncryption(password.encode()),
    )
    api.deployed(
        "POST",
        f"/apiops/projects/{PROJECT}/keystores/",
        json={
            "name": f"{tag}-store",
            "description": "a keystore made for the console test",
            "keyStoreEnvironmentList": [
                {
                    "environmentName": "staging",
                    "type": "PKCS12",
                    "file": base64.b64encode(store).decode(),
                    "password": password,
                }
            ],
        },
    )
    api.deployed(
        "POST",
        f"/apiops/projects/{PROJECT}/jwks/generate",
        json={"name": f"{tag}-jwk", "type": "RSA", "rsa": {"keySize": 2048}},
    )
    jwk = api.jwk(PROJECT, f"{tag}-jwk")
    assert jwk is not None
    checks.forbidden |= {
        str(v)[:40]
        for k, v in (jwk.get("jwk") or {}).items()
        if k in ("d", "p", "q", "dp", "dq", "qi")
    }

    names = {"keys": f"{tag}-key", "keystores": f"{tag}-store", "jwks": f"{tag}-jwk"}
    for kind in KINDS:
        ui.goto(f"/console/projects/{PROJECT}/{kind}/", f"{kind}-list")
        assert page.locator("table#resources").count() == 1, f"{kind}: no table#resources"
        if kind in names:
            assert names[kind] in rows(page, "resources"), f"{kind}: no row {names[kind]}"
    ui.goto(f"/console/projects/{PROJECT}/keystores/")
    text = rows(page, "resources").get(f"{tag}-store", "")
    checks.expect("40 days" in text, f"keystores list: {tag}-store's row {text!r} lacks '40 days'")

    for kind, env in (("keys", "production"), ("keystores", "staging")):
        ui.goto(f"/console/projects/{PROJECT}/{kind}/{names[kind]}/", f"{kind[:-1]}-detail")
        sections = page.locator("section.environment[data-environment]")
        shown = [s.get_attribute("data-environment") for s in sections.all()]
        checks.expect(shown == [env], f"{kind} detail: environment sections {shown}, not [{env}]")
    ui.goto(f"/console/projects/{PROJECT}/jwks/{names['jwks']}/", "jwk-detail")
    checks.assert_clean()


def test_generate_jwk(ui: Console) -> None:
    """The form: name, the key (one select of type, size or curve, use and algorithm, as
    generate-jwk.md combines them), an optional kid. A JWK is published in every
    environment of its project, so the result lists each of them."""
    page, checks, api = ui.page, ui.checks, ui.api
    name = unique("web-jwk")
    ui.goto(f"/console/projects/{PROJECT}/jwks/generate", "jwk-generate")
    form = form_with(page, "button:has-text('Generate')")
    where = "generate JWK"
    control(checks, form, "Name", "name", where).fill(name)
    preset = control(checks, form, "Key", "preset", where)
    options = option_values(preset)
    texts = [text for _, text in options]
    for wanted in ("RSA 2048, RS256", "EC P-256, ES256", "OKP Ed25519, EdDSA", "oct 256"):
        checks.expect(any(wanted in t for t in texts), f"{where}: no {wanted!r} in {texts}")
    (ec,) = [v for v, text in options if "ES256" in text and "EC" in text]
    preset.select_option(ec)
    navigate(page, form.get_by_role("button", name="Generate").click)
    got = deployment_rows(page)
    assert got and all(v == "true" for v in got.values()), (
        f"generate: deployment-result {got}\n{page_text(page)}"
    )
    checks.expect(
        set(got) == set(ENVIRONMENTS), f"generate: deployed to {sorted(got)}, not {ENVIRONMENTS}"
    )
    checks.visit(page, "jwk-generate-result")
    jwk = api.jwk(PROJECT, name)
    assert jwk is not None, f"no JWK {name} after Generate"
    assert (jwk["type"], jwk["algorithm"], jwk["useType"]) == ("EC", "ES256", "SIGNATURE"), jwk
    private = (jwk.get("jwk") or {}).get("d")
    if private:
        checks.forbidden.add(str(private))
    ui.goto(f"/console/projects/{PROJECT}/jwks/{name}/", "jwk-detail-generated")
    checks.assert_clean()


# --- environments ------------------------------------------------------------------------------


def test_environments_status_nodes_and_republish(ui: Console, edge: NodeProcess) -> None:
    page, checks, api = ui.page, ui.checks, ui.api
    env = edge.environment
    ui.goto("/console/environments/")
    shown = rows(page, "environments")
    statuses = api.environments()
    for name in (*ENVIRONMENTS, env):
        assert name in shown, f"environments: no row {name} in {list(shown)}"
        checks.expect(
            statuses[name]["status"] in shown[name],
            f"environments: {name}'s row {shown[name]!r} lacks {statuses[name]['status']}",
        )
    checks.visit(page, "environments")

    link = link_to(page, f"/console/environments/{env}/")
    if checks.expect(link is not None, f"environments: no link to /console/environments/{env}/"):
        assert link is not None
        navigate(page, link.click)
    else:
        ui.goto(f"/console/environments/{env}/")
    nodes = page.locator("table#nodes")
    assert nodes.count() == 1, f"environment {env}: no table#nodes\n{page_text(page)}"
    text = " ".join(nodes.inner_text().split())
    assert edge.name in text, f"nodes table {text!r} lacks {edge.name}"
    (node,) = [n for n in api.nodes(env)["resultList"] if n["name"] == edge.name]
    checks.expect(
        str(node["appliedRevision"]) in text,
        f"nodes table {text!r} lacks the applied revision {node['appliedRevision']}",
    )
    checks.visit(page, "environment-detail")

    button = page.get_by_role("button", name="Republish")
    assert button.count() == 1, f"environment {env}: no 'Republish' button"
    response = navigate(page, button.click)
    assert response.status == 200, f"republish: {response.status}\n{page_text(page)}"
    got = deployment_rows(page)
    checks.expect(got == {env: "true"}, f"republish: deployment-result {got}")
    checks.visit(page, "environment-republish-result")
    ui.goto("/console/environments/production/")
    checks.expect(page.locator("table#nodes").count() == 1, "production: no table#nodes")
    checks.assert_clean()


# --- offline ---------------------------------------------------------------------------------


def test_swagger_page_loads_nothing_from_elsewhere(ui: Console) -> None:
    """Issue 14: the Swagger page at /apiops/openapi stops loading from a CDN."""
    checks = ui.checks
    context = ui.new_context()
    try:
        page = context.new_page()
        response = page.goto(ui.url("/apiops/openapi"))
        assert response is not None and response.status == 200
        page.wait_for_load_state("networkidle")
        checks.expect(
            page.locator(".swagger-ui").count() > 0, "the Swagger UI did not render offline"
        )
        shot = checks.directory / "swagger.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()
    checks.assert_clean()


# Every kind of page the issue names; each must have a desktop and a phone screenshot.
REQUIRED_SHOTS = (
    "login",
    "login-bad-credentials",
    "dashboard",
    *(f"{kind}-list" for kind in KINDS),
    "certificate-detail",
    "key-detail",
    "keystore-detail",
    "jwk-detail",
    "certificate-new",
    "certificate-create-result",
    "certificate-update",
    "certificate-update-result",
    "certificate-rollback-result",
    "certificate-delete-confirm",
    "certificate-delete-result",
    "jwk-from-certificate-result",
    "jwk-generate",
    "jwk-generate-result",
    "environments",
    "environment-detail",
    "environment-republish-result",
)


def test_screenshots_are_png_files(ui: Console, request: pytest.FixtureRequest) -> None:
    """Every screenshot is a PNG as wide as its viewport (or wider); when the whole module
    ran, every page of REQUIRED_SHOTS has one at each width."""
    assert ui.checks.shots, "no screenshots were taken"
    for path in ui.checks.shots:
        width, height = png_size(path)
        wanted = PHONE["width"] if path.stem.endswith("-phone") else DESKTOP["width"]
        assert width >= wanted and height > 0, (path, width, height)
    ran = {
        i.originalname
        for i in request.session.items
        if isinstance(i, pytest.Function) and i.path == request.node.path
    }
    every = {name for name in globals() if name.startswith("test_")}
    if ran >= every:
        taken = {p.name for p in ui.checks.shots}
        missing = [
            f"{name}{suffix}.png"
            for name in REQUIRED_SHOTS
            for suffix in ("", "-phone")
            if f"{name}{suffix}.png" not in taken
        ]
        assert not missing, f"no screenshot of {missing} in {ui.checks.directory}"
