"""JWK shapes: the request bodies and the JWK management object."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from keyops.api.schemas.common import CamelModel
from keyops.errors import BadRequest
from keyops.storage.models import Jwk

KEY_TYPE_LABELS = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}
ShortText = Annotated[str | None, Field(max_length=1000)]
LongText = Annotated[str | None, Field(max_length=10_000)]
Enum = Annotated[str | None, Field(max_length=64)]


class _Base(CamelModel):
    """Unknown fields are refused (extra="forbid"), so a misspelt field is an error."""

    name: ShortText = None
    description: LongText = None


class _Derived(_Base):
    environment_name: ShortText = None
    use_type: Enum = None
    algorithm: Enum = None
    kid: ShortText = None


class _Typed(CamelModel):
    """``sourceType`` as create-jwk.md sends it, so a parse-from-* endpoint takes the
    create body too. It must name a source type the endpoint takes; that is checked
    before the other fields, so a body meant for another endpoint is refused as such."""

    ENDPOINT: ClassVar[str]
    ACCEPTS: ClassVar[tuple[str, ...]]

    source_type: Enum = None

    @model_validator(mode="before")
    @classmethod
    def _source_type_first(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = data.get("sourceType", data.get("source_type"))
            if isinstance(given, str) and given.strip() and given.strip() not in cls.ACCEPTS:
                # A domain error, not a ValueError: it reaches the caller as it is.
                raise BadRequest(
                    f"sourceType ({given.strip()}) contradicts {cls.ENDPOINT}, which takes"
                    f" sourceType {' or '.join(cls.ACCEPTS)}!"
                )
        return data

    def chosen_source_type(self) -> str:
        """The source type asked for; the endpoint's first when none is sent."""
        given = (self.source_type or "").strip()
        return given or self.ACCEPTS[0]


class _UrlOptions(_Base):
    url: str | None = Field(default=None, max_length=8192)
    url_option_connect_timeout: int | None = None
    url_option_read_timeout: int | None = None
    url_option_size_limit: int | None = None
    kid: ShortText = None


class JwkCreate(_Derived, _UrlOptions):
    """Every field of every source type of create-jwk.md."""

    source_type: Enum = None
    jwk_str: str | None = Field(default=None, max_length=1024 * 1024)
    certificate_name: ShortText = None
    key_name: ShortText = None
    key_store_name: ShortText = None
    alias_name: ShortText = None


class JwkFromUrl(_UrlOptions, _Typed):
    ENDPOINT = "parse-from-url"
    ACCEPTS = ("URL",)


class JwkFromClipboard(_Base, _Typed):
    ENDPOINT = "parse-from-clipboard"
    ACCEPTS = ("COPY_PASTE",)
    jwk_str: str | None = Field(default=None, max_length=1024 * 1024)
    kid: ShortText = None


class JwkFromCertificate(_Derived, _Typed):
    ENDPOINT = "parse-from-certificate"
    ACCEPTS = ("CERTIFICATE",)
    certificate_name: ShortText = None


class JwkFromKey(_Derived, _Typed):
    ENDPOINT = "parse-from-key"
    ACCEPTS = ("PUBLIC_KEY", "PRIVATE_KEY")

    key_name: ShortText = None
    source_type: str | None = Field(
        default=None, description="PUBLIC_KEY (default) or PRIVATE_KEY", max_length=64
    )


class JwkFromKeystore(_Derived, _Typed):
    ENDPOINT = "parse-from-keystore"
    ACCEPTS = ("KEYSTORE",)
    key_store_name: ShortText = None
    alias_name: ShortText = None


class JwkGenerate(_Base):
    type: str | None = Field(default=None, max_length=16)
    kid: ShortText = None
    rsa: dict[str, Any] | None = None
    ec: dict[str, Any] | None = None
    oct: dict[str, Any] | None = None
    okp: dict[str, Any] | None = None


class JwkUpdateBody(_Base):
    pass


class JwkRead(CamelModel):
    """The JWK management object; a get adds the key material and the JWK itself."""

    name: str
    description: str
    project_id: str
    source_type: str | None
    source_id: str | None
    source_url: str | None
    # Which environment (and keystore alias) of the source it was derived from: additive,
    # so that a declarative dump can name the whole source.
    source_environment: str | None = None
    source_alias: str | None = None
    type: str
    kid: str | None
    use_type: str | None
    algorithm: str | None
    private: bool
    rsa: dict[str, Any] | None = None
    ec: dict[str, Any] | None = None
    oct: dict[str, Any] | None = None
    okp: dict[str, Any] | None = None
    jwk: dict[str, Any] | None = None


def jwk_summary(jwk: Jwk, project_name: str, source_name: str | None) -> dict[str, Any]:
    """The JWK management object without key material (list, decision 9)."""
    return {
        "name": jwk.name,
        "description": jwk.description,
        "projectId": project_name,
        "sourceType": jwk.source_type,
        "sourceId": source_name,
        "sourceUrl": jwk.source_url,
        # Where it was derived from (kept when detached: sourceId says whether it still is).
        "sourceEnvironment": jwk.source_environment,
        "sourceAlias": jwk.source_alias,
        "type": KEY_TYPE_LABELS.get(jwk.key_type, jwk.key_type),
        "kid": jwk.kid,
        "useType": jwk.use_type,
        "algorithm": jwk.algorithm,
        "private": jwk.private_sealed is not None,
    }


def jwk_detail(
    jwk: Jwk, project_name: str, source_name: str | None, full: dict[str, Any]
) -> dict[str, Any]:
    """The JWK object with its key material under rsa/ec/oct/okp, and the JWK itself."""
    item = jwk_summary(jwk, project_name, source_name)
    material = {k: v for k, v in full.items() if k not in ("kty", "kid")}
    item[KEY_TYPE_LABELS.get(jwk.key_type, jwk.key_type).lower()] = material
    item["jwk"] = full
    return item
