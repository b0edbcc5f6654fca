"""A gateway node as the protocol names it, as it reports, and as an admin sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyops.errors import BadRequest
from keyops.storage.models import GatewayNode

__all__ = ["NodeAck", "NodeView", "node_name", "node_state"]


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    applied_revision: int
    last_seen: Any
    connected: bool
    listen: str
    fingerprints: dict[str, Any]
    last_error: str | None
    # CONNECTED (heard from within the TTL), SILENT (not since, still counted),
    # DISCONNECTED (said goodbye), FORGOTTEN (silent past the forget period).
    state: str


def node_state(node: GatewayNode, live_since: Any, forget_since: Any) -> str:
    """The node's ``NodeView.state``: heard since ``live_since`` (the TTL) or not, and
    since ``forget_since`` (the forget period) or not."""
    if not node.connected:
        return "DISCONNECTED"
    if node.last_seen >= live_since:
        return "CONNECTED"
    return "SILENT" if node.last_seen >= forget_since else "FORGOTTEN"


@dataclass(frozen=True, slots=True)
class NodeAck:
    """What a node reported (``POST /apiops/gateway/ack/``), its name already checked."""

    node: str
    revision: int
    listen: str
    fingerprints: dict[str, Any]
    error: str | None


def node_name(node: str) -> str:
    """A node's name as the protocol carries it; BadRequest if empty or too long."""
    clean = (node or "").strip()
    if not clean or len(clean) > 200:
        raise BadRequest("node must be 1-200 characters!")
    return clean
