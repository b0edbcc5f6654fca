"""The console's session: a sealed cookie holding the user's access token, and CSRF.

The console calls the public API with an ordinary access token (``/apiops/auth/token``),
so it can do nothing the API would not let that user do. The token never reaches the
browser in the clear: it lives in the ``keyops_console`` cookie, sealed with the master
key (AES-GCM, bound to its purpose), HttpOnly, SameSite=Strict, and Secure when the
console is served over TLS. The cookie also carries the session's CSRF token and the
time of its last request: a session idle longer than ``console_idle_seconds`` is over,
and every answer re-seals the cookie with the new time (a sliding window).

Forms carry ``csrf_token``. After login it must equal the one inside the sealed cookie;
the login form itself is protected by a double-submit cookie (``keyops_console_csrf``),
so a page elsewhere can not log a browser into someone else's session.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from starlette.requests import Request
from starlette.responses import Response

from keyops.secrets import Keyring, Purpose

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "ConsoleSession",
    "csrf_matches",
    "new_csrf",
    "read_session",
    "write_session",
]

SESSION_COOKIE = "keyops_console"
LOGIN_CSRF_COOKIE = "keyops_console_csrf"
PATH = "/console"


@dataclass(frozen=True)
class ConsoleSession:
    """One logged-in browser: who, its API token, its CSRF token, when last seen."""

    username: str
    token: str
    csrf: str
    last_seen: float

    def touched(self, now: float) -> ConsoleSession:
        return ConsoleSession(self.username, self.token, self.csrf, now)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: object) -> bool:
    """Constant-time comparison of the CSRF token a form sent with the expected one."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def read_session(request: Request, keyring: Keyring, idle_seconds: float) -> ConsoleSession | None:
    """The request's session, or None if it has none, it is not ours, or it idled out."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        blob = base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4))
        fields = json.loads(keyring.open(blob, Purpose.CONSOLE_SESSION))
        session = ConsoleSession(
            username=str(fields["u"]),
            token=str(fields["t"]),
            csrf=str(fields["c"]),
            last_seen=float(fields["s"]),
        )
    except (ValueError, KeyError, TypeError, InvalidTag, UnicodeError):
        return None
    if time.time() - session.last_seen > idle_seconds:
        return None
    return session


def write_session(
    response: Response, request: Request, keyring: Keyring, session: ConsoleSession
) -> None:
    """Set (or refresh) the sealed session cookie on ``response``."""
    body = json.dumps(
        {"u": session.username, "t": session.token, "c": session.csrf, "s": session.last_seen}
    ).encode()
    sealed = base64.urlsafe_b64encode(keyring.seal(body, Purpose.CONSOLE_SESSION))
    response.set_cookie(
        SESSION_COOKIE,
        sealed.decode("ascii").rstrip("="),
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=PATH, httponly=True, samesite="strict", secure=_secure(request)
    )


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        path=PATH,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
