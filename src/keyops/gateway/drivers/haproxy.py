"""``--driver haproxy``: update a running HAProxy in memory through its runtime API.

No reload at all: after the framework has put the new files on disk (so a restart
serves the same), every TLS file HAProxy has loaded is replaced in memory with
``set ssl cert`` + ``commit ssl cert``, and the truststore with ``set ssl ca-file`` +
``commit ssl ca-file``. New handshakes use the new material at once; open connections
keep theirs. HAProxy names loaded files by the path its configuration gave, so a file is
matched by its absolute path (or, failing that, by the path it resolves to).

Decisions:

* Only ``tls/**/*.pem`` (chain then key) and ``truststore.pem`` concern HAProxy; the
  ``.crt``/``.key`` files, ``certificates/`` and ``jwks.json`` are left alone, and a
  change touching none of those does not talk to HAProxy.
* A new identity is added in memory (``new ssl cert``, set, commit, ``add ssl crt-list``)
  when it has a crt-list to go to: the ``crt_list`` given to the driver or, without one,
  its own directory when HAProxy's configuration loads that directory (``crt DIR/``;
  HAProxy handles a directory as a crt-list, and a restart reads the new file too).
  Otherwise the summary says HAProxy does not serve it until a reload with a
  configuration naming it; that is not an error. An entry added to a crt-list *file*
  lives in memory only: the file must list it for a restart to serve it.
* Any answer from HAProxy other than the documented success aborts the open
  transaction, puts the previous content back into every file this activation already
  committed (newly added identities are taken out again), and raises DriverError with
  HAProxy's message; the framework then puts the previous files back on disk.
* A removed identity is taken out of HAProxy's memory where it can be (``del ssl
  crt-list`` from the crt-list it was added to, ``del ssl cert``). HAProxy refuses to
  delete a certificate a ``bind`` line names; it then keeps serving it until its
  configuration stops naming it and it is reloaded, which the summary says (not an
  error: failing would block every later change of the environment on a configuration
  edit, and the removed key is no more exposed than before).
* A truststore that becomes empty or is removed while HAProxy uses it as a ``ca-file``
  fails the activation: HAProxy can not be given an empty CA file at runtime, so it
  would go on trusting client certificates the manager no longer trusts. Fail closed.
* Nothing listening at the socket (no socket file, connection refused) is not an error:
  HAProxy is not running, has nothing in memory to update, and reads the new files when
  it starts. Failing instead would put the previous files back, and a first deployment
  could never give a not-yet-started HAProxy the files it needs to start. The summary and
  ``haproxyReachable`` in /status say so, which is how a mistyped socket path shows.
  A timeout, a refused permission or any answer but success is an error.
* An ``ssl cert`` transaction left open on one of the output directory's files (a node
  that died mid-activation) is aborted first. One left open on any other file fails the
  activation without touching anything: HAProxy 2.6 puts a ``set ssl cert`` for another
  file into the open transaction (and says "Transaction updated for certificate
  <the other file>!"), so every answer is also checked to name the file it was for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from keyops.gateway.drivers.base import Change, DriverError
from keyops.gateway.drivers.haproxy_api import RuntimeApi, RuntimeApiError, RuntimeApiUnavailable

__all__ = ["HaproxyDriver"]

TRUSTSTORE = "truststore.pem"


def _is_identity(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return len(parts) >= 2 and parts[0] == "tls" and rel.endswith(".pem")


def _one_line(text: str, limit: int = 300) -> str:
    """HAProxy's answer as one line: "Can't load the payload.\nCan't update X!" ->
    "Can't load the payload; Can't update X"."""
    lines = (line.strip().rstrip(".!").rstrip() for line in text.splitlines())
    one = "; ".join(line for line in lines if line)
    return one if len(one) <= limit else one[: limit - 3] + "..."


# Files a summary names before it only counts the rest: the summary travels in the node's
# ack, which the manager takes up to 2000 characters of, and a keystore may hold hundreds.
_NAMED = 5


def _listed(items: Sequence[str], sep: str = ", ") -> str:
    """``a, b`` or, past _NAMED items, ``a, b, c, d, e and 95 more``."""
    if len(items) <= _NAMED:
        return sep.join(items)
    return f"{sep.join(items[:_NAMED])} and {len(items) - _NAMED} more"


def _real_paths(paths: Iterable[str]) -> dict[str, str]:
    """Absolute path -> the path it resolves to (file system calls: run off the loop)."""
    return {p: os.path.realpath(p) for p in paths if os.path.isabs(p)}


class _Names:
    """Names HAProxy knows files by, matched by the same string or else the same real path."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self._exact = set(self.names)
        self._by_real: dict[str, str] = {}

    def resolve(self, real: Mapping[str, str]) -> None:
        self._by_real = {real[n]: n for n in self.names if n in real}

    def match(self, path: str, real: Mapping[str, str]) -> str | None:
        if path in self._exact:
            return path
        return self._by_real.get(real.get(path, path))


@dataclass(slots=True)
class _Loaded:
    """What HAProxy has in memory, from ``show ssl cert`` / ``ca-file`` / ``crt-list``."""

    certs: _Names
    cert_transaction: str | None
    ca_files: _Names | None = None  # None: not asked
    ca_transaction: str | None = None
    crt_lists: _Names = field(default_factory=lambda: _Names(()))
    real: dict[str, str] = field(default_factory=dict)

    def inside(self, name: str, root: str) -> bool:
        return self.real.get(name, "").startswith(root + os.sep)


def _sections(text: str) -> dict[str, list[str]]:
    """``# transaction`` / ``# filename`` sections of a ``show ssl ...`` answer."""
    sections: dict[str, list[str]] = {}
    current = sections.setdefault("", [])
    for line in text.splitlines():
        if line.startswith("# "):
            current = sections.setdefault(line[2:].strip(), [])
        elif line.strip():
            current.append(line)
    return sections


def _parse_certs(text: str) -> tuple[list[str], str | None]:
    sections = _sections(text)
    pending = [line.removeprefix("*") for line in sections.get("transaction", [])]
    return sections.get("filename", []), (pending[0] if pending else None)


def _parse_ca_files(text: str) -> tuple[list[str], str | None]:
    # "/path - 2 certificate(s)"; "@system-ca - 144 certificate(s)" is built in.
    def name(line: str) -> str:
        return line.rsplit(" - ", 1)[0].removeprefix("*")

    sections = _sections(text)
    names = [name(line) for line in sections.get("filename", []) if not line.startswith("@")]
    pending = [name(line) for line in sections.get("transaction", [])]
    return names, (pending[0] if pending else None)


@dataclass(slots=True)
class _Undo:
    """How to take back one committed step: restore ``previous`` or delete an addition."""

    kind: str  # "cert" | "ca-file"
    name: str
    previous: bytes | None
    crt_list: str | None = None


class _Failed(Exception):
    """HAProxy refused a step; carries its answer."""


class _Unavailable(_Failed):
    """Nothing listens at the runtime API address."""


class HaproxyDriver:
    """Pushes changed TLS files into a running HAProxy over its runtime API."""

    name = "haproxy"

    def __init__(self, socket: str, timeout: float = 5.0, *, crt_list: str | None = None) -> None:
        self.api = RuntimeApi(socket, timeout)  # ValueError: not an address
        self.socket = socket
        self.timeout = timeout
        self.crt_list = crt_list or None
        self._lock = asyncio.Lock()
        self._certificates: list[str] = []
        self._ca_files: list[str] = []
        self._reload_needed: list[str] = []
        self._reachable: bool | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "haproxySocket": self.socket,
            "haproxyCrtList": self.crt_list,
            "haproxyCertificates": list(self._certificates),
            "haproxyCaFiles": list(self._ca_files),
            "haproxyReloadNeeded": list(self._reload_needed),
            "haproxyReachable": self._reachable,
        }

    async def activate(self, change: Change) -> str:
        async with self._lock:
            return await _Activation(self, change).run()

    # --- runtime API steps (raise _Failed with HAProxy's answer) ------------------------

    async def _run(self, *args: str, payload: bytes | None = None) -> str:
        try:
            return await self.api.execute(*args, payload=payload)
        except RuntimeApiUnavailable as exc:
            raise _Unavailable(str(exc)) from None
        except RuntimeApiError as exc:
            raise _Failed(str(exc)) from None

    async def _expect(self, ok: Iterable[str], *args: str, payload: bytes | None = None) -> str:
        answer = await self._run(*args, payload=payload)
        if not any(piece in answer for piece in ok):
            raise _Failed(f"{' '.join(args)}: {_one_line(answer) or 'no answer'}")
        return answer

    async def _set_commit(self, kind: str, name: str, payload: bytes) -> None:
        if kind == "cert":
            done = (f"Transaction created for certificate {name}!",
                    f"Transaction updated for certificate {name}!")  # fmt: skip
        else:
            done = (f"transaction created for CA {name}!", f"transaction updated for CA {name}!")
        await self._expect(done, "set", "ssl", kind, name, payload=payload)
        answer = await self._expect(("\nSuccess!",), "commit", "ssl", kind, name)
        if f"Committing {name}" not in answer:
            raise _Failed(f"commit ssl {kind} {name}: {_one_line(answer)}")

    async def _abort(self, kind: str, name: str) -> str | None:
        """Abort the open transaction on ``name``; the reason when that failed."""
        try:
            answer = await self._run("abort", "ssl", kind, name)
        except _Failed as exc:
            return str(exc)
        if "Transaction aborted" in answer or "No ongoing transaction" in answer:
            return None
        return _one_line(answer)

    async def _loaded(self, *, ca: bool, crt_lists: bool, paths: Iterable[str] = ()) -> _Loaded:
        """What HAProxy has loaded; ``paths`` (ours) are resolved along with its names."""
        certs, pending = _parse_certs(await self._run("show", "ssl", "cert"))
        loaded = _Loaded(_Names(certs), pending)
        if ca:
            ca_files, loaded.ca_transaction = _parse_ca_files(
                await self._run("show", "ssl", "ca-file")
            )
            loaded.ca_files = _Names(ca_files)
        if crt_lists:
            answer = await self._run("show", "ssl", "crt-list")
            loaded.crt_lists = _Names(line for line in answer.splitlines() if line.strip())
        every = [*loaded.certs.names, *loaded.crt_lists.names, *paths]
        every += loaded.ca_files.names if loaded.ca_files is not None else []
        every += [p for p in (loaded.cert_transaction, loaded.ca_transaction) if p is not None]
        loaded.real = await asyncio.to_thread(_real_paths, every)
        for names in (loaded.certs, loaded.ca_files, loaded.crt_lists):
            if names is not None:
                names.resolve(loaded.real)
        return loaded

    def _remember(self, loaded: _Loaded, root: str) -> None:
        self._certificates = sorted(n for n in loaded.certs.names if loaded.inside(n, root))
        if loaded.ca_files is not None:
            self._ca_files = sorted(n for n in loaded.ca_files.names if loaded.inside(n, root))


@dataclass(slots=True)
class _Activation:
    """One ``activate`` call: its steps, what it committed and how to take that back."""

    driver: HaproxyDriver
    change: Change
    undo: list[_Undo] = field(default_factory=list)
    open_tx: tuple[str, str] | None = None
    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)
    still_served: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def path(self, rel: str) -> str:
        return os.path.join(str(self.change.output_dir), *PurePosixPath(rel).parts)

    async def run(self) -> str:
        change, driver = self.change, self.driver
        written = sorted(r for r in change.written if _is_identity(r))
        removed = sorted(r for r in change.removed if _is_identity(r))
        trust = TRUSTSTORE in change.written or TRUSTSTORE in change.removed
        if not (written or removed or trust):
            return "haproxy: no TLS file changed"
        ours = [self.path(r) for r in (*written, *removed)] + [self.path(TRUSTSTORE)]
        ours += [os.path.dirname(p) for p in ours] + [str(change.output_dir)]
        try:
            loaded = await driver._loaded(ca=trust, crt_lists=bool(written or removed), paths=ours)
        except _Unavailable as exc:
            # Nothing in memory to update: HAProxy reads these files when it starts.
            driver._reachable = False
            return f"haproxy: not running ({exc}); it reads the new files when it starts"
        except _Failed as exc:
            raise DriverError(f"haproxy: {exc}") from None
        driver._reachable = True
        try:
            root = loaded.real.get(str(change.output_dir), str(change.output_dir))
            driver._remember(loaded, root)
            await self._close_leftovers(loaded, root, certs=bool(written or removed))
        except _Failed as exc:
            raise DriverError(f"haproxy: {exc}") from None
        try:
            for rel in written:
                await self._push_identity(rel, loaded)
            if trust:
                await self._push_truststore(loaded)
        except _Failed as exc:
            raise DriverError(await self._roll_back(str(exc))) from None
        for rel in removed:
            await self._remove_identity(rel, loaded)
        with contextlib.suppress(_Failed):
            driver._remember(await driver._loaded(ca=trust, crt_lists=False), root)
        driver._reload_needed = self.not_loaded + self.still_served
        return self.summary()

    async def _close_leftovers(self, loaded: _Loaded, root: str, *, certs: bool) -> None:
        for kind, pending, needed in (
            ("cert", loaded.cert_transaction, certs),
            ("ca-file", loaded.ca_transaction, loaded.ca_files is not None),
        ):
            if pending is None or not needed:
                continue
            if not loaded.inside(pending, root):
                raise _Failed(
                    f"an ssl {kind} transaction is open on {pending}, which keyops does not "
                    "manage; commit or abort it first"
                )
            problem = await self.driver._abort(kind, pending)
            if problem is not None:
                raise _Failed(f"abort ssl {kind} {pending}: {problem}")

    def _crt_list_for(self, target: str, loaded: _Loaded) -> str | None:
        return self.driver.crt_list or loaded.crt_lists.match(os.path.dirname(target), loaded.real)

    async def _push_identity(self, rel: str, loaded: _Loaded) -> None:
        driver, target, payload = self.driver, self.path(rel), self.change.written[rel]
        name = loaded.certs.match(target, loaded.real)
        if name is not None:
            self.open_tx = ("cert", name)
            await driver._set_commit("cert", name, payload)
            self.open_tx = None
            previous = self.change.previous.get(rel)
            if previous is not None:
                self.undo.append(_Undo("cert", name, previous))
            self.updated.append(rel)
            return
        crt_list = self._crt_list_for(target, loaded)
        if crt_list is None:
            self.not_loaded.append(rel)
            return
        created = f"New empty certificate store '{target}'!"
        await driver._expect((created,), "new", "ssl", "cert", target)
        step = _Undo("cert", target, None)
        self.undo.append(step)
        self.open_tx = ("cert", target)
        await driver._set_commit("cert", target, payload)
        self.open_tx = None
        await driver._expect(("\nSuccess!",), "add", "ssl", "crt-list", crt_list, target)
        step.crt_list = crt_list
        self.added.append(rel)

    async def _push_truststore(self, loaded: _Loaded) -> None:
        assert loaded.ca_files is not None
        name = loaded.ca_files.match(self.path(TRUSTSTORE), loaded.real)
        if name is None:
            self.notes.append(f"{TRUSTSTORE} is not a ca-file HAProxy loaded")
            return
        content = self.change.written.get(TRUSTSTORE)
        if content is None or b"-----BEGIN CERTIFICATE-----" not in content:
            what = "removed" if content is None else "empty"
            raise _Failed(
                f"{TRUSTSTORE} is {what}, but HAProxy verifies clients with it and can not be "
                "given an empty ca-file at runtime; change HAProxy's configuration and reload it"
            )
        self.open_tx = ("ca-file", name)
        await self.driver._set_commit("ca-file", name, content)
        self.open_tx = None
        previous = self.change.previous.get(TRUSTSTORE)
        if previous is not None:
            self.undo.append(_Undo("ca-file", name, previous))
        self.updated.append(TRUSTSTORE)

    async def _remove_identity(self, rel: str, loaded: _Loaded) -> None:
        """Take a removed file out of HAProxy's memory where it can be; never raises."""
        driver, target = self.driver, self.path(rel)
        name = loaded.certs.match(target, loaded.real)
        if name is None:
            return
        crt_list = self._crt_list_for(target, loaded)
        try:
            if crt_list is not None:
                answer = await driver._run("del", "ssl", "crt-list", crt_list, name)
                if "deleted in crtlist" not in answer and "can't be found" not in answer:
                    raise _Failed(f"del ssl crt-list {crt_list} {name}: {_one_line(answer)}")
            answer = await driver._run("del", "ssl", "cert", name)
        except _Failed as exc:
            self.still_served.append(rel)
            self.notes.append(f"{rel} is still loaded ({exc})")
            return
        if f"Certificate '{name}' deleted!" in answer:
            self.notes.append(f"removed {rel}")
        elif "in use" in answer:
            self.still_served.append(rel)
            self.notes.append(
                f"{rel} is still served: HAProxy's configuration names it, reload needed"
            )
        else:
            self.still_served.append(rel)
            self.notes.append(f"{rel} is still loaded (del ssl cert: {_one_line(answer)})")

    async def _roll_back(self, reason: str) -> str:
        """Abort the open transaction and undo every committed step, newest first."""
        driver, problems = self.driver, []
        if self.open_tx is not None:
            problem = await driver._abort(*self.open_tx)
            if problem is not None:
                problems.append(f"abort ssl {self.open_tx[0]} {self.open_tx[1]}: {problem}")
        restored = 0
        for step in reversed(self.undo):
            try:
                if step.previous is not None:
                    await driver._set_commit(step.kind, step.name, step.previous)
                else:
                    if step.crt_list is not None:
                        await driver._expect(
                            ("deleted in crtlist",), "del", "ssl", "crt-list", step.crt_list,
                            step.name,
                        )  # fmt: skip
                    await driver._expect(("deleted!",), "del", "ssl", "cert", step.name)
                restored += 1
            except _Failed as exc:
                problems.append(str(exc))
                await driver._abort(step.kind, step.name)
        text = f"haproxy: {reason}"
        if self.undo:
            text += f"; put back {restored} of {len(self.undo)} file(s) committed before"
        if problems:
            text += f"; rollback failed: {_listed(problems, '; ')}"
        return text

    def summary(self) -> str:
        parts = []
        if self.updated:
            parts.append(f"updated in memory: {_listed(self.updated)}")
        if self.added:
            parts.append(f"added: {_listed(self.added)}")
        if self.not_loaded:
            parts.append(
                f"not loaded by HAProxy (a reload with a configuration naming them is needed): "
                f"{_listed(self.not_loaded)}"
            )
        parts += self.notes[:_NAMED]
        if len(self.notes) > _NAMED:
            parts.append(f"{len(self.notes) - _NAMED} more note(s)")
        return "haproxy: " + ("; ".join(parts) if parts else "nothing HAProxy loaded changed")
