"""A gateway node: follow the manager's snapshots of one environment and serve them.

The node long-polls ``GET {manager}/apiops/gateway/sync/`` and, for each snapshot it
receives, builds the complete served state off the event loop (parse, check hashes,
open the identity keystore, build the TLS context), saves it sealed to the data
directory, then swaps it in with one assignment: a request or a new connection sees the
old snapshot or the new one, never a mix. It then acknowledges the applied revision.
A snapshot that can not be applied leaves the previous one in place and is acknowledged
with the still-applied revision and the reason.

Decisions:

* ``since`` is the last revision the node has *seen*, applied or refused, so a refused
  snapshot is not sent again until the manager has a newer one. A node that has seen
  nothing yet leaves ``since`` out, and the manager answers at once.
* The node acknowledges again after every reconnect (and at start when it serves a
  snapshot from disk), so the manager learns what a node serves without waiting for a
  change. The ack goes before the next long poll, not after it.
* Several managers (replicas of one manager, on one database) may be given, most
  preferred first; the node talks to one at a time. A connection failure, a timeout, a
  5xx or any other answer it can not use fails that manager: the node moves at once to
  the next one not failing, and when every one fails, waits for the first one due again.
  A failed manager is due again after ``backoff_initial * 2**(failures - 1)`` seconds,
  capped at ``backoff_max`` (while no manager works) or ``failback_max`` (while a less
  preferred one works), times a random factor in [0.5, 1] so a fleet does not come back
  in step. While on a less preferred manager, the long poll is cut short when a preferred
  one is due, and the node goes back to it; if it fails again its delay doubles.
* A refused credential (401/403) is not a failover: the manager is up and every replica
  shares the credentials. It is logged as an error and retried every
  ``Timing.unauthorized_retry`` seconds. Whatever fails, the node keeps serving.
* After a failure or a switch of manager the first request is the ack (answered at
  once), so ``managerReachable`` turns true with the first request that succeeds; the
  long poll is only answered at a change or its timeout, and marking the node reachable
  on its answer left it false for up to a poll after the manager was back.
* The TLS listener binds at start even without a server identity, so a port conflict
  fails the start; until a snapshot names an identity it closes connections at once and
  the status endpoint reports ``tlsServing: false``. With a driver the listener is
  optional (``NodeConfig.listen`` None): the real gateway serves.
* With a driver, each snapshot goes through ``output.render`` -> ``OutputWriter.write``
  -> ``Driver.activate`` before it counts as applied (and before it is saved). A render,
  write or activate failure puts the previous files back, keeps the previous snapshot
  applied, and is acknowledged with the reason. A change that leaves every file as it
  was does not call the driver.
* At start, a saved snapshot is written out again (the output directory may have been
  wiped) before the manager is asked for anything, so the gateway keeps serving without
  the manager. That snapshot was activated once already, so if the driver fails now
  (nginx not started yet, say) the files are kept and the failure only reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import math
import random
import signal
import socket
import ssl
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keyops.crypto.x509 import format_instant
from keyops.gateway.client import Answer, ClientError, ManagerClient
from keyops.gateway.drivers.base import Change, Driver, DriverError
from keyops.gateway.http import Request, Response, gateway_routes, json_response, serve_http
from keyops.gateway.output import OutputError, OutputFile, OutputWriter, render
from keyops.gateway.snapshot import AppliedState, SnapshotError, build_state, parse_snapshot
from keyops.gateway.store import NodeStore, StoreError
from keyops.gateway.tls import TlsListener, TlsPeer, server_context
from keyops.secrets import Secret

__all__ = [
    "GatewayNode",
    "HostPort",
    "NodeConfig",
    "Timing",
    "default_node_name",
    "parse_hostport",
    "run_node",
]

log = logging.getLogger("keyops.gateway")

SYNC_PATH = "/apiops/gateway/sync/"
ACK_PATH = "/apiops/gateway/ack/"
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_hostport(text: str) -> HostPort:
    """``host:port`` or ``[v6]:port``; raises ValueError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return HostPort(host, int(port))


def default_node_name(listen: HostPort) -> str:
    """HOSTNAME-PORT of the TLS listener (or, without one, of the status endpoint)."""
    return f"{socket.gethostname()}-{listen.port}"


@dataclass(frozen=True, slots=True)
class Timing:
    """How long to wait for things; tests shorten these."""

    poll_wait: int = 20
    read_margin: float = 10.0
    connect_timeout: float = 5.0
    backoff_initial: float = 0.25
    backoff_max: float = 5.0
    # The cap of the delay before a preferred manager is tried again while another works.
    failback_max: float = 60.0
    unauthorized_retry: float = 30.0
    request_timeout: float = 10.0
    handshake_timeout: float = 10.0
    goodbye_timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    environment: str
    manager: str
    token: Secret
    listen: HostPort | None  # None: no TLS listener of the node's own (a driver serves)
    status_listen: HostPort
    data_dir: Path
    name: str
    # Where a driver's files go (required with a driver) and who owns them (uid, gid).
    output_dir: Path | None = None
    output_owner: tuple[int, int] | None = None
    # More replicas of the manager, tried in this order after ``manager``.
    fallbacks: tuple[str, ...] = ()

    @property
    def manager_base(self) -> str:
        return self.manager.rstrip("/")

    @property
    def managers(self) -> tuple[str, ...]:
        """Every manager's base URL, most preferred first."""
        urls: list[str] = []
        for url in (self.manager, *self.fallbacks):
            if url.rstrip("/") not in urls:
                urls.append(url.rstrip("/"))
        return tuple(urls)


@dataclass(slots=True)
class ManagerLink:
    """What the node knows of one manager: failures in a row, last error, last success."""

    url: str
    failures: int = 0
    failed_at: float = 0.0  # time.monotonic() of the last failure
    jitter: float = 1.0
    reachable: bool | None = None  # None: not asked yet
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None

    def due(self, timing: Timing, cap: float) -> float:
        """When (monotonic) this manager may be tried again; 0 when it is not failing."""
        if self.failures == 0:
            return 0.0
        delay = min(cap, timing.backoff_initial * 2.0 ** min(self.failures - 1, 30))
        return self.failed_at + delay * self.jitter

    def document(self, in_use: bool) -> dict[str, Any]:
        return {
            "url": self.url,
            "inUse": in_use,
            "reachable": self.reachable,
            "consecutiveFailures": self.failures,
            "lastError": self.last_error,
            "lastErrorAt": format_instant(self.last_error_at) if self.last_error_at else None,
            "lastSuccessAt": (
                format_instant(self.last_success_at) if self.last_success_at else None
            ),
        }


@dataclass(frozen=True, slots=True)
class Served:
    """The applied state and the TLS context built from it, swapped in together."""

    state: AppliedState
    context: ssl.SSLContext | None
    source: str  # "manager" or "disk"


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What the driver did with the last snapshot the node tried to apply."""

    revision: int
    outcome: str  # "applied" | "unchanged" | "failed"
    message: str
    at: datetime

    def document(self, driver: str) -> dict[str, Any]:
        return {
            "name": driver,
            "revision": self.revision,
            "outcome": self.outcome,
            "message": self.message,
            "at": format_instant(self.at),
        }


class _ApplyFailed(Exception):
    """The driver side refused a snapshot; str() is the reason."""


class _ManagerError(Exception):
    """The manager could not be reached or gave an answer the node can not use."""


class _Unauthorized(Exception):
    """The manager refused the node credential."""


Prepared = tuple[AppliedState, ssl.SSLContext | None, dict[str, OutputFile] | None]


def _prepare(body: bytes, environment: str, *, listener: bool, files: bool) -> Prepared:
    """Everything a snapshot needs before it can be swapped in (CPU work, off the loop)."""
    try:
        state = build_state(parse_snapshot(body), environment, open_keystores=files)
        context = server_context(state) if listener else None
        return state, context, render(state) if files else None
    except OutputError as exc:
        raise SnapshotError(str(exc)) from None
    except SnapshotError:
        raise
    except Exception as exc:
        # A parser bug must not stop the node. Its message may quote the input, so only
        # the exception's type and where it was raised are logged.
        log.debug("%s at\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        raise SnapshotError(f"unexpected {type(exc).__name__} while reading the snapshot") from None


def _describe_refusal(answer: Answer) -> str:
    try:
        doc = json.loads(answer.body)
        detail = f"{doc.get('error')}: {doc.get('error_description')}"
    except (ValueError, AttributeError):
        detail = "no details"
    return f"the manager refused the node credential ({answer.status}, {detail})"


class GatewayNode:
    """One gateway node; ``await run()`` serves until ``stop()``."""

    def __init__(
        self,
        config: NodeConfig,
        timing: Timing | None = None,
        *,
        driver: Driver | None = None,
    ) -> None:
        if driver is not None and config.output_dir is None:
            raise ValueError("a driver needs an output directory")
        if driver is None and config.listen is None:
            raise ValueError("without a driver the node needs its TLS listener")
        self.config = config
        self.driver = driver
        self.writer = (
            OutputWriter(config.output_dir, owner=config.output_owner)
            if driver is not None and config.output_dir is not None
            else None
        )
        self.last_apply: ApplyOutcome | None = None
        self.timing = timing or Timing()
        self.store = NodeStore(config.data_dir)
        self.served: Served | None = None
        self.manager_reachable = False
        self.last_sync_at: datetime | None = None
        # The last revision received, applied or refused; None before the first one.
        self._seen: int | None = None
        self._apply_error: str | None = None
        self._connection_error: str | None = None
        self._ack_pending = False
        self._links = [ManagerLink(url) for url in config.managers]
        self._active = 0
        # The manager the node last got an answer from, while it is reachable.
        self._connected_to: ManagerLink | None = None
        # Trying a preferred manager again while a less preferred one works.
        self._probing = False
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener = (
            TlsListener(
                config.listen.host,
                config.listen.port,
                self._current_context,
                self._serve_tls,
                handshake_timeout=self.timing.handshake_timeout,
            )
            if config.listen is not None
            else None
        )
        self._status_server: asyncio.Server | None = None
        self._status_connections: set[asyncio.Task[None]] = set()
        self.started = asyncio.Event()

    # --- what is served ---------------------------------------------------------------

    def _current_context(self) -> ssl.SSLContext | None:
        served = self.served
        return served.context if served is not None else None

    def _current_state(self) -> AppliedState | None:
        served = self.served
        return served.state if served is not None else None

    async def _serve_tls(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: TlsPeer
    ) -> None:
        await serve_http(reader, writer, gateway_routes(self._current_state, peer))

    @property
    def listen_address(self) -> HostPort | None:
        if self._listener is None:
            return None
        host, port = self._listener.address
        return HostPort(host, port)

    @property
    def status_address(self) -> HostPort:
        assert self._status_server is not None, "not started"
        host, port = self._status_server.sockets[0].getsockname()[:2]
        return HostPort(str(host), int(port))

    def fingerprints(self) -> dict[str, Any]:
        state = self._current_state()
        if state is None:
            return {"serverCertificateSha256": None, "truststoreSha256": [], "jwkKids": []}
        return state.fingerprints()

    def status(self) -> dict[str, Any]:
        """The status document (``GET /status``)."""
        state = self._current_state()
        listen = self.listen_address
        # While a preferred manager is tried again, the node is still on the one it is
        # connected to; with none reachable, the one it tries.
        current = self._connected_to or self._link
        document: dict[str, Any] = {
            "environment": self.config.environment,
            "node": self.config.name,
            "appliedRevision": state.revision if state is not None else None,
            "lastSyncAt": format_instant(self.last_sync_at) if self.last_sync_at else None,
            "managerReachable": self.manager_reachable,
            "manager": current.url,
            "managers": [link.document(link is current) for link in self._links],
            "listen": str(listen) if listen is not None else None,
            "tlsServing": self._current_context() is not None,
            "source": self.served.source if self.served is not None else None,
            "lastError": self._connection_error or self._apply_error,
            "fingerprints": self.fingerprints(),
            "driver": None,
        }
        if self.driver is not None:
            document["driver"] = {
                "name": self.driver.name,
                "outputDir": str(self.config.output_dir),
                **self.driver.describe(),
                "lastApply": (
                    self.last_apply.document(self.driver.name) if self.last_apply else None
                ),
            }
        return document

    def _status_handler(self, request: Request) -> Response:
        if request.path != "/status":
            return Response(404, b"not found")
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"", headers=(("Allow", "GET, HEAD"),))
        body = json.dumps(self.status()).encode("utf-8")
        return json_response(200, body, ("Cache-Control", "no-store"))

    async def _status_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._status_connections.add(task)
        try:
            await serve_http(reader, writer, self._status_handler)
        finally:
            self._status_connections.discard(task)
            writer.close()

    # --- applying ---------------------------------------------------------------------

    async def _prepare(self, body: bytes) -> Prepared:
        return await asyncio.to_thread(
            _prepare,
            body,
            self.config.environment,
            listener=self._listener is not None,
            files=self.driver is not None,
        )

    def _outcome(self, revision: int, outcome: str, message: str) -> None:
        # The ack carries it, and the manager refuses (400) a message over 2000 characters.
        self.last_apply = ApplyOutcome(revision, outcome, message[:1900], datetime.now(UTC))

    async def _activate(
        self, revision: int, files: dict[str, OutputFile] | None, *, restore: bool = True
    ) -> None:
        """Write the files and tell the driver; _ApplyFailed (files put back) if refused."""
        if self.driver is None or self.writer is None:
            return
        if files is None:
            raise _ApplyFailed("no files were rendered for the driver")
        writer, driver = self.writer, self.driver
        try:
            change: Change = await asyncio.to_thread(writer.write, files, revision)
        except OutputError as exc:
            self._outcome(revision, "failed", str(exc))
            raise _ApplyFailed(str(exc)) from None
        if change.empty:
            self._outcome(revision, "unchanged", "no file changed")
            return
        try:
            summary = await driver.activate(change)
        except DriverError as exc:
            reason = str(exc).strip().replace("\n", " ") or f"{driver.name} driver failed"
        except Exception as exc:
            log.debug("at\n%s", "".join(traceback.format_tb(exc.__traceback__)))
            reason = f"{driver.name} driver failed unexpectedly ({type(exc).__name__})"
        else:
            self._outcome(revision, "applied", summary)
            log.info("driver %s: %s", driver.name, summary)
            return
        if restore:
            try:
                await asyncio.to_thread(writer.restore, change)
            except (OSError, OutputError) as exc:
                reason += f"; the previous files could not all be put back: {exc}"
        self._outcome(revision, "failed", reason)
        raise _ApplyFailed(reason)

    async def _load_from_disk(self) -> None:
        try:
            stored = await asyncio.to_thread(self.store.load)
        except (StoreError, OSError) as exc:
            log.error("the saved snapshot can not be used, waiting for the manager: %s", exc)
            return
        if stored is None:
            log.info("no saved snapshot in %s, waiting for the manager", self.config.data_dir)
            return
        try:
            state, context, files = await self._prepare(stored.data)
        except SnapshotError as exc:
            log.error("the saved snapshot can not be applied, waiting for the manager: %s", exc)
            return
        try:
            await self._activate(state.revision, files, restore=False)
        except _ApplyFailed as exc:
            # Written all the same: these files were activated once, before they were saved.
            self._apply_error = f"revision {state.revision} written from disk, but {exc}"
            log.error("%s", self._apply_error)
        self.served = Served(state, context, "disk")
        _trim_heap()
        self._seen = state.revision
        self._ack_pending = True
        log.info(
            "serving revision %d of %s from disk (saved %s)",
            state.revision,
            state.environment,
            stored.saved_at,
        )

    async def _receive(self, body: bytes) -> bool:
        """Apply a snapshot from the manager; False when it could not even be read."""
        self._ack_pending = True
        try:
            state, context, files = await self._prepare(body)
        except SnapshotError as exc:
            revision = _revision_of(body)
            if revision is not None and self.driver is not None:
                self._outcome(revision, "failed", str(exc))
            return self._refused(revision, str(exc))
        try:
            await self._activate(state.revision, files)
        except _ApplyFailed as exc:
            return self._refused(state.revision, str(exc))
        try:
            await asyncio.to_thread(self.store.save, state.environment, state.revision, body)
            self._apply_error = None
        except OSError as exc:
            # Serving the new material is still right; only a restart without the manager
            # would fall back to an older revision.
            self._apply_error = f"revision {state.revision} applied but not saved: {exc}"
            log.error("%s", self._apply_error)
        self.served = Served(state, context, "manager")
        _trim_heap()
        self._seen = state.revision
        identity = state.identity
        log.info(
            "applied revision %d: identity %s, %d trusted certificate(s), %d JWK(s)",
            state.revision,
            f"{identity.source} sha256={identity.certificate_sha256}" if identity else "none",
            len(state.truststore),
            len(state.jwk_kids),
        )
        return True

    def _refused(self, revision: int | None, reason: str) -> bool:
        # The manager reads "revision N not applied: <reason>" to fail a deployment early.
        # The manager takes at most 2000 characters of it.
        self._apply_error = f"revision {revision} not applied: {reason}"[:1900]
        log.error("%s; still serving revision %s", self._apply_error, self._applied_revision)
        if revision is None:
            return False
        self._seen = revision
        return True

    @property
    def _applied_revision(self) -> int:
        state = self._current_state()
        return state.revision if state is not None else 0

    # --- talking to the manager -------------------------------------------------------

    def _client(self) -> ManagerClient:
        return ManagerClient(
            {
                "Authorization": f"Bearer {self.config.token.reveal().decode('utf-8')}",
                "User-Agent": "keyops-gateway",
            },
            connect_timeout=self.timing.connect_timeout,
        )

    @property
    def _link(self) -> ManagerLink:
        return self._links[self._active]

    def _mark_reachable(self, link: ManagerLink) -> None:
        """A request to ``link`` got an answer the node could use."""
        if not self.manager_reachable or self._connected_to is not link:
            log.info("connected to the manager at %s", link.url)
        link.failures = 0
        link.reachable = True
        link.last_success_at = datetime.now(UTC)
        self._connected_to = link
        self._probing = False
        self.manager_reachable = True
        self._connection_error = None

    def _mark_synced(self, link: ManagerLink) -> None:
        self._mark_reachable(link)
        self.last_sync_at = datetime.now(UTC)

    def _mark_failed(self, link: ManagerLink, reason: str) -> None:
        probe = self._probing
        if link.reachable is not False:
            log.log(
                logging.INFO if probe else logging.WARNING,
                "manager %s unreachable (%s)%s",
                link.url,
                reason,
                "" if probe else f"; serving revision {self._applied_revision or 'none'}",
            )
        link.failures += 1
        link.failed_at = time.monotonic()
        link.jitter = random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret
        link.reachable = False
        link.last_error = reason
        link.last_error_at = datetime.now(UTC)
        if probe:
            # A preferred manager tried again while another works: the node is still
            # connected, through the one it goes back to now.
            self._probing = False
            return
        self.manager_reachable = False
        self._connected_to = None
        self._connection_error = f"manager unreachable: {reason} ({link.url})"
        # Whichever manager answers next hears first what this node serves (answered at
        # once, unlike the long poll).
        if self._seen is not None:
            self._ack_pending = True

    def _use(self, index: int) -> None:
        if index == self._active:
            return
        log.debug("using manager %s (was %s)", self._links[index].url, self._link.url)
        self._active = index
        if self._seen is not None and self._links[index] is not self._connected_to:
            self._ack_pending = True

    async def _choose(self) -> ManagerLink:
        """The manager to talk to now: the current one while it works, unless a more
        preferred one is due again; after a failure the soonest due (waiting for it)."""
        timing, now = self.timing, time.monotonic()
        if self._link.failures == 0:
            for index in range(self._active):
                if self._links[index].due(timing, timing.failback_max) <= now:
                    self._probing = self.manager_reachable
                    self._use(index)
                    break
            return self._link
        dues = [(link.due(timing, timing.backoff_max), i) for i, link in enumerate(self._links)]
        due, index = min(dues)
        if due > now:
            await asyncio.sleep(due - now)
        self._use(index)
        return self._link

    def _poll_wait(self) -> int:
        """The long poll's ``wait``: cut short when a more preferred manager is due sooner."""
        timing, now = self.timing, time.monotonic()
        dues = [link.due(timing, timing.failback_max) for link in self._links[: self._active]]
        if not dues:
            return timing.poll_wait
        return max(1, min(timing.poll_wait, math.ceil(min(dues) - now)))

    async def _ack(self, client: ManagerClient, link: ManagerLink) -> None:
        listen = self.listen_address
        payload: dict[str, Any] = {
            "node": self.config.name,
            "revision": self._applied_revision,
            "listen": str(listen) if listen is not None else "",
            "fingerprints": self.fingerprints(),
            "error": self._apply_error,
        }
        if self.driver is not None and self.last_apply is not None:
            payload["driver"] = self.last_apply.document(self.driver.name)
        answer = await client.request(
            "POST", link.url + ACK_PATH, json_body=payload, within=self.timing.request_timeout
        )
        if answer.status in (401, 403):
            raise _Unauthorized(_describe_refusal(answer))
        if answer.status >= 500:
            raise _ManagerError(f"ack answered {answer.status}")
        if answer.status >= 300:
            log.warning("the manager did not take the ack (%d)", answer.status)
        self._ack_pending = False
        self._mark_reachable(link)

    async def _poll(self, client: ManagerClient, link: ManagerLink) -> bool:
        """One long poll; False when the answer was of no use and the loop should back off."""
        wait = self._poll_wait()
        params = {"wait": str(wait), "node": self.config.name}
        if self._seen is not None:
            # Without ``since`` the manager answers at once, even at revision 0.
            params["since"] = str(self._seen)
        answer = await client.request(
            "GET",
            link.url + SYNC_PATH,
            params=params,
            within=wait + self.timing.read_margin,
            limit=MAX_SNAPSHOT_BYTES,
        )
        if answer.status in (401, 403):
            raise _Unauthorized(_describe_refusal(answer))
        if answer.status == 204:
            self._mark_synced(link)
            return True
        if answer.status != 200:
            raise _ManagerError(f"sync answered {answer.status}")
        body = answer.body
        self._mark_synced(link)
        previous = self._seen
        usable = await self._receive(body)
        # The same revision again (or no readable revision) means the manager would answer
        # the next poll at once with the same thing: back off instead of spinning.
        return usable and (previous is None or self._seen != previous)

    async def _sync_loop(self) -> None:
        timing = self.timing
        backoff = timing.backoff_initial
        refused: str | None = None
        async with self._client() as client:
            while True:
                link = await self._choose()
                try:
                    if self._ack_pending:
                        await self._ack(client, link)
                    useful = await self._poll(client, link)
                except _Unauthorized as exc:
                    if str(exc) != refused:
                        log.error("%s; retrying every %ss", exc, timing.unauthorized_retry)
                    refused = str(exc)
                    self._probing = False
                    self.manager_reachable = True
                    self._connection_error = str(exc)
                    link.reachable, link.last_error = True, str(exc)
                    link.last_error_at = datetime.now(UTC)
                    await asyncio.sleep(timing.unauthorized_retry)
                    continue
                except (ClientError, _ManagerError) as exc:
                    self._mark_failed(link, str(exc) or type(exc).__name__)
                    continue
                except Exception as exc:
                    # Whatever happens, the node must keep following the manager.
                    log.error("sync failed unexpectedly (%s); retrying", type(exc).__name__)
                    log.debug("at\n%s", "".join(traceback.format_tb(exc.__traceback__)))
                    await asyncio.sleep(timing.backoff_max)
                    continue
                refused = None
                if useful:
                    backoff = timing.backoff_initial
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, timing.backoff_max)

    async def _goodbye(self) -> None:
        """Tell the manager this node is going away (best effort): the one in use first,
        then the others, all within ``Timing.goodbye_timeout``."""
        deadline = time.monotonic() + self.timing.goodbye_timeout
        order = [self._link, *(link for link in self._links if link is not self._link)]
        async with self._client() as client:
            for link in order:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    answer = await client.request(
                        "DELETE",
                        link.url + SYNC_PATH,
                        params={"node": self.config.name},
                        within=left,
                    )
                except ClientError as exc:
                    log.info("could not tell the manager %s goodbye: %s", link.url, exc)
                    continue
                if answer.status < 500:
                    return
                log.info("the manager %s answered goodbye with %d", link.url, answer.status)

    # --- lifecycle --------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run()`` to finish (call from the node's event loop)."""
        self._stop.set()

    def stop_threadsafe(self) -> None:
        """``stop()`` from another thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self) -> None:
        """Serve until ``stop()``; then say goodbye to the manager and close."""
        self._loop = asyncio.get_running_loop()
        await self._load_from_disk()
        if self._listener is not None:
            await self._listener.start()
        try:
            self._status_server = await asyncio.start_server(
                self._status_connection,
                self.config.status_listen.host,
                self.config.status_listen.port,
            )
        except OSError:
            if self._listener is not None:
                await self._listener.close()
            raise
        log.info(
            "node %s of %s: TLS on %s, driver %s, status on http://%s/status, manager(s) %s",
            self.config.name,
            self.config.environment,
            self.listen_address or "none",
            f"{self.driver.name} -> {self.config.output_dir}" if self.driver else "none",
            self.status_address,
            ", ".join(link.url for link in self._links),
        )
        if self._listener is not None and self._current_context() is None:
            log.info("no TLS server identity yet: the listener closes connections")
        self.started.set()
        sync = asyncio.create_task(self._sync_loop(), name="keyops-gateway-sync")
        try:
            await self._stop.wait()
        finally:
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sync
            await self._goodbye()
            self._status_server.close()
            for task in list(self._status_connections):
                task.cancel()
            if self._listener is not None:
                await self._listener.close()
            log.info("node %s stopped", self.config.name)


_malloc_trim: Any = None


def _trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc only). Reading a snapshot
    allocates a few MB of short-lived data (JSON, DER, parsed certificates), mostly on a
    worker thread's arena, that glibc would otherwise keep: 1.5 MB of a 100-certificate
    snapshot's node."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (AttributeError, OSError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


def _revision_of(body: bytes) -> int | None:
    try:
        revision = json.loads(body).get("revision")
    except (ValueError, AttributeError, RecursionError):
        return None
    return revision if isinstance(revision, int) and not isinstance(revision, bool) else None


async def _main(config: NodeConfig, timing: Timing | None, driver: Driver | None) -> None:
    node = GatewayNode(config, timing, driver=driver)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    await node.run()


def run_node(
    config: NodeConfig, timing: Timing | None = None, driver: Driver | None = None
) -> None:
    """Run a node until SIGTERM or SIGINT."""
    asyncio.run(_main(config, timing, driver))
