"""Heavy keystore requests against a live server, and the healthcheck measured meanwhile.

Shared by ``tests/e2e/test_keystore_stall.py`` and ``bench/keystore_stall.py``.
"""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from tests.crypto import certs

HEAVY_ITERATIONS = 4_999_999  # just under Java's (and keyops') per-derivation limit
HEAVY_PASSWORD = "the-right-password"


def heavy_pkcs12(iterations: int = HEAVY_ITERATIONS) -> bytes:
    """A PKCS#12 (made by openssl) whose MAC takes ``iterations`` rounds.

    Key and certificate are left unencrypted, so making it costs one derivation and a
    wrong password is found by the MAC alone: the cost under test.
    """
    made = certs.make_cert(
        certs.name(("COMMON_NAME", "heavy")), ec.generate_private_key(ec.SECP256R1())
    )
    with tempfile.TemporaryDirectory(prefix="keyops-heavy-") as tmp:
        work = Path(tmp)
        (work / "leaf.pem").write_bytes(made.pem)
        (work / "leaf.key").write_bytes(made.key_pem)
        certs.openssl(
            "pkcs12", "-export", "-name", "heavy", "-keypbe", "NONE", "-certpbe", "NONE",
            "-iter", str(iterations), "-macalg", "sha256",
            "-inkey", str(work / "leaf.key"), "-in", str(work / "leaf.pem"),
            "-passout", f"pass:{HEAVY_PASSWORD}", "-out", str(work / "heavy.p12"),
        )  # fmt: skip
        return (work / "heavy.p12").read_bytes()


def heavy_body(name: str, data: bytes, environments: list[str]) -> dict[str, object]:
    """Create-keystore body: the same file with a wrong password for every environment."""
    file = base64.b64encode(data).decode("ascii")
    return {
        "name": name,
        "description": "heavy",
        "keyStoreEnvironmentList": [
            {"environmentName": env, "type": "PKCS12", "file": file, "password": "wrong"}
            for env in environments
        ],
    }


@dataclass
class Probe:
    """Healthcheck latencies measured in a thread until stopped."""

    base_url: str
    interval: float = 0.02
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=120) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                r = client.get("/apiops/test/healthcheck")
                self.latencies.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
                self._stop.wait(self.interval)

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(180)


def post_heavy(
    base_url: str, token: str, project: str, body: dict[str, object]
) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    r = httpx.post(
        f"{base_url}/apiops/projects/{project}/keystores/",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=600,
    )
    return time.perf_counter() - started, r
