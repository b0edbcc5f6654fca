"""The errors a call raises: one per status class, each carrying the contract's error body.

Every keyops error answer is ``{"error": ..., "error_description": ...}`` (contract
decision 1); a ``KeyopsError`` holds both, and the HTTP status, so that a script can
test ``err.error_description`` against the text the contract's page shows. A caller that
does not care which failure it was catches ``KeyopsError``.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "KeyopsError",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "error_from",
]


class KeyopsError(Exception):
    """A refused call: the HTTP ``status`` and the answer's ``error`` and ``error_description``."""

    def __init__(
        self, status: int, error: str, error_description: str, *, body: Any = None
    ) -> None:
        super().__init__(f"{status} {error}: {error_description}")
        self.status = status
        self.error = error
        self.error_description = error_description
        # The decoded answer as it came (None when it was not JSON), for what the
        # contract's error body does not hold.
        self.body = body

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, error={self.error!r},"
            f" error_description={self.error_description!r})"
        )


class BadRequest(KeyopsError):
    """400: the request was invalid (including a resource the contract reports as not found)."""


class Unauthorized(KeyopsError):
    """401: no token, a bad or expired token, or bad credentials."""


class Forbidden(KeyopsError):
    """403: the caller lacks a role the call needs."""


class NotFound(KeyopsError):
    """404: the path, or a project the caller is not a member of, does not exist."""


class Conflict(KeyopsError):
    """409: a name already taken, or a change that lost a race."""


class PayloadTooLarge(KeyopsError):
    """413: the body or an uploaded file is over the server's limit."""


class ServerError(KeyopsError):
    """5xx: the server failed; the call may or may not have taken effect."""


class TransportError(KeyopsError):
    """The server could not be reached, or did not answer in time (status 0)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "transport_error", message)


_BY_STATUS: dict[int, type[KeyopsError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
}


def error_from(response: httpx.Response) -> KeyopsError:
    """The typed error for a 4xx/5xx answer, with its ``error`` and ``error_description``."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error, description = "", ""
    if isinstance(body, dict):
        error = str(body.get("error") or "")
        description = str(body.get("error_description") or "")
    if not error:
        error = "internal_error" if status >= 500 else f"http_{status}"
    if not description:
        description = response.reason_phrase or f"HTTP {status}"
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else KeyopsError)
    return cls(status, error, description, body=body)
