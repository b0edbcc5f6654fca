"""A TCP proxy on loopback that a test can cut and restore: a database outage on demand.

* ``open``: every connection is forwarded to the target.
* ``refuse``: a database that is down: open connections are closed, new ones are
  closed as soon as they are accepted.
* ``blackhole``: a dead network path: nothing gets through in either direction, open
  connections fall silent and new ones are accepted but never answered.

``restore()`` closes whatever the cut left hanging and forwards again.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Literal

Mode = Literal["open", "refuse", "blackhole"]


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


class TcpProxy:
    """Forward 127.0.0.1:``port`` to ``target``, until told otherwise."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode: Mode = "open"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._generation = 0
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def cut(self, mode: Literal["refuse", "blackhole"]) -> None:
        self._switch(mode, close=mode == "refuse")

    def restore(self) -> None:
        # Connections that lived through a blackhole are in no known state; a real
        # network path coming back would not revive them either.
        self._switch("open", close=True)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self._switch("refuse", close=True)

    def _switch(self, mode: Mode, *, close: bool) -> None:
        with self._lock:
            self.mode = mode
            sockets: set[socket.socket] = set()
            if close:
                # Pumps of an older generation stop, whatever they still hold.
                self._generation += 1
                sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode, generation = self.mode, self._generation
                if mode == "refuse":
                    _close(client)
                    continue
                self._sockets.add(client)
            if mode == "blackhole":
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.add(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                args = (src, dst, generation)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, generation: int) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.mode == "blackhole" and self._generation == generation:
                    time.sleep(0.05)  # swallow it: the other side hears nothing
                if self.mode != "open" or self._generation != generation:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


@contextmanager
def tcp_proxy(host: str, port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
