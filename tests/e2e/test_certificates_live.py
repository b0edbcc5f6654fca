"""Certificates against a real ``keyops serve`` process, with a fresh database per backend.

(a) The cURL examples of the certificate pages, run verbatim with the real curl binary:
    only the host and the token are changed, and the ``@file`` they upload is a real
    PEM made here. Their answers are the documented ones.
(b) Two updates of one certificate at the same moment: each ends 200 (or a documented
    400), never 500; the certificate afterwards is one of the two whole, and what the
    environments hold is that certificate.
(c) Two creates of one name at the same moment: one 200, one 400 "already exist".
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.crypto import certs
from tests.support.certificates import (
    certificate_parts,
    multipart,
    openssl_facts,
    pooled_key,
)
from tests.support.databases import BACKENDS, database
from tests.support.messages import DEPLOYED, UNDEPLOYED
from tests.support.server import LiveServer, live_server

PASSWORD = "live-admin-password-1"
DOC_HOST = "https://demo.apinizer.com"

# --- the examples, exactly as the pages show them ----------------------------------------

# create-certificate.md, Example 1 and Example 2
CREATE_ONE_ENV = r"""curl -X POST \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/" \
  -H "Authorization: Bearer YOUR_TOKEN" \
  -F "certificateName=my-certificate" \
  -F "alias=my-cert-alias" \
  -F "certificateDescription=SSL certificate for API" \
  -F "environmentList=production" \
  -F "pemEncodedFile=@certificate.pem"
"""
CREATE_THREE_ENVS = r"""curl -X POST \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/" \
  -H "Authorization: Bearer YOUR_TOKEN" \
  -F "certificateName=my-certificate" \
  -F "alias=my-cert-alias" \
  -F "certificateDescription=SSL certificate for API" \
  -F "environmentList=production,staging,development" \
  -F "pemEncodedFile=@certificate.pem"
"""
# list-certificates.md
LIST = r"""curl -X GET \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/" \
  -H "Authorization: Bearer YOUR_TOKEN"
"""
# get-certificate.md
GET = r"""curl -X GET \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/my-certificate/" \
  -H "Authorization: Bearer YOUR_TOKEN"
"""
# update-certificate.md (and SEED-update-certificate.md), Example 1 and Example 2
UPDATE = r"""curl -X PUT \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/my-certificate/" \
  -H "Authorization: Bearer YOUR_TOKEN" \
  -F "alias=updated-cert-alias" \
  -F "certificateDescription=Updated SSL certificate" \
  -F "environmentList=production,staging" \
  -F "pemEncodedFile=@updated-certificate.pem"
"""
UPDATE_WITH_JWKS = r"""curl -X PUT \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/my-certificate/?updateReferencedJwks=true&updateScope=SAME_PROJECT" \
  -H "Authorization: Bearer YOUR_TOKEN" \
  -F "alias=updated-cert-alias" \
  -F "certificateDescription=Updated SSL certificate" \
  -F "environmentList=production,staging" \
  -F "pemEncodedFile=@updated-certificate.pem"
"""  # noqa: E501 - verbatim
# delete-certificate.md
DELETE = r"""curl -X DELETE \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/my-certificate/" \
  -H "Authorization: Bearer YOUR_TOKEN"
"""
# export-certificate.md
EXPORT = r"""curl -X GET \
  "https://demo.apinizer.com/apiops/projects/MyProject/certificates/my-certificate/export/" \
  -H "Authorization: Bearer YOUR_TOKEN" \
  --output my-certificate-certificates.zip
"""
# get-truststore-certificates.md
TRUSTSTORE = r"""curl -X GET \
  "https://demo.apinizer.com/apiops/projects/admin/certificates/truststore/production/" \
  -H "Authorization: Bearer YOUR_TOKEN"
"""
# create-jwk.md, Example 3 (makes the JWK the second update example re-derives)
CREATE_JWK = r"""curl -X POST \
  "https://demo.apinizer.com/apiops/projects/MyProject/jwks/" \
  -H "Authorization: Bearer YOUR_TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "my-jwk",
    "description": "JWK from certificate",
    "sourceType": "CERTIFICATE",
    "certificateName": "my-certificate",
    "environmentName": "production",
    "useType": "SIGNATURE",
    "algorithm": "RS256"
  }'
"""

STATUS_MARK = "\n@@status="
# curl reads this file by itself (CURL_HOME), so the commands above stay untouched.
CURLRC = f"""silent
show-error
dump-header = "last-headers.txt"
write-out = "{STATUS_MARK.replace(chr(10), chr(92) + "n")}%{{http_code}}"
"""


@dataclass
class Live:
    server: LiveServer
    token: str
    workdir: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str) -> str:
        return f"{self.server.base_url}{path}"

    def curl(self, example: str) -> tuple[int, Any]:
        """Run a page's example with bash and the real curl; (status, JSON body or None)."""
        assert example.count(DOC_HOST) == 1 and example.count("YOUR_TOKEN") == 1
        command = example.replace(DOC_HOST, self.server.base_url).replace("YOUR_TOKEN", self.token)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "CURL_HOME": str(self.workdir),
        }
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        out = done.stdout.decode("utf-8")
        body, _, status = out.rpartition(STATUS_MARK)
        return int(status), json.loads(body) if body.strip() else None

    def last_headers(self) -> dict[str, str]:
        lines = (self.workdir / "last-headers.txt").read_text().splitlines()
        return {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:]) if k
        }


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    backend = str(request.param)
    root = tmp_path_factory.mktemp(f"live-{backend}")
    with (
        database(backend, root) as url,
        live_server(url, root / "data", admin_password=PASSWORD) as server,
    ):
        r = httpx.post(
            f"{server.base_url}/apiops/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "admin",
                "client_secret": PASSWORD,
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
        workdir = root / "curl"
        workdir.mkdir()
        (workdir / ".curlrc").write_text(CURLRC)
        yield Live(server, r.json()["access_token"], workdir)


def deployed_ok(envs: list[str]) -> dict[str, Any]:
    return {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Deployment completed successfully",
            "environmentResults": [
                {"environmentName": e, "success": True, "message": DEPLOYED} for e in envs
            ],
        },
    }


def undeployed_ok(envs: list[str]) -> dict[str, Any]:
    return {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Undeployment completed successfully",
            "environmentResults": [
                {"environmentName": e, "success": True, "message": UNDEPLOYED} for e in envs
            ],
        },
    }


def rsa_cert(cn: str) -> certs.Issued:
    return certs.make_cert(
        certs.name(
            ("COUNTRY_NAME", "US"), ("ORGANIZATION_NAME", "Example Inc"), ("COMMON_NAME", cn)
        ),
        pooled_key("rsa2048"),
    )


def held(live: Live, env: str, kind: str = "certificate") -> dict[tuple[str, str], dict[str, Any]]:
    r = httpx.get(live.url(f"/apiops/environments/{env}/deployments/"), headers=live.headers)
    assert r.status_code == 200, r.text
    return {(x["projectName"], x["name"]): x for x in r.json()["resultList"] if x["kind"] == kind}


# --- (a) the documented examples ---------------------------------------------------------


def test_documented_examples_with_curl(live: Live) -> None:
    first = rsa_cert("example.com")
    (live.workdir / "certificate.pem").write_bytes(first.pem)
    facts = openssl_facts(live.workdir / "certificate.pem")

    status, body = live.curl(LIST)
    assert (status, body) == (200, {"success": True, "resultList": [], "resultCount": 0})

    status, body = live.curl(CREATE_ONE_ENV)
    assert (status, body) == (200, deployed_ok(["production"]))

    status, body = live.curl(CREATE_THREE_ENVS)
    assert (status, body) == (
        400,
        {
            "error": "bad_request",
            "error_description": "Certificate (name: my-certificate) is already exist!",
        },
    )

    status, body = live.curl(DELETE)
    assert (status, body) == (200, undeployed_ok(["production"]))

    status, body = live.curl(CREATE_THREE_ENVS)
    assert (status, body) == (200, deployed_ok(["production", "staging", "development"]))

    expected_rows = [
        {
            "environmentName": env,
            "startDate": facts["startDate"],
            "endDate": facts["endDate"],
            "sha1Thumbprint": facts["sha1Thumbprint"],
            "subjectDn": facts["subjectDn"],
            "alias": "my-cert-alias",
        }
        for env in ("production", "staging", "development")
    ]
    assert expected_rows[0]["subjectDn"] == "CN=example.com, O=Example Inc, C=US"
    assert expected_rows[0]["startDate"] == "2024-01-01T00:00:00.000Z"
    status, body = live.curl(LIST)
    assert status == 200
    assert body == {
        "success": True,
        "resultList": [
            {
                "name": "my-certificate",
                "description": "SSL certificate for API",
                "certificateEnvironmentList": expected_rows,
            }
        ],
        "resultCount": 1,
    }
    content = base64.b64encode(facts["der"]).decode()
    status, body = live.curl(GET)
    assert status == 200
    assert body == {
        "success": True,
        "resultList": [
            {
                "name": "my-certificate",
                "description": "SSL certificate for API",
                "certificateEnvironmentList": [
                    {**row, "base64EncodedContent": content} for row in expected_rows
                ],
            }
        ],
        "resultCount": 1,
    }

    status, body = live.curl(CREATE_JWK)
    assert status == 200 and body["success"] is True
    assert body["deploymentResult"]["success"] is True

    # Update, example 1: whole replacement; development is dropped and undeployed.
    second = rsa_cert("updated.example.com")
    (live.workdir / "updated-certificate.pem").write_bytes(second.pem)
    status, body = live.curl(UPDATE)
    assert status == 200, body
    assert body["success"] is True and body["deploymentResult"]["success"] is True
    assert body["deploymentResult"]["message"] == "Deployment completed successfully"
    assert {
        r["environmentName"]: r["message"] for r in body["deploymentResult"]["environmentResults"]
    } == {
        "production": DEPLOYED,
        "staging": DEPLOYED,
        "development": UNDEPLOYED,
    }
    item = httpx.get(
        live.url("/apiops/projects/MyProject/certificates/my-certificate/"), headers=live.headers
    ).json()["resultList"][0]
    assert item["description"] == "Updated SSL certificate"
    assert [(r["environmentName"], r["alias"]) for r in item["certificateEnvironmentList"]] == [
        ("production", "updated-cert-alias"),
        ("staging", "updated-cert-alias"),
    ]
    assert {r["base64EncodedContent"] for r in item["certificateEnvironmentList"]} == {
        base64.b64encode(second.der).decode()
    }
    assert ("MyProject", "my-certificate") not in held(live, "development")
    jwk_url = live.url("/apiops/projects/MyProject/jwks/my-jwk/")
    jwk = httpx.get(jwk_url, headers=live.headers).json()["resultList"][0]
    assert jwk["sourceId"] is None  # NULLIFY, the default
    assert jwk["jwk"]["x5c"] == [base64.b64encode(first.der).decode()]

    # Update, example 2: the JWKs made from the certificate follow it.
    status, body = live.curl(CREATE_JWK)
    assert (status, body) == (
        400,
        {
            "error": "bad_request",
            "error_description": (
                "JWK (name: my-jwk) is already exist! Try update operation if want to change"
                " its value."
            ),
        },
    )
    r = httpx.post(
        live.url("/apiops/projects/MyProject/jwks/"),
        headers=live.headers,
        json={
            "name": "follows",
            "sourceType": "CERTIFICATE",
            "certificateName": "my-certificate",
            "environmentName": "production",
            "useType": "SIGNATURE",
            "algorithm": "RS256",
        },
    )
    assert r.status_code == 200, r.text
    third = rsa_cert("third.example.com")
    (live.workdir / "updated-certificate.pem").write_bytes(third.pem)
    status, body = live.curl(UPDATE_WITH_JWKS)
    assert status == 200, body
    assert body["deploymentResult"]["success"] is True
    follows = httpx.get(
        live.url("/apiops/projects/MyProject/jwks/follows/"), headers=live.headers
    ).json()["resultList"][0]
    assert follows["sourceId"] == "my-certificate"
    assert follows["jwk"]["x5c"] == [base64.b64encode(third.der).decode()]
    for env in ("production", "staging"):
        assert held(live, env)[("MyProject", "my-certificate")]["contentHash"] == (
            hashlib.sha256(third.der).hexdigest()
        )

    status, body = live.curl(EXPORT)
    assert (status, body) == (200, None)
    headers = live.last_headers()
    assert headers["content-type"] == "application/octet-stream"
    assert (
        headers["content-disposition"] == 'attachment; filename="my-certificate-certificates.zip"'
    )
    archive_bytes = (live.workdir / "my-certificate-certificates.zip").read_bytes()
    assert int(headers["content-length"]) == len(archive_bytes)
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        assert sorted(archive.namelist()) == [
            "my-certificate-production.cer",
            "my-certificate-staging.cer",
        ]
        for member in archive.namelist():
            assert archive.read(member) == third.der

    # The truststore example: an admin-project certificate deployed to production.
    ca = rsa_cert("ca.example.com")
    body_bytes, content_type = multipart(
        certificate_parts(
            name="truststore-cert-1",
            alias="ca-cert-alias",
            description="Certificate from truststore",
            environments=["production"],
            pem=ca.pem,
        )
    )
    r = httpx.post(
        live.url("/apiops/projects/admin/certificates/"),
        content=body_bytes,
        headers={**live.headers, **content_type},
    )
    assert r.status_code == 200, r.text
    status, body = live.curl(TRUSTSTORE)
    assert status == 200
    ca_file = live.workdir / "ca.pem"
    ca_file.write_bytes(ca.pem)
    ca_facts = openssl_facts(ca_file)
    assert body == {
        "success": True,
        "resultList": [
            {
                "name": "truststore-cert-1",
                "description": "Certificate from truststore",
                "certificateEnvironmentList": [
                    {
                        "environmentName": "production",
                        "startDate": ca_facts["startDate"],
                        "endDate": ca_facts["endDate"],
                        "base64EncodedContent": base64.b64encode(ca.der).decode(),
                        "sha1Thumbprint": ca_facts["sha1Thumbprint"],
                        "subjectDn": "CN=ca.example.com, O=Example Inc, C=US",
                        "alias": "ca-cert-alias",
                    }
                ],
            }
        ],
        "resultCount": 1,
    }

    status, body = live.curl(DELETE)
    assert (status, body) == (200, undeployed_ok(["production", "staging"]))
    not_found = {
        "error": "bad_request",
        "error_description": "Certificate (name: my-certificate) is not found!",
    }
    for example in (GET, DELETE):
        assert live.curl(example) == (400, not_found)
    status, _ = live.curl(EXPORT)
    assert status == 400
    assert json.loads((live.workdir / "my-certificate-certificates.zip").read_text()) == not_found
    assert live.curl(LIST) == (200, {"success": True, "resultList": [], "resultCount": 0})


# --- (b) and (c): at the same moment --------------------------------------------------------


def at_once(live: Live, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send the requests from threads released together, each on a warmed-up connection."""
    barrier = threading.Barrier(len(requests), timeout=30)

    def send(request: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=live.server.base_url, timeout=60) as client:
            client.get("/apiops/test/healthcheck")
            barrier.wait()
            return client.request(**request)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def form_request(method: str, path: str, live: Live, **fields: Any) -> dict[str, Any]:
    body, content_type = multipart(certificate_parts(**fields))
    return {
        "method": method,
        "url": path,
        "content": body,
        "headers": {**live.headers, **content_type},
    }


# sha256 of the content, alias, description, environments
State = tuple[str, str, str, tuple[str, ...]]


def state_of(item: dict[str, Any]) -> State | None:
    """A certificate object as one state; None if its environments disagree (a mixture)."""
    rows = item["certificateEnvironmentList"]
    contents = {
        hashlib.sha256(base64.b64decode(r["base64EncodedContent"])).hexdigest() for r in rows
    }
    aliases = {r["alias"] for r in rows}
    if len(contents) != 1 or len(aliases) != 1:
        return None
    envs = tuple(r["environmentName"] for r in rows)
    return contents.pop(), aliases.pop(), item["description"], envs


def keep_reading(
    live: Live, path: str, stop: threading.Event, observed: list[httpx.Response]
) -> None:
    with httpx.Client(base_url=live.server.base_url, timeout=60) as client:
        while not stop.is_set():
            observed.append(client.get(path, headers=live.headers))
            time.sleep(0.005)


def test_concurrent_updates_leave_one_whole_state(live: Live) -> None:
    name = "raced"
    base = "/apiops/projects/MyProject/certificates/"
    start = rsa_cert("start.example")
    (r,) = at_once(
        live,
        [
            form_request(
                "POST",
                base,
                live,
                name=name,
                alias="start",
                description="start",
                environments=["production"],
                pem=start.pem,
            )
        ],
    )
    assert r.status_code == 200, r.text
    previous: State = (hashlib.sha256(start.der).hexdigest(), "start", "start", ("production",))
    every_env = ["production", "staging", "development"]
    for round_ in range(10):
        same_alias = round_ % 2 == 1  # then only the content and the rest tell them apart
        requested = {
            "a": (rsa_cert(f"a{round_}.example"), f"alias-a{round_}", ("production", "staging")),
            "b": (
                rsa_cert(f"b{round_}.example"),
                f"alias-{'a' if same_alias else 'b'}{round_}",
                ("staging", "development"),
            ),
        }
        states: dict[State, certs.Issued] = {
            (hashlib.sha256(c.der).hexdigest(), alias, f"state {key}{round_}", envs): c
            for key, (c, alias, envs) in requested.items()
        }

        # A reader all along: the certificate is never missing, never a mixture.
        stop, observed = threading.Event(), list[httpx.Response]()
        reader = threading.Thread(
            target=keep_reading, args=(live, f"{base}{name}/", stop, observed)
        )
        reader.start()
        try:
            answers = at_once(
                live,
                [
                    form_request(
                        "PUT",
                        f"{base}{name}/",
                        live,
                        name=None,
                        alias=alias,
                        description=description,
                        environments=list(envs),
                        pem=issued.pem,
                    )
                    for (_, alias, description, envs), issued in states.items()
                ],
            )
        finally:
            stop.set()
            reader.join()
        for answer in answers:
            assert answer.status_code in (200, 400), answer.text
            if answer.status_code == 200:
                assert answer.json()["deploymentResult"]["success"] is True, answer.text
        assert any(answer.status_code == 200 for answer in answers)
        for read_answer in observed:
            assert read_answer.status_code == 200, (round_, read_answer.text)
            seen = state_of(read_answer.json()["resultList"][0])
            assert seen == previous or seen in states, (round_, seen)

        item = httpx.get(live.url(f"{base}{name}/"), headers=live.headers).json()["resultList"][0]
        final = state_of(item)
        assert final in states, f"round {round_}: not one of the two updates whole: {final}"
        issued, (_, alias, _, envs) = states[final], final
        for env in every_env:
            holding = held(live, env)
            if env in envs:
                row = holding[("MyProject", name)]
                assert row["contentHash"] == hashlib.sha256(issued.der).hexdigest(), round_
                assert row["alias"] == alias, round_
            else:
                assert ("MyProject", name) not in holding, (round_, env)
        previous = final
    assert httpx.delete(live.url(f"{base}{name}/"), headers=live.headers).status_code == 200


def test_concurrent_creates_of_one_name(live: Live) -> None:
    base = "/apiops/projects/MyProject/certificates/"
    for round_ in range(8):
        name = f"created-{round_}"
        aliases = ["same", "same"] if round_ % 2 else [f"one-{round_}", f"two-{round_}"]
        answers = at_once(
            live,
            [
                form_request(
                    "POST",
                    base,
                    live,
                    name=name,
                    alias=alias,
                    description=f"by {alias}",
                    environments=["staging"],
                    pem=certs.self_signed("p256", f"{alias}.example").pem,
                )
                for alias in aliases
            ],
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 400], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 400)
        assert loser.json() == {
            "error": "bad_request",
            "error_description": f"Certificate (name: {name}) is already exist!",
        }
        winner = answers.index(next(a for a in answers if a.status_code == 200))
        item = httpx.get(live.url(f"{base}{name}/"), headers=live.headers).json()["resultList"][0]
        assert item["description"] == f"by {aliases[winner]}"
        assert httpx.delete(live.url(f"{base}{name}/"), headers=live.headers).status_code == 200
