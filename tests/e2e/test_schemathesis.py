"""Schemathesis against a real ``keyops serve``: the OpenAPI document against reality.

Every operation of ``/apiops/openapi.json`` is called with generated data (valid and
invalid) as the bootstrapped admin, on SQLite and on PostgreSQL. A response fails the run
if it is a 5xx, or if its status code, content type, headers or body are not what the
document says for that operation. Path parameters are drawn partly from names that exist
(the demo project and environments), so the calls reach past "not found".

``KEYOPS_SCHEMATHESIS_EXAMPLES`` bounds the fuzzed cases per operation (default 8; the
coverage phase adds its own boundary cases). The counts per backend are printed at the end.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from keyops.api.app import create_app
from keyops.config import Settings
from tests.support.databases import BACKENDS, database
from tests.support.server import LiveServer, live_server, password_token

ADMIN_PASSWORD = "schemathesis-admin-pw"
MAX_EXAMPLES = int(os.environ.get("KEYOPS_SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Names that exist on a --demo server, so generated calls reach the code behind the lookup.
KNOWN_NAMES: dict[str, list[str]] = {
    "projectName": ["MyProject", "admin"],
    "environmentName": ["production", "staging", "development"],
    "username": ["st-user"],
}


@dataclass
class Tally:
    """What one backend's run sent and got back."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    non_conforming: list[str] = field(default_factory=list)
    per_operation: defaultdict[str, Counter[int]] = field(
        default_factory=lambda: defaultdict(Counter)
    )

    def summary(self, backend: str) -> str:
        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"schemathesis [{backend}]: {self.cases} cases, {len(self.server_errors)} 5xx,"
            f" {len(self.non_conforming)} non-conforming ({by_status})"
        )


@dataclass
class Target:
    backend: str
    server: LiveServer
    token: str
    tally: Tally

    def token_revoked(self) -> bool:
        r = httpx.get(
            f"{self.server.base_url}/apiops/projects/",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        return r.status_code == 401

    def refresh_token(self) -> None:
        self.token = password_token(self.server.base_url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    backend = str(request.param)
    root: Path = tmp_path_factory.mktemp(f"schemathesis-{backend}")
    with (
        database(backend, root) as url,
        live_server(
            url,
            root / "data",
            admin_password=ADMIN_PASSWORD,
            # A long-poll that waits its full time would make every sync case slow.
            extra_env={"KEYOPS_GATEWAY_POLL_SECONDS": "1"},
        ) as server,
    ):
        served = httpx.get(f"{server.base_url}/apiops/openapi.json", timeout=30)
        assert served.json() == DOCUMENT
        token = password_token(server.base_url, "admin", ADMIN_PASSWORD)
        r = httpx.post(
            f"{server.base_url}/apiops/admin/users/",
            json={"username": "st-user", "password": "st-user-password-1"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        tally = Tally()
        yield Target(backend, server, token, tally)
        _report(request.config, tally.summary(backend))
        if os.environ.get("KEYOPS_SCHEMATHESIS_VERBOSE"):
            for operation, statuses in sorted(tally.per_operation.items()):
                _report(request.config, f"  {operation}: {dict(sorted(statuses.items()))}")
        errors = server.log()
        assert "Traceback" not in errors, errors[-4000:]


def _report(config: pytest.Config, line: str) -> None:
    """Print past pytest's capture, so the counts show even when every case passes."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


def _known_names(case: Any) -> None:
    """Point three in four generated path names at things that exist.

    The choice hangs on the generated value, so a run is repeatable. The thing a DELETE
    removes keeps its generated value, so the known names stay for later cases.
    """
    params = case.path_parameters or {}
    deleted = case.path.rstrip("/").rsplit("/", 1)[-1].strip("{}")
    for name, value in params.items():
        known = KNOWN_NAMES.get(name)
        if not known or value in known or (case.method == "DELETE" and name == deleted):
            continue
        pick = zlib.crc32(repr(value).encode())
        if pick % 4:
            params[name] = known[pick % len(known)]


def _document() -> dict[str, Any]:
    # The document is built at collection time, before any server runs; the target
    # fixture checks that each server serves exactly this document.
    settings = Settings(database_url="sqlite://", data_dir=Path("/nonexistent"))
    return create_app(settings).openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.update(request_timeout=60)
schema.config.generation.update(max_examples=MAX_EXAMPLES, database="none")


@schema.parametrize()
def test_the_service_answers_as_its_document_says(case: Any, target: Target) -> None:
    _known_names(case)
    headers = {"Authorization": f"Bearer {target.token}"}
    response = case.call(base_url=target.server.base_url, headers=headers)
    if response.status_code == 401 and target.token_revoked():
        # A generated call may revoke the admin's token (DELETE /admin/tokens/{id}).
        target.refresh_token()
        headers = {"Authorization": f"Bearer {target.token}"}
        response = case.call(base_url=target.server.base_url, headers=headers)
    tally = target.tally
    tally.cases += 1
    tally.statuses[response.status_code] += 1
    tally.per_operation[f"{case.method} {case.path}"][response.status_code] += 1
    label = f"{case.method} {case.formatted_path} -> {response.status_code}"
    if response.status_code >= 500:
        tally.server_errors.append(label)
    try:
        case.validate_response(
            response,
            checks=CHECKS,
            headers=headers,
            transport_kwargs={"base_url": target.server.base_url},
        )
    except Exception:
        tally.non_conforming.append(label)
        raise
