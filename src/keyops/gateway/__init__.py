"""The gateway node: receives an environment's snapshots from the manager and serves them.

``snapshot`` turns a sync answer into an immutable applied state, ``store`` keeps the last
one sealed on disk, ``tls`` builds and hot-swaps the listener's TLS contexts, ``http`` is
the small HTTP/1.1 responder, and ``node`` ties them to the manager's long-poll protocol.
"""

from keyops.gateway.node import GatewayNode, HostPort, NodeConfig, Timing, run_node

__all__ = ["GatewayNode", "HostPort", "NodeConfig", "Timing", "run_node"]
