"""Users and personal access tokens (admin), and the token endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from keyops.client._ops import (
    Call,
    Group,
    Mode,
    json_call,
    operation,
    result_call,
    seg,
    success_call,
)
from keyops.client.admin_models import AccessToken, PersonalToken, User
from keyops.client.models import ResultList

__all__ = ["Auth", "Tokens", "Users"]

ADMIN = "/apiops/admin"


class Auth(Group[Mode]):
    """``POST /apiops/auth/token``: the OAuth2 client-credentials grant; ``revoke``."""

    @operation
    def token(self, username: str, password: str) -> Call[AccessToken]:
        """An access token for a user's credentials (sent without the client's token)."""
        form = {
            "grant_type": "client_credentials",
            "client_id": username,
            "client_secret": password,
        }
        return Call(
            "POST",
            "/apiops/auth/token",
            lambda r: AccessToken.model_validate(r.json()),
            data=form,
            authenticated=False,
        )

    @operation
    def revoke(self, token: str) -> Call[None]:
        """End ``token`` now (RFC 7009; an unknown token is not an error)."""
        return Call(
            "POST",
            "/apiops/auth/revoke",
            lambda r: None,
            data={"token": token},
            authenticated=False,
        )


class Users(Group[Mode]):
    """``/apiops/admin/users/``."""

    @operation
    def list(self) -> Call[ResultList[User]]:
        """Every user."""
        return json_call("GET", f"{ADMIN}/users/", ResultList[User])

    @operation
    def get(self, username: str) -> Call[User]:
        """One user."""
        return result_call("GET", f"{ADMIN}/users/{seg(username)}/", User)

    @operation
    def create(self, username: str, password: str, *, roles: Sequence[str] = ()) -> Call[User]:
        """Create a user with ``roles`` (``ROLE_API_SECURITY``, ...)."""
        if isinstance(roles, str):
            raise TypeError("roles is a sequence of role names, not one string")
        body = {"username": username, "password": password, "roles": list(roles)}
        return result_call("POST", f"{ADMIN}/users/", User, json=body)

    @operation
    def update(
        self,
        username: str,
        *,
        password: str | None = None,
        roles: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> Call[User]:
        """Change a user's password, roles (replacing them) or state; ``None``: unchanged."""
        body: dict[str, Any] = {}
        if password is not None:
            body["password"] = password
        if roles is not None:
            if isinstance(roles, str):
                raise TypeError("roles is a sequence of role names, not one string")
            body["roles"] = list(roles)
        if enabled is not None:
            body["enabled"] = enabled
        return result_call("PATCH", f"{ADMIN}/users/{seg(username)}/", User, json=body)

    @operation
    def delete(self, username: str) -> Call[None]:
        """Delete a user (not oneself)."""
        return success_call("DELETE", f"{ADMIN}/users/{seg(username)}/")


class Tokens(Group[Mode]):
    """Personal access tokens: ``/apiops/admin/users/{username}/tokens/``."""

    @operation
    def list(self, username: str) -> Call[ResultList[PersonalToken]]:
        """A user's tokens (never the tokens themselves)."""
        path = f"{ADMIN}/users/{seg(username)}/tokens/"
        return json_call("GET", path, ResultList[PersonalToken])

    @operation
    def create(
        self, username: str, name: str, *, expires: date | str = "never"
    ) -> Call[PersonalToken]:
        """A personal token for a user, valid to the end of ``expires`` (UTC) or forever;
        its ``token`` is in this answer only."""
        text = expires.isoformat() if isinstance(expires, date) else expires
        path = f"{ADMIN}/users/{seg(username)}/tokens/"
        return result_call("POST", path, PersonalToken, json={"name": name, "expires": text})

    @operation
    def revoke(self, token_id: int) -> Call[PersonalToken]:
        """Revoke a personal token by its id."""
        return result_call("DELETE", f"{ADMIN}/tokens/{seg(token_id)}/", PersonalToken)
