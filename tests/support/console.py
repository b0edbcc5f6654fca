"""The web console (``/console/``) under test: Chromium through Playwright, axe-core,
screenshots, plain-HTTP console sessions, the REST API as the admin, and certificates.

* ``launch_chromium`` starts Debian's ``/usr/bin/chromium`` (never a downloaded browser).
* ``PageChecks.visit`` is what every page the browser lands on goes through: an axe-core
  scan (serious and critical violations are problems), no horizontal scroll at 1280x800
  and at a phone's 390x844, a full-page screenshot at both widths (checked to be a real
  PNG), and no private key (nor any secret a test registered) in the page.
  ``PageChecks.expect`` records a problem without stopping the test, so that one run
  reports every difference from the contract; a test ends with ``assert_clean()``.
* ``ConsoleHttp`` is a console session with httpx (no browser): the login form, its CSRF
  token, forms read off a page, and redirects not followed, for the refusals.
* ``AdminApi`` checks what the console did through ``/apiops/...``.

Nothing here imports pytest; nothing here starts a server (tests/support/server.py does).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import secrets
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    Response,
    ViewportSize,
)

from tests.crypto import certs
from tests.support.certificates import b64url_uint, certificate_parts, multipart

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")

PROJECT = "MyProject"
ENVIRONMENTS = ("production", "staging", "development")
SESSION_COOKIE = "keyops_console"
CSRF_COOKIE = "keyops_console_csrf"
NAV_LINKS = ("Dashboard", "Certificates", "Keys", "Keystores", "JWKs", "Environments")
KINDS = ("certificates", "keys", "keystores", "jwks")
BADGE_CLASSES = ("badge-ok", "badge-warn", "badge-danger", "badge-expired")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


# --- the browser -------------------------------------------------------------------------


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; Playwright's own browser download is never used."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
    )


def screenshots_dir(backend: str) -> Path:
    """Where a backend's screenshots go: ``$KEYOPS_SCREENSHOTS_DIR/<backend>/``, else
    ``<repo>/artifacts/console-screenshots/<backend>/``."""
    base = os.environ.get("KEYOPS_SCREENSHOTS_DIR")
    root = Path(base) if base else REPO / "artifacts" / "console-screenshots"
    directory = root / backend
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its signature and IHDR chunk (CRC checked)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG (starts {data[:8]!r})"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, f"{path}: first chunk is {kind!r}, not IHDR"
    ihdr = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(b"IHDR" + ihdr) == crc, f"{path}: IHDR CRC does not match"
    width, height = struct.unpack(">II", ihdr[:8])
    assert width > 0 and height > 0, f"{path}: {width}x{height}"
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path}: no IEND chunk at the end (truncated?)"
    return width, height


def local_only(context: BrowserContext, base_url: str, problems: list[str]) -> None:
    """Abort (and record) every request of the context that leaves the server: the console
    must work offline, with no CDN."""
    host = urlsplit(base_url).netloc

    def route(r: Any) -> None:
        url = r.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host:
            problems.append(f"a request left the server (no CDN allowed): {url}")
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)


@dataclass
class PageChecks:
    """Checks every visited page; collects problems instead of failing at the first one."""

    directory: Path
    axe: Any = field(default_factory=Axe)
    forbidden: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def expect(self, condition: bool, message: str) -> bool:
        if not condition:
            self.problems.append(message)
        return condition

    def visit(self, page: Page, name: str, *, header: bool = True) -> None:
        """axe at both widths, no horizontal scroll, screenshots, no secrets in the page;
        with ``header``, the header's links and Log out button (every page but login)."""
        page.wait_for_load_state("load")
        html = page.content()
        where = f"{name} ({page.url})"
        if header:
            top = page.locator("header")
            missing = [
                label
                for label in NAV_LINKS
                if top.get_by_role("link", name=label, exact=True).count() == 0
            ]
            self.expect(not missing, f"{where}: the header has no link {missing}")
            self.expect(
                top.get_by_role("button", name="Log out").count() == 1,
                f"{where}: the header has no 'Log out' button",
            )
        self.expect("PRIVATE KEY" not in html, f"{where}: the page contains 'PRIVATE KEY'")
        squeezed = re.sub(r"\s+", "", html)  # a PEM's line breaks do not hide it
        for secret in sorted(self.forbidden):
            self.expect(
                secret not in squeezed, f"{where}: the page shows secret material {secret!r}"
            )
        for suffix, size in (("", DESKTOP), ("-phone", PHONE)):
            page.set_viewport_size(size)
            wide = f"{size['width']}x{size['height']}"
            scroll, inner = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            self.expect(
                scroll <= inner,
                f"{where} at {wide}: horizontal scroll (scrollWidth {scroll} > innerWidth {inner})",
            )
            results = self.axe.run(page)
            for violation in results.response["violations"]:
                if violation.get("impact") in SERIOUS:
                    self.problems.append(f"{where} at {wide}: axe {describe(violation)}")
            path = self.directory / f"{name}{suffix}.png"
            page.screenshot(path=str(path), full_page=True)
            png_size(path)
            self.shots.append(path)
        page.set_viewport_size(DESKTOP)
        unprotected = page.evaluate(
            """() => Array.from(document.forms)
                .filter(f => f.method === 'post' && !f.querySelector('[name=csrf_token]'))
                .map(f => f.getAttribute('action'))"""
        )
        self.expect(not unprotected, f"{where}: POST forms without csrf_token: {unprotected}")
        # The first stops of the keyboard's Tab order show where the focus is.
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
        for stop in range(1, 4):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : ''"
            )
            if focused.startswith("<body"):
                break
            self.expect(
                focus_is_visible(page), f"{where}: Tab stop {stop} has no visible focus: {focused}"
            )
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")

    def assert_clean(self) -> None:
        # Cleared in place: request handlers of open contexts append to this very list.
        problems = list(self.problems)
        self.problems.clear()
        if problems:
            text = "\n".join(f"- {p}" for p in problems)
            print(f"console problems ({len(problems)}):\n{text}")
            raise AssertionError(f"{len(problems)} problem(s):\n{text}")


def describe(violation: dict[str, Any]) -> str:
    """One axe violation: id, impact, help and each offending node's target and html."""
    nodes = "; ".join(
        f"{', '.join(map(str, n.get('target', [])))}: {n.get('html', '')[:160]}"
        f" ({n.get('failureSummary', '').strip()[:200]})".replace("\n", " ")
        for n in violation.get("nodes", [])
    )
    return f"{violation['id']} ({violation.get('impact')}): {violation.get('help')} -- {nodes}"


def navigate(page: Page, action: Any) -> Response:
    """Run ``action`` (a click) and answer the response of the navigation it causes."""
    with page.expect_navigation() as nav:
        action()
    response = nav.value
    assert response is not None, f"no response for the navigation to {page.url}"
    return response


def redirect_statuses(response: Response) -> list[int]:
    """The statuses of the redirects that led to ``response``, first first."""
    chain: list[int] = []
    request = response.request.redirected_from
    while request is not None:
        earlier = request.response()
        chain.insert(0, earlier.status if earlier is not None else 0)
        request = request.redirected_from
    return chain


def path_of(url: str) -> str:
    return urlsplit(url).path


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def rows(page: Page | Locator, table_id: str, attribute: str = "data-name") -> dict[str, str]:
    """``{attribute value: row text}`` of the rows of ``<table id=table_id>``."""
    found: dict[str, str] = {}
    table = page.locator(f"table#{table_id}")
    for row in table.locator(f"tr[{attribute}]").all():
        key = row.get_attribute(attribute) or ""
        found[key] = " ".join(row.inner_text().split())
    return found


def deployment_rows(page: Page) -> dict[str, str | None]:
    """``{environment: data-success}`` of ``<table id="deployment-result">``."""
    table = page.locator("table#deployment-result")
    return {
        row.get_attribute("data-environment") or "": row.get_attribute("data-success")
        for row in table.locator("tr[data-environment]").all()
    }


def definitions(section: Locator) -> dict[str, dict[str, str | None]]:
    """``{dt text: {"text": dd text, "field": dd's data-field}}`` of a section's ``<dl>``s."""
    found: dict[str, dict[str, str | None]] = section.evaluate(
        """(section) => {
            const out = {};
            for (const dt of section.querySelectorAll('dl dt')) {
                let dd = dt.nextElementSibling;
                while (dd && dd.tagName !== 'DD') dd = dd.nextElementSibling;
                out[dt.textContent.trim()] = dd
                    ? {text: dd.textContent.trim(), field: dd.getAttribute('data-field')}
                    : null;
            }
            return out;
        }"""
    )
    return found


def focus_is_visible(page: Page) -> bool:
    """The focused element draws a focus indicator (an outline or a box shadow)."""
    visible: bool = page.evaluate(
        """() => {
            const s = getComputedStyle(document.activeElement);
            const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
            return outline || (s.boxShadow && s.boxShadow !== 'none');
        }"""
    )
    return visible


def tab_to(page: Page, element_id: str, *, limit: int = 25) -> bool:
    """Press Tab until the element with ``element_id`` has the focus (at most ``limit``)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == (
            element_id
        ):
            return True
    return False


def drop_file(page: Page, target: Locator, path: Path, mime: str) -> None:
    """Drag and drop a file onto ``target`` the way a person does: dragenter, dragover and
    drop events carrying a DataTransfer with the file (they bubble to the drop zone)."""
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    transfer = page.evaluate_handle(
        """([name, mime, data]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: mime}));
            return dt;
        }""",
        [path.name, mime, payload],
    )
    for event in ("dragenter", "dragover", "drop"):
        target.dispatch_event(event, {"dataTransfer": transfer})


# --- HTML read with the standard library (for httpx answers) ---------------------------

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    buttons: list[str]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.alerts: list[str] = []
        self._form: Form | None = None
        self._alert_depth: list[int] = []
        self._alert_text: list[list[str]] = []
        self._depth = 0
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower(), {}, [])
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            if a.get("type", "text") not in ("checkbox", "radio") or "checked" in a:
                self._form.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "button":
            self._button = []
        if tag in _VOID:
            return
        self._depth += 1
        if a.get("role") == "alert":
            self._alert_depth.append(self._depth)
            self._alert_text.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None:
            if self._form is not None:
                self._form.buttons.append(" ".join("".join(self._button).split()))
            self._button = None
        if tag in _VOID:
            return
        if self._alert_depth and self._alert_depth[-1] == self._depth:
            self._alert_depth.pop()
            self.alerts.append(" ".join("".join(self._alert_text.pop()).split()))
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for text in self._alert_text:
            text.append(data)
        if self._button is not None:
            self._button.append(data)


def read_html(html: str) -> _Reader:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader


def forms_of(html: str) -> list[Form]:
    return read_html(html).forms


def alerts_of(html: str) -> list[str]:
    """The text of every element with role="alert"."""
    return read_html(html).alerts


# --- a console session over plain HTTP ------------------------------------------------


@dataclass
class ConsoleHttp:
    """A console session with httpx: redirects are not followed, cookies are kept."""

    base_url: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post(path, data=data, **kwargs)

    def login_form(self, next_path: str | None = None) -> tuple[str, Form]:
        """The login page's URL (with ``next``) and its form."""
        page = "/console/login"
        if next_path is not None:
            page += f"?{httpx.QueryParams({'next': next_path})}"
        r = self.get(page)
        assert r.status_code == 200, f"GET {page}: {r.status_code} {r.text[:300]}"
        found = [f for f in forms_of(r.text) if "csrf_token" in f.fields]
        assert len(found) == 1, f"GET {page}: {len(found)} forms with a csrf_token field"
        return page, found[0]

    def login(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        token: str | None = None,
        next_path: str | None = None,
        csrf: str | bool | None = True,
    ) -> httpx.Response:
        """Post the login form as a browser would (its hidden fields too); ``csrf`` True
        sends the form's token, a str sends that, None leaves the field out."""
        page, form = self.login_form(next_path)
        credentials = {"username": username, "password": password, "token": token}
        data = {k: v for k, v in form.fields.items() if k not in credentials and k != "csrf_token"}
        if csrf is True:
            data["csrf_token"] = form.fields["csrf_token"]
        elif isinstance(csrf, str):
            data["csrf_token"] = csrf
        data.update({k: v for k, v in credentials.items() if v is not None})
        return self.post(urljoin(page, form.action) if form.action else page, data)

    def form_on(self, path: str, button: str | None = None) -> Form:
        """The POST form of the page at ``path`` (the one with ``button``, if given)."""
        r = self.get(path)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
        found = [
            f
            for f in forms_of(r.text)
            if f.method == "post" and (button is None or button in f.buttons)
        ]
        assert found, f"GET {path}: no POST form{f' with a {button!r} button' if button else ''}"
        return found[0]

    def session_cookie(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)


def redirect_location(response: httpx.Response) -> str:
    """The absolute URL a redirect points at."""
    return urljoin(str(response.request.url), response.headers["location"])


def set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [
        h for h in response.headers.get_list("set-cookie") if h.split("=", 1)[0].strip() == name
    ]


def cookie_attributes(header: str) -> dict[str, str]:
    """``{lower-case attribute: value}`` of a Set-Cookie header (flags map to "")."""
    attributes: dict[str, str] = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attributes[key.lower()] = value
    return attributes


# --- the REST API as the admin ---------------------------------------------------------


@dataclass
class AdminApi:
    base_url: str
    password: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=60)
        r = self.http.post(
            "/apiops/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "admin",
                "client_secret": self.password,
            },
        )
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def close(self) -> None:
        self.http.close()

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.http.request(method, path, **kwargs)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    def deployed(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self.ok(method, path, **kwargs)
        assert body["deploymentResult"]["success"] is True, body
        return body

    def create_certificate(
        self, project: str, name: str, pem: bytes, environments: Sequence[str]
    ) -> None:
        content, headers = multipart(
            certificate_parts(
                name=name,
                alias=f"{name}-alias",
                description=f"{name} (made through the API)",
                environments=list(environments),
                pem=pem,
            )
        )
        self.deployed(
            "POST", f"/apiops/projects/{project}/certificates/", content=content, headers=headers
        )

    def certificate(self, project: str, name: str) -> dict[str, Any] | None:
        """The certificate with its content per environment; None once it is not found."""
        r = self.http.get(f"/apiops/projects/{project}/certificates/{name}/")
        if r.status_code == 400 and "is not found" in r.text:
            return None
        assert r.status_code == 200, r.text
        item: dict[str, Any] = r.json()["resultList"][0]
        return item

    def certificate_der(self, project: str, name: str) -> dict[str, bytes]:
        item = self.certificate(project, name)
        assert item is not None, f"certificate {name} is not found"
        return {
            row["environmentName"]: base64.b64decode(row["base64EncodedContent"])
            for row in item["certificateEnvironmentList"]
        }

    def jwk(self, project: str, name: str) -> dict[str, Any] | None:
        r = self.http.get(f"/apiops/projects/{project}/jwks/{name}/")
        if r.status_code == 400 and "is not found" in r.text:
            return None
        assert r.status_code == 200, r.text
        item: dict[str, Any] = r.json()["resultList"][0]
        return item

    def environments(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.ok("GET", "/apiops/environments/")["resultList"]}

    def nodes(self, environment: str) -> dict[str, Any]:
        return self.ok("GET", f"/apiops/environments/{environment}/nodes/")

    def personal_token(self, username: str, name: str) -> str:
        body = self.ok("POST", f"/apiops/admin/users/{username}/tokens/", json={"name": name})
        token: str = body["result"]["token"]
        return token


# --- certificates and keys ---------------------------------------------------------------


def make_certificate(
    common_name: str,
    *,
    days: int,
    key: PrivateKeyTypes | None = None,
    sans: Iterable[str] = (),
) -> certs.Issued:
    """A self-signed certificate with ``days`` whole days left (six hours to spare, so a
    days-left figure is ``days`` all through a test run), SANs as DNS names."""
    key = key if key is not None else certs.key("p256")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    not_after = now + dt.timedelta(days=days, hours=6)
    not_before = min(now - dt.timedelta(days=1), not_after - dt.timedelta(days=30))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Console Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    names = list(sans)
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return certs.Issued(builder.sign(key, hashes.SHA256()), key)  # type: ignore[arg-type]


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def sha1_hex(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def public_jwk_thumbprint(key: PrivateKeyTypes) -> str:
    """RFC 7638 thumbprint of an RSA or EC key's public JWK (computed here)."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        members = {"e": b64url_uint(numbers.e), "kty": "RSA", "n": b64url_uint(numbers.n)}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        size = (public.curve.key_size + 7) // 8
        point = public.public_numbers()
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public.curve.name]
        members = {
            "crv": crv,
            "kty": "EC",
            "x": base64.urlsafe_b64encode(point.x.to_bytes(size, "big")).rstrip(b"=").decode(),
            "y": base64.urlsafe_b64encode(point.y.to_bytes(size, "big")).rstrip(b"=").decode(),
        }
    else:
        raise ValueError(f"no thumbprint here for {type(public).__name__}")
    canonical = ("{" + ",".join(f'"{k}":"{members[k]}"' for k in sorted(members)) + "}").encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def pkcs8_b64(key: PrivateKeyTypes) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode("ascii")


def private_forms(key: PrivateKeyTypes) -> set[str]:
    """How a private key's secret numbers could show in a page: hex, base64url (JWK) and
    base64 of the big-endian bytes, and the base64 run of its PKCS#8 DER that holds them
    (RSA d, p, q, dp, dq, qi; EC d). Public material (shown legitimately) is left out."""
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        values = [n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp]
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        values = [key.private_numbers().private_value]
    else:
        raise ValueError(f"no private forms here for {type(key).__name__}")
    der = base64.b64decode(pkcs8_b64(key))
    pkcs8 = base64.b64encode(der).decode("ascii")
    forms: set[str] = set()
    for value in values:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        forms |= {f"{value:x}"[:40], b64url_uint(value)[:40], base64.b64encode(raw).decode()[:40]}
        at = der.find(raw)
        if at >= 0:
            # whole base64 quanta inside the number's bytes: what a dump of the DER shows
            first = (at + 2) // 3 + 1
            forms.add(pkcs8[first * 4 : first * 4 + 32])
    return {f for f in forms if len(f) >= 24}


def serial_forms(serial: int) -> set[str]:
    """How a serial may be written, normalised (no colons or spaces, lower case)."""
    hexed = f"{serial:x}"
    return {str(serial), hexed, hexed.zfill(len(hexed) + len(hexed) % 2)}


def normalised(text: str) -> str:
    return re.sub(r"[\s:]", "", text).lower()


def date_forms(instant: dt.datetime) -> set[str]:
    """A few ways a page may write a date; a dd holding any of them is accepted."""
    return {
        instant.strftime("%Y-%m-%d"),
        instant.strftime("%d %b %Y"),
        instant.strftime("%b %d, %Y"),
        instant.strftime("%b %-d, %Y"),
        instant.strftime("%-d %b %Y"),
    }
