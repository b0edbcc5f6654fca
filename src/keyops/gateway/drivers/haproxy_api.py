"""A small asyncio client for HAProxy's runtime API (the ``stats socket``, ``level admin``).

Facts about the API this client relies on, checked against Debian's HAProxy 2.6:

* Non-interactive mode: the client sends one command line, HAProxy answers and closes
  the connection. So ``execute`` opens a connection per command and reads until the
  server closes, within ``timeout`` seconds for the whole exchange.
* A payload follows a command line ending in ``<<`` and ends at the first empty line
  (HAProxy 2.2+). An empty line inside the payload ends it early and HAProxy then runs
  the remaining lines as commands, so payload lines that are empty (or only
  whitespace, which PEM ignores) are dropped before sending.
* The command and its payload must fit HAProxy's buffer (``tune.bufsize``, 16384 bytes
  by default); past that HAProxy closes the connection without a word, which this client
  reports as such.
* Arguments are split on spaces; a space, ``;`` or ``\\`` inside one is escaped with a
  backslash. Line breaks and other control characters can not be sent at all.
* Every answer ends with an empty line; the text before it is returned.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = [
    "DEFAULT_BUFSIZE",
    "RuntimeApi",
    "RuntimeApiAddress",
    "RuntimeApiError",
    "RuntimeApiUnavailable",
    "parse_address",
    "quote_arg",
]

DEFAULT_BUFSIZE = 16384
# An answer this long is not one of the answers the driver asks for.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class RuntimeApiError(Exception):
    """HAProxy could not be reached or did not answer; str(exc) says which and where."""


class RuntimeApiUnavailable(RuntimeApiError):
    """Nothing listens at the address: no such socket file, or the connection was refused."""


@dataclass(frozen=True, slots=True)
class RuntimeApiAddress:
    """A unix socket ``path``, or a TCP ``host`` and ``port``."""

    path: str | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str) -> RuntimeApiAddress:
    """``/path``, ``unix@/path``, ``ipv4@HOST:PORT`` or ``ipv6@[HOST]:PORT``, as in HAProxy's
    own ``stats socket`` line; raises ValueError."""
    value = text.strip()
    family, sep, rest = value.partition("@")
    if not sep:
        family, rest = "unix", value
    if family == "unix":
        if not rest:
            raise ValueError("expected a unix socket path, got an empty one")
        return RuntimeApiAddress(path=rest)
    if family not in ("ipv4", "ipv6"):
        raise ValueError(
            f"expected PATH, unix@PATH, ipv4@HOST:PORT or ipv6@[HOST]:PORT, got {text!r}"
        )
    host, colon, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected {family}@HOST:PORT, got {text!r}")
    return RuntimeApiAddress(host=host, port=int(port))


def quote_arg(arg: str) -> str:
    """One command argument, escaped the way HAProxy's CLI parser unescapes it."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in arg):
        raise ValueError(f"{arg!r} has a control character, which HAProxy's CLI can not take")
    return arg.replace("\\", "\\\\").replace(" ", "\\ ").replace(";", "\\;")


def _payload_lines(payload: bytes) -> bytes:
    lines = [line.rstrip() for line in payload.replace(b"\r", b"").split(b"\n")]
    return b"".join(line + b"\n" for line in lines if line)


class RuntimeApi:
    """HAProxy's runtime API at one address, one connection per command."""

    def __init__(self, address: str | RuntimeApiAddress, timeout: float = 5.0) -> None:
        self.address = address if isinstance(address, RuntimeApiAddress) else parse_address(address)
        self.timeout = timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = self.address
        if address.path is not None:
            return await asyncio.open_unix_connection(address.path, limit=65536)
        return await asyncio.open_connection(address.host, address.port, limit=65536)

    async def execute(self, *args: str, payload: bytes | None = None) -> str:
        """Run one command (``args`` are escaped) and return HAProxy's answer text.

        ``payload`` is sent after ``<<``; raises RuntimeApiError when HAProxy can not be
        reached, does not answer within ``timeout`` or closes without answering.
        """
        try:
            line = " ".join(quote_arg(a) for a in args)
        except ValueError as exc:
            raise RuntimeApiError(str(exc)) from None
        request = line.encode("utf-8")
        if payload is not None:
            request += b" <<\n" + _payload_lines(payload)
        request += b"\n"
        command = " ".join(args[:3])
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    reader, writer = await self._connect()
                except FileNotFoundError:
                    raise RuntimeApiUnavailable(f"no socket at {self.address}") from None
                except ConnectionRefusedError:
                    raise RuntimeApiUnavailable(f"{self.address} refused the connection") from None
                try:
                    writer.write(request)
                    await writer.drain()
                    answer = bytearray()
                    while chunk := await reader.read(65536):
                        answer += chunk
                        if len(answer) > MAX_ANSWER_BYTES:
                            raise RuntimeApiError(f"HAProxy's answer to {command} is too long")
                finally:
                    writer.close()
                    try:
                        await writer.wait_closed()
                    except OSError:
                        pass
        except TimeoutError:
            raise RuntimeApiError(
                f"HAProxy runtime API at {self.address} did not answer {command} "
                f"within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise RuntimeApiError(
                f"can not talk to HAProxy runtime API at {self.address}: {reason}"
            ) from None
        if not answer:
            hint = ""
            if len(request) >= DEFAULT_BUFSIZE - 256:
                hint = (
                    f" (the command was {len(request)} bytes; HAProxy drops commands larger "
                    "than its tune.bufsize, 16384 by default)"
                )
            raise RuntimeApiError(
                f"HAProxy closed the connection without answering {command}{hint}"
            )
        return answer.decode("utf-8", errors="replace").rstrip("\n")
