"""Fetch a small JSON document (a JWK or JWK Set) from an operator-supplied URL, safely."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, NoReturn, TypeVar

import httpx

USER_AGENT = "keyops"
DEFAULT_CONNECT_TIMEOUT_MS = 5000
DEFAULT_READ_TIMEOUT_MS = 10000
DEFAULT_SIZE_LIMIT = 1048576
MAX_TIMEOUT_MS = 60000
MAX_SIZE_LIMIT = 10 * 1024 * 1024
MAX_REDIRECTS_LIMIT = 10
MAX_URL_LENGTH = 2048

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# NAT64 (RFC 6052) embeds an IPv4 address in its low 32 bits; a gateway would forward
# 64:ff9b::7f00:1 to 127.0.0.1, so the embedded address is what must be judged.
_NAT64 = IPv6Network("64:ff9b::/96")
_E = TypeVar("_E", bound=BaseException)
_ACCEPT = "application/jwk-set+json, application/jwk+json, application/json;q=0.9, */*;q=0.1"


class FetchError(Exception):
    """A URL could not be fetched; ``reason`` is a sentence meant for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch: timeouts, size, redirects, trusted networks and TLS trust."""

    connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS
    read_timeout_ms: int = DEFAULT_READ_TIMEOUT_MS
    size_limit: int = DEFAULT_SIZE_LIMIT
    max_redirects: int = 3
    allow_networks: tuple[IPNetwork, ...] = ()
    verify: ssl.SSLContext | bool = True

    def __post_init__(self) -> None:
        """Refuse out-of-range options with the field names users send."""
        _check_range("urlOptionConnectTimeout", self.connect_timeout_ms, 1, MAX_TIMEOUT_MS, "ms")
        _check_range("urlOptionReadTimeout", self.read_timeout_ms, 1, MAX_TIMEOUT_MS, "ms")
        _check_range("urlOptionSizeLimit", self.size_limit, 1, MAX_SIZE_LIMIT, "bytes")
        _check_range("max_redirects", self.max_redirects, 0, MAX_REDIRECTS_LIMIT, "redirects")
        networks = tuple(self.allow_networks)
        for network in networks:
            if not isinstance(network, IPv4Network | IPv6Network):
                raise TypeError(f"allow_networks holds {network!r}, which is not an IP network")
        # A list passed by a caller would make the frozen policy unhashable; keep a tuple.
        object.__setattr__(self, "allow_networks", networks)
        if not isinstance(self.verify, ssl.SSLContext | bool):
            raise TypeError("verify must be an ssl.SSLContext or a bool")


def _check_range(name: str, value: object, low: int, high: int, unit: str) -> None:
    """Raise FetchError unless value is an int within low..high."""
    # bool is an int subclass; True must not pass as a 1 ms timeout.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FetchError(f"{name} must be a whole number between {low} and {high} {unit}!")


def parse_allow_list(text: str) -> tuple[IPNetwork, ...]:
    """Parse a comma-separated list of IP networks such as "127.0.0.0/8,::1/128"."""
    networks: list[IPNetwork] = []
    for item in text.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            # strict: "10.1.2.3/8" is more likely a typo for /32 than a wish to allow 10/8.
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"allow list entry {entry!r} is not an IP network: {exc}") from None
    return tuple(networks)


async def fetch_json(url: str, policy: FetchPolicy) -> Any:
    """GET url under policy and return the parsed JSON body, or raise FetchError."""
    current = _parse_start_url(url)
    ssl_context = _ssl_context(policy.verify)
    label = f"URL ({url.strip()})"
    redirects = 0
    while True:
        outcome = await _fetch_hop(current, label, policy, ssl_context)
        if isinstance(outcome, bytes):
            return _parse_json(outcome, label)
        if redirects >= policy.max_redirects:
            raise FetchError(
                f"URL ({url.strip()}) redirected more than {policy.max_redirects} times!"
            )
        redirects += 1
        current = outcome
        label = f"Redirect target ({current}) of URL ({url.strip()})"


def _parse_start_url(url: str) -> httpx.URL:
    """Validate the URL a user gave."""
    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise FetchError(f"url must be at most {MAX_URL_LENGTH} characters long!")
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        raise FetchError("url is not a valid URL!") from None
    if parsed.scheme not in _SCHEMES:
        raise FetchError("url must be an http or https URL!")
    if not parsed.raw_host:
        raise FetchError("url must name a host!")
    if parsed.userinfo:
        # Credentials in the URL would be sent as Basic auth; keyops never forwards auth.
        raise FetchError("url must not contain a user name or password!")
    return parsed.copy_with(fragment=None)


def _redirect_target(current: httpx.URL, location: str, label: str) -> httpx.URL:
    """Resolve a Location header against the current URL and vet it like a user URL."""
    try:
        target = current.join(location.strip())
    except (httpx.InvalidURL, UnicodeError, ValueError):
        raise FetchError(f"{label} redirected to an invalid URL!") from None
    if target.scheme not in _SCHEMES:
        raise FetchError(f"{label} redirected to a URL that is not http or https!")
    if not target.raw_host:
        raise FetchError(f"{label} redirected to a URL without a host!")
    if target.userinfo:
        raise FetchError(f"{label} redirected to a URL with a user name or password!")
    return target.copy_with(fragment=None)


@functools.cache
def _default_context(verify: bool) -> ssl.SSLContext:
    """The system-independent certifi trust (or no verification), built once per process."""
    # trust_env=False: SSL_CERT_FILE is not a keyops setting; operators pass a context.
    return httpx.create_ssl_context(verify=verify, trust_env=False)


def _ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The TLS context for a fetch."""
    return verify if isinstance(verify, ssl.SSLContext) else _default_context(verify)


async def _fetch_hop(
    url: httpx.URL, label: str, policy: FetchPolicy, ssl_context: ssl.SSLContext
) -> bytes | httpx.URL:
    """One request: the body of a 2xx answer, or where a redirect points."""
    deadline_ms = policy.connect_timeout_ms + policy.read_timeout_ms
    try:
        # Per-operation timeouts don't bound a server that trickles one byte at a time.
        async with asyncio.timeout(deadline_ms / 1000) as deadline:
            addresses = await _resolve(url, label, policy)
            return await _request_any(url, addresses, label, policy, ssl_context)
    except TimeoutError:
        if deadline.expired():
            raise FetchError(
                f"{label} did not answer completely within {deadline_ms} ms!"
            ) from None
        raise


async def _resolve(url: httpx.URL, label: str, policy: FetchPolicy) -> list[IPAddress]:
    """Every address the host resolves to; refuses if any of them is not allowed."""
    host = url.raw_host.decode("ascii")
    port = url.port or _DEFAULT_PORTS[url.scheme]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(policy.connect_timeout_ms / 1000):
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except TimeoutError:
        raise FetchError(
            f"{label} could not be reached: host {host} was not resolved within "
            f"{policy.connect_timeout_ms} ms!"
        ) from None
    except (OSError, UnicodeError):
        raise FetchError(
            f"{label} could not be reached: host {host} could not be resolved!"
        ) from None
    addresses: list[IPAddress] = []
    for info in infos:
        # Scope ids ("fe80::1%eth0") do not matter for the check, only the address.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"{label} could not be reached: host {host} could not be resolved!")
    for address in addresses:
        # ANY bad answer refuses: a name answering both public and private is an attack.
        if not _is_allowed(address, policy.allow_networks):
            raise FetchError(
                f"{label} resolves to a private, loopback or link-local address ({address}), "
                "which is not allowed!"
            )
    return addresses


def _is_allowed(address: IPAddress, allow_networks: tuple[IPNetwork, ...]) -> bool:
    """Whether keyops may connect to address."""
    if any(address.version == net.version and address in net for net in allow_networks):
        return True
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and address.ipv4_mapped is not None:
            # ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack socket; only that one counts.
            return _is_allowed(embedded, allow_networks)
        if embedded is not None and not _is_allowed(embedded, allow_networks):
            # Tunnels and translators deliver to the embedded IPv4 address.
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Catches what the flags above miss, e.g. carrier-grade NAT 100.64.0.0/10.
        or not address.is_global
    )


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4, NAT64 or Teredo address leads to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


class _Unreachable(Exception):
    """A connection to one address failed before anything was sent; try the next one."""


async def _request_any(
    url: httpx.URL,
    addresses: list[IPAddress],
    label: str,
    policy: FetchPolicy,
    ssl_context: ssl.SSLContext,
) -> bytes | httpx.URL:
    """Request url from the first of its checked addresses that accepts a connection."""
    why = "no address"
    for address in addresses:
        try:
            return await _request(url, address, label, policy, ssl_context)
        except _Unreachable as exc:
            why = str(exc)
    raise FetchError(f"{label} could not be reached: {why}!")


async def _request(
    url: httpx.URL,
    address: IPAddress,
    label: str,
    policy: FetchPolicy,
    ssl_context: ssl.SSLContext,
) -> bytes | httpx.URL:
    """GET url over a connection to address, the IP that was checked."""
    # Pinning: httpx connects to the literal IP in the URL and never resolves the name
    # again, so a DNS answer that changes after the check (rebinding) is never used.
    pinned = url.copy_with(host=str(address))
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": USER_AGENT,
        "Accept": _ACCEPT,
        # Identity only: a compressed body could inflate far past the limit in one chunk.
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        # SNI and certificate hostname verification use the name the user gave,
        # not the pinned IP (httpcore passes this as server_hostname to the TLS layer).
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    connect_s = policy.connect_timeout_ms / 1000
    read_s = policy.read_timeout_ms / 1000
    timeout = httpx.Timeout(connect=connect_s, read=read_s, write=read_s, pool=connect_s)
    # A fresh client per hop: no cookie jar, connection pool or auth carried across hops;
    # trust_env=False so proxy variables and .netrc cannot bypass the address check.
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False, retries=0)
    try:
        async with httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
        ) as client:
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = await client.send(request, stream=True)
            try:
                return await _read_answer(url, response, label, policy)
            finally:
                await response.aclose()
    except httpx.ConnectTimeout:
        raise FetchError(
            f"{label} could not be reached within {policy.connect_timeout_ms} ms!"
        ) from None
    except httpx.PoolTimeout:
        raise FetchError(
            f"{label} could not be reached within {policy.connect_timeout_ms} ms!"
        ) from None
    except (httpx.ReadTimeout, httpx.WriteTimeout):
        raise FetchError(f"{label} did not answer within {policy.read_timeout_ms} ms!") from None
    except httpx.ConnectError as exc:
        tls = _find(exc, ssl.SSLError)
        if isinstance(tls, ssl.SSLCertVerificationError):
            detail = tls.verify_message or tls.reason or "unknown reason"
            raise FetchError(
                f"{label} presented a TLS certificate that could not be verified: "
                f"{_sentence(str(detail))}!"
            ) from None
        if tls is not None:
            raise FetchError(f"{label} failed the TLS handshake: {_describe(tls)}!") from None
        raise _Unreachable(_describe(exc)) from None
    except httpx.RemoteProtocolError as exc:
        raise FetchError(f"{label} did not answer valid HTTP: {_describe(exc)}!") from None
    except httpx.TransportError as exc:
        raise FetchError(f"{label} broke off the connection: {_describe(exc)}!") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{label} could not be fetched: {_describe(exc)}!") from None


async def _read_answer(
    url: httpx.URL, response: httpx.Response, label: str, policy: FetchPolicy
) -> bytes | httpx.URL:
    """The body of a 2xx answer read up to the size limit, or a redirect's target."""
    status = response.status_code
    if status in _REDIRECT_STATUSES:
        location = response.headers.get("Location")
        if not location:
            raise FetchError(f"{label} answered HTTP {status} without a Location header!")
        return _redirect_target(url, location, label)
    if not 200 <= status < 300:
        raise FetchError(f"{label} answered HTTP {status}!")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError(f"{label} answered with Content-Encoding {encoding}, not plain JSON!")
    too_big = f"{label} answered more than {policy.size_limit} bytes!"
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > policy.size_limit:
        # The server announced too much; leave the body unread.
        raise FetchError(too_big)
    chunks: list[bytes] = []
    total = 0
    # aiter_raw yields what each socket read returned (at most 64 KiB), so at most
    # size_limit plus one chunk is ever held before the answer is given up.
    async for chunk in response.aiter_raw():
        total += len(chunk)
        if total > policy.size_limit:
            raise FetchError(too_big)
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> NoReturn:
    """Refuse NaN and Infinity, which are not JSON."""
    raise ValueError(f"{name} is not JSON")


def _parse_json(body: bytes, label: str) -> Any:
    """Parse body as strict JSON whatever Content-Type claimed."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise FetchError(f"{label} did not answer JSON!") from None


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of kind in exc's cause/context chain or exception groups."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return None


def _describe(exc: BaseException) -> str:
    """A short lower-case description of a network failure."""
    if _find(exc, ConnectionRefusedError) is not None:
        return "connection refused"
    if _find(exc, ConnectionResetError) is not None:
        return "connection reset"
    os_error = _find(exc, OSError)
    if os_error is not None and os_error.strerror:
        return _sentence(os_error.strerror)
    text = str(exc) or type(exc).__name__
    return _sentence(text)


def _sentence(text: str) -> str:
    """Text fit for the middle of a sentence: lower-case start, no trailing full stop."""
    text = text.strip().rstrip(".!")
    return text[:1].lower() + text[1:] if text else "unknown error"
