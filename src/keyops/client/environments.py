"""Projects, environments, what environments hold (deployments) and their gateway nodes.

``list`` calls answer for the caller; the admin calls (``list_all``, ``create``,
``delete``, members, node credentials) need ``ROLE_ADMIN``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from keyops.client.admin_models import (
    Environment,
    EnvironmentDeployments,
    EnvironmentNodes,
    NodeCredential,
    Project,
    User,
)
from keyops.client.models import Change, ResultList

__all__ = ["Deployments", "Environments", "Nodes", "Projects"]

ADMIN = "/apiops/admin"


def _names(values: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        raise TypeError("a sequence of names, not one string")
    return list(values)


class Projects(Group[Mode]):
    """``/apiops/projects/`` (the caller's) and ``/apiops/admin/projects/`` (every one)."""

    @operation
    def list(self) -> Call[ResultList[Project]]:
        """The projects the caller is a member of (an admin: every project)."""
        return json_call("GET", "/apiops/projects/", ResultList[Project])

    @operation
    def list_all(self) -> Call[ResultList[Project]]:
        """Every project (admin)."""
        return json_call("GET", f"{ADMIN}/projects/", ResultList[Project])

    @operation
    def create(
        self, name: str, *, description: str = "", members: Sequence[str] = ()
    ) -> Call[Project]:
        """Create a project (admin); the caller becomes a member, with ``members``."""
        body = {"name": name, "description": description, "members": _names(members)}
        return result_call("POST", f"{ADMIN}/projects/", Project, json=body)

    @operation
    def delete(self, name: str) -> Call[None]:
        """Delete an empty project (admin)."""
        return success_call("DELETE", f"{ADMIN}/projects/{seg(name)}/")

    @operation
    def members(self, name: str) -> Call[ResultList[User]]:
        """A project's members (admin)."""
        return json_call("GET", f"{ADMIN}/projects/{seg(name)}/members/", ResultList[User])

    @operation
    def add_member(self, name: str, username: str) -> Call[User]:
        """Make a user a member of a project (admin)."""
        path = f"{ADMIN}/projects/{seg(name)}/members/"
        return result_call("POST", path, User, json={"username": username})

    @operation
    def remove_member(self, name: str, username: str) -> Call[None]:
        """Remove a user from a project (admin)."""
        return success_call("DELETE", f"{ADMIN}/projects/{seg(name)}/members/{seg(username)}/")


class Environments(Group[Mode]):
    """``/apiops/environments/`` and ``/apiops/admin/environments/``."""

    @operation
    def list(self) -> Call[ResultList[Environment]]:
        """Every environment (admin; anyone else is answered 401, as the page says)."""
        return json_call("GET", "/apiops/environments/", ResultList[Environment])

    @operation
    def for_project(self, project: str) -> Call[ResultList[Environment]]:
        """The environments a project may deploy to."""
        return json_call("GET", f"/apiops/environments/{seg(project)}", ResultList[Environment])

    @operation
    def get(self, name: str) -> Call[Environment]:
        """One environment, with its projects and target kind (admin)."""
        return result_call("GET", f"{ADMIN}/environments/{seg(name)}/", Environment)

    @operation
    def create(
        self,
        name: str,
        *,
        type: str = "TEST",
        description: str = "",
        access_url: str = "",
        projects: Sequence[str] = (),
        target: str = "local",
    ) -> Call[Environment]:
        """Create an environment (admin): ``type`` PRODUCTION, SANDBOX or TEST; ``projects``
        limits it to those (empty: every project); ``target`` is the deployment kind."""
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "type": type,
            "accessUrl": access_url,
            "projects": _names(projects),
            "target": target,
        }
        return result_call("POST", f"{ADMIN}/environments/", Environment, json=body)

    @operation
    def delete(self, name: str) -> Call[None]:
        """Delete an environment (admin)."""
        return success_call("DELETE", f"{ADMIN}/environments/{seg(name)}/")

    @operation
    def set_tls_identity(
        self,
        name: str,
        *,
        project: str | None,
        keystore_name: str | None,
        alias_name: str | None,
    ) -> Call[Change]:
        """Choose the keystore entry the environment's gateway nodes serve TLS with
        (admin, with ROLE_DEPLOY_UNDEPLOY_PROXIES); all three ``None`` clears it."""
        body = {"projectName": project, "keyStoreName": keystore_name, "aliasName": alias_name}
        path = f"{ADMIN}/environments/{seg(name)}/tls-identity/"
        return json_call("PUT", path, Change, json=body)


class Deployments(Group[Mode]):
    """What an environment holds, and republishing it (admin)."""

    @operation
    def get(self, environment: str) -> Call[EnvironmentDeployments]:
        """What the environment holds, what it still has to take, and recent attempts."""
        path = f"/apiops/environments/{seg(environment)}/deployments/"
        return json_call("GET", path, EnvironmentDeployments)

    @operation
    def republish(self, environment: str) -> Call[Change]:
        """Roll the environment's whole desired state out again."""
        path = f"/apiops/environments/{seg(environment)}/republish/"
        return json_call("POST", path, Change)


class Nodes(Group[Mode]):
    """An environment's gateway nodes and their credentials (admin)."""

    @operation
    def list(self, environment: str) -> Call[EnvironmentNodes]:
        """The nodes that synced the environment, and whether each is up to date."""
        path = f"/apiops/environments/{seg(environment)}/nodes/"
        return json_call("GET", path, EnvironmentNodes)

    @operation
    def credentials(self, environment: str) -> Call[ResultList[NodeCredential]]:
        """The environment's node credentials (never their tokens)."""
        path = f"{ADMIN}/environments/{seg(environment)}/node-tokens/"
        return json_call("GET", path, ResultList[NodeCredential])

    @operation
    def create_credential(self, environment: str, name: str) -> Call[NodeCredential]:
        """A credential a node syncs with; its ``token`` is in this answer only."""
        path = f"{ADMIN}/environments/{seg(environment)}/node-tokens/"
        return result_call("POST", path, NodeCredential, json={"name": name})

    @operation
    def revoke_credential(self, credential_id: int) -> Call[NodeCredential]:
        """Revoke a node credential."""
        return result_call("DELETE", f"{ADMIN}/node-tokens/{seg(credential_id)}/", NodeCredential)
