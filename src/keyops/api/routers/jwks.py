"""JWKs: create from any source, parse-from-*, generate, list, get, update, delete."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi.responses import Response
from sqlalchemy.orm import Session

from keyops.api.deps import DeployerProject, Keyops, KeyopsDep, ReaderProject
from keyops.api.list_cache import list_cache_key
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import DeploymentRead, ResultList
from keyops.api.schemas.jwks import (
    JwkCreate,
    JwkFromCertificate,
    JwkFromClipboard,
    JwkFromKey,
    JwkFromKeystore,
    JwkFromUrl,
    JwkGenerate,
    JwkRead,
    JwkUpdateBody,
    jwk_detail,
    jwk_summary,
)
from keyops.api.schemas.listing import ListParams, list_envelope, paged_answer
from keyops.config import Settings
from keyops.domain.jwks import GenerateInput, JwkInput, JwkService, generate_from_input
from keyops.domain.listing import jwk_listing
from keyops.errors import BadRequest
from keyops.net.fetch import FetchError, FetchPolicy, fetch_json, parse_allow_list
from keyops.storage.models import Project
from keyops.storage.models.base import utcnow

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/jwks", tags=["jwks"])
# A get answers a list of one; a list leaves the key material out (decision 9).
JwkList = ResultList[JwkRead]


def _service(k: Keyops, session: Session) -> JwkService:
    return JwkService(session, k.environments(session), k.keyring)


async def _fetch(inp: JwkInput, body: JwkCreate | JwkFromUrl, settings: Settings) -> Any:
    """Fetch a URL source. Called with no transaction open: it may take seconds."""
    try:
        policy = FetchPolicy(
            connect_timeout_ms=body.url_option_connect_timeout or 5000,
            read_timeout_ms=body.url_option_read_timeout or 10000,
            size_limit=body.url_option_size_limit or 1024 * 1024,
            allow_networks=parse_allow_list(settings.url_allow_list),
        )
        return await fetch_json((inp.url or "").strip(), policy)
    except FetchError as exc:
        raise BadRequest(exc.reason) from None


async def _create(
    project: Project, inp: JwkInput, body: JwkCreate | JwkFromUrl | None, k: Keyops
) -> dict[str, Any]:
    fetched = None
    if (inp.source_type or "").strip() == "URL" and body is not None:
        # Cheap checks first, then the URL, with no transaction open: it may take seconds.
        await k.db.read(lambda s: _service(k, s).check_new_name(project, inp.name))
        if not (inp.url and inp.url.strip()):
            raise BadRequest("URL is required for URL source type!")
        fetched = await _fetch(inp, body, k.settings)
    result = await k.deployer.change(
        lambda s: _service(k, s).create(project, inp, fetched=fetched).plan
    )
    return {"success": True, "deploymentResult": result.as_contract()}


@router.post("/", summary="Create JWK", response_model=DeploymentRead)
async def create_jwk(
    body: JwkCreate,
    project: DeployerProject,
    k: KeyopsDep,
) -> dict[str, Any]:
    inp = JwkInput(
        name=body.name,
        description=body.description,
        source_type=body.source_type,
        certificate_name=body.certificate_name,
        key_name=body.key_name,
        key_store_name=body.key_store_name,
        alias_name=body.alias_name,
        environment_name=body.environment_name,
        use_type=body.use_type,
        algorithm=body.algorithm,
        kid=body.kid,
        url=body.url,
        jwk_str=body.jwk_str,
    )
    return await _create(project, inp, body, k)


def _input(body: Any, *fields: str) -> JwkInput:
    """A parse endpoint's body as the domain's input: the fields every source type has,
    then the source's own (the body's attributes are named as JwkInput's)."""
    return JwkInput(
        name=body.name,
        description=body.description,
        source_type=body.chosen_source_type(),
        kid=body.kid,
        **{f: getattr(body, f) for f in fields},
    )


@router.post("/parse-from-url", summary="Parse JWK from URL", response_model=DeploymentRead)
async def parse_from_url(
    body: JwkFromUrl,
    project: DeployerProject,
    k: KeyopsDep,
) -> dict[str, Any]:
    return await _create(project, _input(body, "url"), body, k)


@router.post(
    "/parse-from-clipboard", summary="Parse JWK from clipboard", response_model=DeploymentRead
)
async def parse_from_clipboard(
    body: JwkFromClipboard,
    project: DeployerProject,
    k: KeyopsDep,
) -> dict[str, Any]:
    return await _create(project, _input(body, "jwk_str"), None, k)


@router.post(
    "/parse-from-certificate", summary="Parse JWK from certificate", response_model=DeploymentRead
)
async def parse_from_certificate(
    body: JwkFromCertificate,
    project: DeployerProject,
    k: KeyopsDep,
) -> dict[str, Any]:
    return await _create(
        project,
        _input(body, "certificate_name", "environment_name", "use_type", "algorithm"),
        None,
        k,
    )


@router.post("/parse-from-key", summary="Parse JWK from key", response_model=DeploymentRead)
async def parse_from_key(
    body: JwkFromKey,
    project: DeployerProject,
    k: KeyopsDep,
) -> dict[str, Any]:
    return await _create(
        project, _input(body, "key_name", "environment_name", "use_type", "algorithm"), None, k
    )


@router.post(
    "/parse-from-keystore", summary="Parse JWK from keystore", response_model=DeploymentRead
)
async def parse_from_keystore(
    body: JwkFromKeystore,
    project: DeployerProject,
    k: KeyopsDep,
) -> dict[str, Any]:
    return await _create(
        project,
        _input(body, "key_store_name", "environment_name", "alias_name", "use_type", "algorithm"),
        None,
        k,
    )


@router.post("/generate", summary="Generate JWK", response_model=DeploymentRead)
async def generate(body: JwkGenerate, project: DeployerProject, k: KeyopsDep) -> dict[str, Any]:
    kty = (body.type or "").strip().upper()
    params = {"RSA": body.rsa, "EC": body.ec, "OCT": body.oct, "OKP": body.okp}.get(kty)
    inp = GenerateInput(body.name, body.description, body.type, body.kid, params)
    await k.db.read(lambda s: _service(k, s).check_new_name(project, inp.name))
    # Key generation (RSA 4096 takes a while) runs in a worker thread with no
    # transaction open, so the database and the event loop stay free meanwhile.
    jwk = await anyio.to_thread.run_sync(generate_from_input, inp, utcnow())
    result = await k.deployer.change(lambda s: _service(k, s).generate(project, inp, jwk).plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get(
    "/",
    summary="List JWKs",
    response_model=paged_answer(JwkList),
    response_model_exclude_unset=True,
)
async def list_jwks(project: ReaderProject, k: KeyopsDep, params: ListParams) -> Response:
    """Paging and filters: api/schemas/listing.py; ``environment`` and expiry on JWKs:
    domain/listing.py."""
    query = params()

    def read(session: Session) -> dict[str, Any]:
        service = _service(k, session)
        listed = jwk_listing(service, project, query)
        sources = service.source_names(listed.items)
        rows = [jwk_summary(j, project.name, sources.get(j.id)) for j in listed.items]
        return list_envelope(rows, query, listed.total)

    async def build() -> dict[str, Any]:
        return await k.db.read(read)

    key = list_cache_key("jwk", query)
    if key is None:
        return await k.lists.fresh(paged_answer(JwkList), build)
    # Summaries only (no key material): kept until the project changes.
    model = paged_answer(JwkList) if query.paged else JwkList
    return await k.lists.answer(project, key, model, build)


@router.get(
    "/{jwkName}/", summary="Get JWK", response_model=JwkList, response_model_exclude_unset=True
)
async def get_jwk(jwkName: str, project: ReaderProject, k: KeyopsDep) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        service = _service(k, session)
        jwk = service.get(project, jwkName)
        source = service.source_names([jwk]).get(jwk.id)
        return jwk_detail(jwk, project.name, source, service.full(jwk))

    return {"success": True, "resultList": [await k.db.read(read)], "resultCount": 1}


@router.put("/{jwkName}/", summary="Update JWK", response_model=DeploymentRead)
async def update_jwk(
    jwkName: str, body: JwkUpdateBody, project: DeployerProject, k: KeyopsDep
) -> dict[str, Any]:
    result = await k.deployer.change(
        lambda s: _service(k, s).update(project, jwkName, body.name, body.description).plan
    )
    return {"success": True, "deploymentResult": result.as_contract()}


@router.delete("/{jwkName}/", summary="Delete JWK", response_model=DeploymentRead)
async def delete_jwk(jwkName: str, project: DeployerProject, k: KeyopsDep) -> dict[str, Any]:
    result = await k.deployer.change(
        lambda s: _service(k, s).delete(project, jwkName).plan, undeploy=True
    )
    return {"success": True, "deploymentResult": result.as_contract()}
