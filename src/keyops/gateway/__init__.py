"""The gateway node: receives an environment's snapshots from the manager and serves them.

``snapshot`` turns a sync answer into an immutable applied state, ``store`` keeps the last
one sealed on disk, ``tls`` builds and hot-swaps the listener's TLS contexts, ``http`` is
the small HTTP/1.1 responder, ``node`` ties them to the manager's long-poll protocol, and
``options`` is the command line (``__main__``: the lean ``keyops-gateway``).

The names below are imported on first use, so that ``python -m keyops.gateway`` can
defer some imports before the node's modules load (see ``__main__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyops.gateway.node import GatewayNode, HostPort, NodeConfig, Timing, run_node

__all__ = ["GatewayNode", "HostPort", "NodeConfig", "Timing", "run_node"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from keyops.gateway import node

        return getattr(node, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
