"""Domain errors: each carries its HTTP status, contract error code and user-facing text."""

from __future__ import annotations

from collections.abc import Sequence

# error-handling.md's 403 text; a role check adds which roles were missing.
DENIED = "You do not have permission to perform this action"


class KeyopsError(Exception):
    """Base of every error keyops reports to a caller."""

    status: int = 400
    error: str = "bad_request"

    def __init__(
        self, description: str, *, status: int | None = None, error: str | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        if status is not None:
            self.status = status
        if error is not None:
            self.error = error


class BadRequest(KeyopsError):
    """Invalid input: 400 bad_request."""


class Unauthorized(KeyopsError):
    """Missing or bad credentials: 401."""

    status = 401
    error = "unauthorized_client"


class Forbidden(KeyopsError):
    """The caller lacks a role: 403 forbidden."""

    status = 403
    error = "forbidden"

    def __init__(self, description: str = DENIED) -> None:
        super().__init__(description)

    @classmethod
    def lacking(cls, roles: Sequence[str]) -> Forbidden:
        """The contract's 403 text (error-handling.md), naming the roles the caller lacks."""
        if not roles:
            return cls()
        names = " and ".join([", ".join(roles[:-1]), roles[-1]] if len(roles) > 1 else roles)
        noun = "role" if len(roles) == 1 else "roles"
        return cls(f"{DENIED}: it needs the {noun} {names}")


class NotFound(KeyopsError):
    """A resource does not exist or is not visible to the caller: 404 not_found."""

    status = 404
    error = "not_found"


class Conflict(KeyopsError):
    """A uniqueness or state conflict: 409 conflict."""

    status = 409
    error = "conflict"


class PayloadTooLarge(KeyopsError):
    """A request body or file over its limit: 413."""

    status = 413
    error = "payload_too_large"
