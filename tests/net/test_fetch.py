"""fetch_json against real HTTP(S) servers on loopback that the tests start themselves.

Nothing here mocks the fetcher. The servers are raw ``asyncio.start_server`` sockets, so
a test controls every byte (chunking, lying headers, stalls). The only stand-in is DNS:
a few tests replace the event loop's ``getaddrinfo`` to answer names that do not exist,
which is also what proves that the fetcher connects to the address it checked.
No test touches the network outside loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyops.net.fetch import FetchError, FetchPolicy, fetch_json, parse_allow_list

LOOPBACK_V4 = parse_allow_list("127.0.0.0/8")
LOOPBACK_ALL = parse_allow_list("127.0.0.0/8,::1/128")

JWKS: dict[str, Any] = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "kid": "key-id-1",
            "use": "sig",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
        },
        {"kty": "oct", "kid": "key-id-2", "k": "GawgguFyGrWKav7AX4VKUg"},
    ]
}

# Fast limits: every timeout test finishes in well under a second.
FAST = {"connect_timeout_ms": 300, "read_timeout_ms": 300, "size_limit": 64 * 1024}


def policy(allow: tuple[Any, ...] = LOOPBACK_V4, **overrides: Any) -> FetchPolicy:
    """A fast policy that trusts the given networks."""
    return FetchPolicy(**{**FAST, **overrides}, allow_networks=allow)


async def refused(url: str, fetch_policy: FetchPolicy) -> str:
    """The reason fetch_json gives for refusing url."""
    with pytest.raises(FetchError) as caught:
        await fetch_json(url, fetch_policy)
    return caught.value.reason


# --------------------------------------------------------------------------- servers


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    target: str
    headers: dict[str, str]
    local: str


@dataclass
class Exchange:
    """A request and the stream to answer it on."""

    request: Seen
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def head(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Send a status line and headers."""
        lines = [f"HTTP/1.1 {status} Whatever", *(f"{k}: {v}" for k, v in headers)]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self.writer.drain()

    async def answer(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    ) -> None:
        """Send a complete answer with a Content-Length."""
        await self.head(
            status, [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]
        )
        self.writer.write(body)
        await self.writer.drain()


Handler = Callable[[Exchange], Awaitable[None]]


class LoopbackServer:
    """A raw HTTP/1.1 server on loopback that records what it receives."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.tls = tls
        self.port = 0
        self.connections = 0
        self.requests: list[Seen] = []
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, hosts: tuple[str, ...]) -> None:
        """Listen on every host, all on the same port."""
        for _ in range(20):
            try:
                port = 0
                for host in hosts:
                    server = await asyncio.start_server(self._serve, host, port, ssl=self.tls)
                    self._servers.append(server)
                    port = server.sockets[0].getsockname()[1]
                self.port = port
                return
            except OSError:
                # The port picked for the first host may be taken on another; retry.
                await self._close_servers()
        raise RuntimeError("could not listen on one port for all hosts")

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        """A URL of this server."""
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            local = str(writer.get_extra_info("sockname")[0])
            seen = Seen(method, target, headers, local)
            self.requests.append(seen)
            await self.handler(Exchange(seen, reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # Teardown cancels stalled handlers; ending quietly keeps asyncio's stream
            # callback from logging the cancellation as an error.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _close_servers(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def close(self) -> None:
        """Stop listening and end every open exchange (slow handlers included)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_servers()


@contextlib.asynccontextmanager
async def serving(
    handler: Handler, *, hosts: tuple[str, ...] = ("127.0.0.1",), tls: ssl.SSLContext | None = None
) -> AsyncIterator[LoopbackServer]:
    """Run a LoopbackServer for the duration of the block."""
    server = LoopbackServer(handler, tls)
    await server.start(hosts)
    try:
        yield server
    finally:
        await server.close()


def answering(doc: Any) -> Handler:
    """A handler that answers doc as JSON."""

    async def handle(exchange: Exchange) -> None:
        await exchange.answer(body=json.dumps(doc).encode())

    return handle


def ipv6_loopback_available() -> bool:
    """Whether this host can listen on ::1."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")


# --------------------------------------------------------------------------- DNS stand-in


@contextlib.contextmanager
def fake_dns(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]
) -> Iterator[dict[str, int]]:
    """Answer the given names from a script: the n-th lookup gets the n-th answer.

    A name asked more often than scripted gets "no such host". Other names go to the
    real resolver. Yields how often each scripted name was looked up.
    """
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    calls = dict.fromkeys(answers, 0)

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return await real(host, port, *args, **kwargs)
        script = answers[host]
        calls[host] += 1
        if calls[host] > len(script):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        result = []
        for address in script[calls[host] - 1]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            result.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return result

    with monkeypatch.context() as patch:
        patch.setattr(loop, "getaddrinfo", getaddrinfo)
        yield calls


# --------------------------------------------------------------------------- happy path


async def test_jwk_set_is_fetched_with_plain_headers() -> None:
    async with serving(answering(JWKS)) as server:
        assert await fetch_json(server.url("/.well-known/jwks.json"), policy()) == JWKS
    [seen] = server.requests
    assert (seen.method, seen.target) == ("GET", "/.well-known/jwks.json")
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["user-agent"] == "keyops"
    assert seen.headers["accept-encoding"] == "identity"
    assert "cookie" not in seen.headers
    assert "authorization" not in seen.headers


async def test_single_jwk_and_content_type_is_not_trusted() -> None:
    async def handle(exchange: Exchange) -> None:
        body = json.dumps(JWKS["keys"][0]).encode()
        await exchange.answer(body=body, headers=(("Content-Type", "text/plain"),))

    async with serving(handle) as server:
        assert await fetch_json(server.url(), policy()) == JWKS["keys"][0]


async def test_spec_defaults() -> None:
    defaults = FetchPolicy()
    assert (defaults.connect_timeout_ms, defaults.read_timeout_ms) == (5000, 10000)
    assert (defaults.size_limit, defaults.max_redirects) == (1048576, 3)
    assert defaults.allow_networks == ()


# --------------------------------------------------------------------------- address checks


async def test_loopback_is_refused_without_allow_list() -> None:
    async with serving(answering(JWKS)) as server:
        reason = await refused(server.url(), policy(allow=()))
    assert reason == (
        f"URL ({server.url()}) resolves to a private, loopback or link-local address "
        "(127.0.0.1), which is not allowed!"
    )
    assert server.connections == 0


async def test_host_name_resolving_to_loopback_is_refused() -> None:
    async with serving(answering(JWKS)) as server:
        reason = await refused(server.url(host="localhost"), policy(allow=()))
    assert "resolves to a private, loopback or link-local address (127.0.0.1)" in reason
    assert server.connections == 0


@needs_ipv6
async def test_ipv6_loopback_is_refused_unless_allowed() -> None:
    async with serving(answering(JWKS), hosts=("::1",)) as server:
        url = server.url(host="[::1]")
        assert "address (::1), which is not allowed!" in await refused(url, policy(allow=()))
        assert "(::1)" in await refused(url, policy(allow=LOOPBACK_V4))
        assert server.connections == 0
        assert await fetch_json(url, policy(allow=LOOPBACK_ALL)) == JWKS
    assert server.requests[0].headers["host"] == f"[::1]:{server.port}"


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("172.16.5.4", "172.16.5.4"),
        ("192.168.1.1", "192.168.1.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("100.64.0.1", "100.64.0.1"),
        ("0.0.0.0", "0.0.0.0"),  # noqa: S104 - a URL host to refuse, nothing binds it
        ("224.0.0.1", "224.0.0.1"),
        ("240.0.0.1", "240.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("[::]", "::"),
        ("[fe80::1]", "fe80::1"),
        ("[fc00::1]", "fc00::1"),
        ("[ff02::1]", "ff02::1"),
        ("[::ffff:10.0.0.1]", "::ffff:a00:1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),
        ("[2002:a00:1::]", "2002:a00:1::"),
    ],
)
async def test_non_public_literals_are_refused(host: str, shown: str) -> None:
    # IP literals resolve without DNS and are refused before any connection is tried.
    reason = await refused(f"http://{host}:9/jwks", policy(allow=()))
    assert f"link-local address ({shown}), which is not allowed!" in reason


async def test_ipv4_mapped_loopback_follows_the_ipv4_allow_list() -> None:
    reason = await refused("http://[::ffff:127.0.0.1]:9/", policy(allow=parse_allow_list("::1")))
    assert "(::ffff:7f00:1)" in reason


async def test_any_bad_answer_refuses_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(answering(JWKS)) as server:
        with fake_dns(monkeypatch, {"mixed.keyops.test": [["127.0.0.1", "10.0.0.5"]]}):
            url = server.url(host="mixed.keyops.test")
            reason = await refused(url, policy(allow=LOOPBACK_V4))
    assert "(10.0.0.5), which is not allowed!" in reason
    assert server.connections == 0


async def test_unresolvable_name() -> None:
    reason = await refused("http://no-such-host.invalid/jwks", policy())
    assert reason == (
        "URL (http://no-such-host.invalid/jwks) could not be reached: "
        "host no-such-host.invalid could not be resolved!"
    )


async def test_dns_answer_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    # The name answers loopback once and "no such host" ever after. Had anything resolved
    # it a second time (httpx connecting by name), the fetch would fail: it succeeds, and
    # exactly one lookup happened, so the connection went to the address that was checked.
    async with serving(answering(JWKS)) as server:
        with fake_dns(monkeypatch, {"jwks.keyops.test": [["127.0.0.1"]]}) as calls:
            assert await fetch_json(server.url(host="jwks.keyops.test"), policy()) == JWKS
    assert calls == {"jwks.keyops.test": 1}
    assert server.requests[0].headers["host"] == f"jwks.keyops.test:{server.port}"


async def test_next_checked_address_is_tried_when_one_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on 127.0.0.2 at that port, so the first address refuses.
    async with serving(answering(JWKS)) as server:
        with fake_dns(monkeypatch, {"two.keyops.test": [["127.0.0.2", "127.0.0.1"]]}) as calls:
            assert await fetch_json(server.url(host="two.keyops.test"), policy()) == JWKS
    assert calls == {"two.keyops.test": 1}
    assert server.requests[0].local == "127.0.0.1"


# --------------------------------------------------------------------------- URL checks


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/jwks.json",
        "127.0.0.1/jwks.json",
        "example.com/jwks.json",
        "gopher://127.0.0.1:70/",
        "",
    ],
)
async def test_only_http_and_https(url: str) -> None:
    assert await refused(url, policy()) == "url must be an http or https URL!"


async def test_url_without_host_or_with_credentials() -> None:
    assert await refused("http:///jwks", policy()) == "url must name a host!"
    reason = await refused("http://user:secret@127.0.0.1:9/", policy())
    assert reason == "url must not contain a user name or password!"
    assert (await refused("http://" + "a" * 2100, policy())).startswith("url must be at most")


# --------------------------------------------------------------------------- failures


async def test_slow_answer_times_out_after_the_read_timeout() -> None:
    async def handle(exchange: Exchange) -> None:
        await asyncio.sleep(5)
        await exchange.answer(body=json.dumps(JWKS).encode())

    async with serving(handle) as server:
        started = time.monotonic()
        reason = await refused(server.url(), policy(read_timeout_ms=300, connect_timeout_ms=2000))
        elapsed = time.monotonic() - started
    assert reason == f"URL ({server.url()}) did not answer within 300 ms!"
    assert 0.25 <= elapsed < 1.0


async def test_trickling_answer_hits_the_overall_deadline() -> None:
    # Each byte arrives well within the read timeout; only the per-hop deadline stops it.
    async def handle(exchange: Exchange) -> None:
        await exchange.head(200, [("Content-Type", "application/json")])
        while True:
            exchange.writer.write(b" ")
            await exchange.writer.drain()
            await asyncio.sleep(0.05)

    async with serving(handle) as server:
        started = time.monotonic()
        reason = await refused(server.url(), policy(connect_timeout_ms=200, read_timeout_ms=300))
        elapsed = time.monotonic() - started
    assert reason == f"URL ({server.url()}) did not answer completely within 500 ms!"
    assert 0.45 <= elapsed < 1.2


async def test_closed_port_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reason = await refused(f"http://127.0.0.1:{port}/", policy())
    assert reason == f"URL (http://127.0.0.1:{port}/) could not be reached: connection refused!"


@contextlib.contextmanager
def never_accepting() -> Iterator[int]:
    """A listener whose accept queue is full, so new connections hang in the handshake."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(64):
            filler = socket.socket()
            fillers.append(filler)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                # This handshake hangs: the queue is full and nobody accepts.
                yield port
                return
        pytest.skip("this network stack never fills a listen backlog")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_server_that_never_accepts_times_out_on_connect() -> None:
    with never_accepting() as port:
        started = time.monotonic()
        reason = await refused(
            f"http://127.0.0.1:{port}/", policy(connect_timeout_ms=300, read_timeout_ms=5000)
        )
        elapsed = time.monotonic() - started
    assert reason == f"URL (http://127.0.0.1:{port}/) could not be reached within 300 ms!"
    assert 0.25 <= elapsed < 1.0


@dataclass
class Flood:
    """A handler that tries to send 64 MiB, in one of three framings."""

    framing: str
    total: int = 64 * 1024 * 1024
    sent: int = 0
    client_left: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, exchange: Exchange) -> None:
        piece = b"[" + b" " * (64 * 1024 - 1)
        headers = [("Content-Type", "application/json")]
        if self.framing == "content-length":
            headers.append(("Content-Length", str(self.total)))
        elif self.framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            headers.append(("Connection", "close"))
        await exchange.head(200, headers)
        if self.framing == "content-length":
            # The announced length alone must be enough: hold the body back and wait
            # to see the client hang up without having asked for it.
            if await asyncio.wait_for(exchange.reader.read(1), 5) == b"":
                self.client_left.set()
            return
        try:
            while self.sent < self.total:
                if self.framing == "chunked":
                    exchange.writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    exchange.writer.write(piece)
                await exchange.writer.drain()
                self.sent += len(piece)
        except ConnectionError:
            self.client_left.set()


@pytest.mark.parametrize("framing", ["content-length", "chunked", "read-until-close"])
async def test_oversized_answer_is_cut_off_early(framing: str) -> None:
    flood = Flood(framing)
    async with serving(flood) as server:
        started = time.monotonic()
        reason = await refused(server.url(), policy(size_limit=100_000, read_timeout_ms=2000))
        elapsed = time.monotonic() - started
        await asyncio.wait_for(flood.client_left.wait(), 5)
    assert reason == f"URL ({server.url()}) answered more than 100000 bytes!"
    # The client hung up long before the body was through: only what the socket buffers
    # held was ever written, not the 64 MiB.
    assert flood.sent < flood.total // 4
    if framing == "content-length":
        assert flood.sent == 0
        assert elapsed < 1.0  # did not wait for the withheld body (read timeout 2 s)


async def test_answer_of_exactly_the_size_limit_is_accepted() -> None:
    body = json.dumps(JWKS).encode()
    body += b" " * (1000 - len(body))

    async def handle(exchange: Exchange) -> None:
        await exchange.head(200, [("Transfer-Encoding", "chunked")])
        exchange.writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        await exchange.writer.drain()

    async with serving(handle) as server:
        assert await fetch_json(server.url(), policy(size_limit=1000)) == JWKS
        assert "more than 999 bytes" in await refused(server.url(), policy(size_limit=999))


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", b"", b"NaN", b'{"keys": [', b"\xff\xfe"]
)
async def test_non_json_answer(body: bytes) -> None:
    async def handle(exchange: Exchange) -> None:
        await exchange.answer(body=body)

    async with serving(handle) as server:
        assert await refused(server.url(), policy()) == f"URL ({server.url()}) did not answer JSON!"


@pytest.mark.parametrize("status", [500, 404, 304])
async def test_error_status(status: int) -> None:
    async def handle(exchange: Exchange) -> None:
        await exchange.answer(status, json.dumps({"error": "nope"}).encode())

    async with serving(handle) as server:
        reason = await refused(server.url(), policy())
    assert reason == f"URL ({server.url()}) answered HTTP {status}!"


async def test_compressed_answer_is_refused() -> None:
    async def handle(exchange: Exchange) -> None:
        await exchange.answer(body=b"\x1f\x8b", headers=(("Content-Encoding", "gzip"),))

    async with serving(handle) as server:
        reason = await refused(server.url(), policy())
    assert reason == f"URL ({server.url()}) answered with Content-Encoding gzip, not plain JSON!"


async def test_malformed_http() -> None:
    async def handle(exchange: Exchange) -> None:
        exchange.writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await exchange.writer.drain()

    async with serving(handle) as server:
        reason = await refused(server.url(), policy())
    assert reason.startswith(f"URL ({server.url()}) did not answer valid HTTP: ")


# --------------------------------------------------------------------------- redirects


def redirecting(locations: dict[str, str], cookie: bool = False) -> Handler:
    """Redirect the listed paths, answer JWKS on any other."""

    async def handle(exchange: Exchange) -> None:
        target = locations.get(exchange.request.target)
        if target is None:
            await exchange.answer(body=json.dumps(JWKS).encode())
            return
        headers = [("Location", target)]
        if cookie:
            headers.append(("Set-Cookie", "session=abc; Path=/"))
        await exchange.answer(302, b"", headers=tuple(headers))

    return handle


CHAIN = {"/r4": "/r3", "/r3": "/r2", "/r2": "r1", "/r1": "/jwks"}


async def test_redirect_chain_up_to_the_limit_is_followed() -> None:
    async with serving(redirecting(CHAIN, cookie=True)) as server:
        assert await fetch_json(server.url("/r2"), policy()) == JWKS
        assert [seen.target for seen in server.requests] == ["/r2", "/r1", "/jwks"]
        assert await fetch_json(server.url("/r3"), policy()) == JWKS
    # Set-Cookie on a redirect is never sent back on the next hop.
    assert all("cookie" not in seen.headers for seen in server.requests)


async def test_redirect_chain_over_the_limit_is_refused() -> None:
    async with serving(redirecting(CHAIN)) as server:
        reason = await refused(server.url("/r4"), policy())
        assert reason == f"URL ({server.url('/r4')}) redirected more than 3 times!"
        # Four hops were asked for (the original and three redirects), not the fifth.
        assert [seen.target for seen in server.requests] == ["/r4", "/r3", "/r2", "/r1"]
        reason = await refused(server.url("/r1"), policy(max_redirects=0))
        assert reason.endswith("redirected more than 0 times!")


async def test_redirect_to_a_disallowed_address_is_refused() -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    async with serving(redirecting({"/jwks": metadata})) as server:
        reason = await refused(server.url("/jwks"), policy(allow=LOOPBACK_V4))
    assert reason == (
        f"Redirect target ({metadata}) of URL ({server.url('/jwks')}) resolves to a private, "
        "loopback or link-local address (169.254.169.254), which is not allowed!"
    )


@needs_ipv6
async def test_redirect_from_allowed_host_to_ipv6_loopback_is_refused() -> None:
    async with serving(answering(JWKS), hosts=("::1",)) as inner:
        hop = inner.url(host="[::1]")
        async with serving(redirecting({"/jwks": hop})) as outer:
            reason = await refused(outer.url("/jwks"), policy(allow=LOOPBACK_V4))
    assert "address (::1), which is not allowed!" in reason
    assert inner.connections == 0


async def test_redirect_that_changes_dns_is_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every hop resolves and checks anew: the second lookup of the same name answers
    # a private address, and that hop is refused.
    async with serving(redirecting({"/a": "/b"})) as server:
        script = {"flip.keyops.test": [["127.0.0.1"], ["10.1.2.3"]]}
        with fake_dns(monkeypatch, script) as calls:
            reason = await refused(server.url("/a", host="flip.keyops.test"), policy())
    assert reason.startswith("Redirect target (http://flip.keyops.test:")
    assert "(10.1.2.3), which is not allowed!" in reason
    assert calls == {"flip.keyops.test": 2}
    assert [seen.target for seen in server.requests] == ["/a"]


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/jwks", "gopher://127.0.0.1/"]
)
async def test_redirect_to_other_schemes_is_refused(location: str) -> None:
    async with serving(redirecting({"/jwks": location})) as server:
        reason = await refused(server.url("/jwks"), policy())
    assert reason == f"URL ({server.url('/jwks')}) redirected to a URL that is not http or https!"


async def test_redirect_without_location() -> None:
    async def handle(exchange: Exchange) -> None:
        await exchange.answer(301)

    async with serving(handle) as server:
        reason = await refused(server.url(), policy())
    assert reason == f"URL ({server.url()}) answered HTTP 301 without a Location header!"


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Pki:
    """A private CA and the server certificates it issued, as files."""

    ca_pem: str
    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def server_context(self, dns_name: str, sni_seen: list[str | None]) -> ssl.SSLContext:
        """A server context with a certificate for dns_name that records the SNI it gets."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            # DNS name only, no IP address: verifying against 127.0.0.1 must fail.
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_path = self.directory / f"{dns_name}.crt"
        key_path = self.directory / f"{dns_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)

        def record(_sock: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            sni_seen.append(server_name)

        context.sni_callback = record
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyops test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return Pki(pem, tmp_path_factory.mktemp("pki"), key, cert)


def loopback_hosts() -> tuple[str, ...]:
    """Where "localhost" may resolve: both loopbacks when IPv6 is there."""
    return ("127.0.0.1", "::1") if ipv6_loopback_available() else ("127.0.0.1",)


async def test_https_verifies_the_original_hostname_over_the_pinned_address(pki: Pki) -> None:
    # The client connects to the pinned IP, yet sends SNI "localhost" and checks the
    # certificate (valid for the DNS name localhost only) against "localhost".
    sni: list[str | None] = []
    tls = pki.server_context("localhost", sni)
    async with serving(answering(JWKS), hosts=loopback_hosts(), tls=tls) as server:
        url = server.url("/jwks", host="localhost", scheme="https")
        fetch_policy = policy(allow=LOOPBACK_ALL, verify=pki.client_context())
        assert await fetch_json(url, fetch_policy) == JWKS
        # Same server, same trust, addressed by IP: the certificate has no IP entry, so
        # verification against the connected address fails. The success above therefore
        # verified against the hostname, not against the IP it connected to.
        by_ip = server.url("/jwks", host="127.0.0.1", scheme="https")
        reason = await refused(by_ip, fetch_policy)
    assert sni[0] == "localhost"
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"
    assert reason.startswith(
        f"URL ({by_ip}) presented a TLS certificate that could not be verified"
    )
    assert "mismatch" in reason.lower()


async def test_https_with_pinned_made_up_name(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    # A name only the (single-shot) DNS script knows: SNI, Host and verification all use it.
    sni: list[str | None] = []
    tls = pki.server_context("jwks.keyops.test", sni)
    async with serving(answering(JWKS), tls=tls) as server:
        with fake_dns(monkeypatch, {"jwks.keyops.test": [["127.0.0.1"]]}) as calls:
            url = server.url("/jwks", host="jwks.keyops.test", scheme="https")
            assert await fetch_json(url, policy(verify=pki.client_context())) == JWKS
    assert calls == {"jwks.keyops.test": 1}
    assert sni == ["jwks.keyops.test"]
    assert server.requests[0].headers["host"] == f"jwks.keyops.test:{server.port}"


async def test_https_certificate_for_another_name_is_refused(pki: Pki) -> None:
    sni: list[str | None] = []
    tls = pki.server_context("other.keyops.test", sni)
    async with serving(answering(JWKS), hosts=loopback_hosts(), tls=tls) as server:
        url = server.url("/jwks", host="localhost", scheme="https")
        reason = await refused(url, policy(allow=LOOPBACK_ALL, verify=pki.client_context()))
    assert reason.startswith(f"URL ({url}) presented a TLS certificate that could not be verified")
    assert "hostname mismatch" in reason.lower()
    assert sni == ["localhost"]
    assert server.requests == []


async def test_https_private_ca_is_not_trusted_by_default(pki: Pki) -> None:
    tls = pki.server_context("localhost", [])
    async with serving(answering(JWKS), hosts=loopback_hosts(), tls=tls) as server:
        url = server.url("/jwks", host="localhost", scheme="https")
        reason = await refused(url, policy(allow=LOOPBACK_ALL))
    assert "could not be verified: unable to get local issuer certificate!" in reason
    assert server.requests == []


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"connect_timeout_ms": 0}, "urlOptionConnectTimeout must be a whole number between 1"),
        ({"connect_timeout_ms": 60001}, "urlOptionConnectTimeout must be"),
        ({"connect_timeout_ms": True}, "urlOptionConnectTimeout must be"),
        ({"read_timeout_ms": -5}, "urlOptionReadTimeout must be a whole number between 1 and"),
        ({"read_timeout_ms": 2.5}, "urlOptionReadTimeout must be"),
        ({"size_limit": 0}, "urlOptionSizeLimit must be a whole number between 1 and 10485760"),
        ({"size_limit": 10 * 1024 * 1024 + 1}, "urlOptionSizeLimit must be"),
        ({"max_redirects": -1}, "max_redirects must be"),
    ],
)
def test_options_are_validated(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        FetchPolicy(**options)
    assert caught.value.reason.startswith(reason)


def test_option_extremes_are_accepted() -> None:
    FetchPolicy(connect_timeout_ms=1, read_timeout_ms=60000, size_limit=10 * 1024 * 1024)
    FetchPolicy(connect_timeout_ms=60000, read_timeout_ms=1, size_limit=1, max_redirects=0)


def test_parse_allow_list() -> None:
    assert parse_allow_list("127.0.0.0/8,::1/128") == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_allow_list(" 10.0.0.0/8 , ,::1 ") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_allow_list("") == ()
    with pytest.raises(ValueError, match="'localhost' is not an IP network"):
        parse_allow_list("127.0.0.0/8,localhost")
    with pytest.raises(ValueError, match=r"'10\.1\.2\.3/8' is not an IP network.*host bits"):
        parse_allow_list("10.1.2.3/8")
