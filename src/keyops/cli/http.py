"""The CLI's calls to a running keyops service: one request with a bearer token, and the
exits a script can test (1: the service refused, with its error text; 2: unreachable)."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import httpx
import typer

TIMEOUT_SECONDS = 30.0


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: ...`` on stderr and exit with ``code``."""
    # Plain print, not rich: a console would wrap the line at the terminal's width.
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def call(method: str, server: str, token: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One request; exits 1 with the service's error text, 2 if it can not be reached."""
    try:
        response = httpx.request(
            method,
            server.rstrip("/") + path,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_SECONDS,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        fail(f"can not reach {server}: {type(exc).__name__}", 2)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        fail(f"{server} answered {response.status_code} without JSON")
    if response.status_code >= 400:
        fail(str(body.get("error_description") or body.get("error") or response.status_code))
    return body
