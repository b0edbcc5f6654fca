"""Environment shapes."""

from __future__ import annotations

from pydantic import Field

from keyops.api.schemas.common import CamelModel
from keyops.storage.models import Environment


class EnvironmentRead(CamelModel):
    name: str
    description: str
    type: str
    status: str
    access_url: str
    deployed: bool | None = None
    redeploy_required: bool | None = None

    @classmethod
    def of(cls, env: Environment) -> EnvironmentRead:
        return cls(
            name=env.name,
            description=env.description,
            type=env.type,
            status=env.status,
            access_url=env.access_url,
            deployed=None,
            redeploy_required=env.status == "REPUBLISH_REQUIRED",
        )


class EnvironmentListRead(CamelModel):
    success: bool = True
    result_list: list[EnvironmentRead]
    result_count: int


class EnvironmentCreate(CamelModel):
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=10_000)
    type: str = "TEST"
    access_url: str = Field(default="", max_length=2048)
    projects: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Limit the environment to these projects; empty means every project.",
    )
    target: str = Field(default="local", description="Deployment target kind.")


class TlsIdentityRead(CamelModel):
    """The keystore entry an environment's gateway nodes serve TLS with (the fields of
    ``PUT .../tls-identity/`` and of the node's snapshot)."""

    project_name: str
    key_store_name: str
    alias_name: str

    @classmethod
    def of(cls, env: Environment) -> TlsIdentityRead | None:
        if env.tls_project and env.tls_keystore and env.tls_alias:
            return cls(
                project_name=env.tls_project,
                key_store_name=env.tls_keystore,
                alias_name=env.tls_alias,
            )
        return None


class EnvironmentAdminRead(EnvironmentRead):
    projects: list[str]
    target: str
    tls_identity: TlsIdentityRead | None = Field(
        default=None, description="What its gateway nodes serve TLS with; null: nothing."
    )
