"""Gateway nodes: their credentials, what they sync, what they report back.

A node's name, its report and its admin view are in ``gateway_nodes``; the TLS identity
nodes serve (``set_tls_identity``) is in ``gateway_tls``. Both are re-exported here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from keyops.deploy.service import LOCAL
from keyops.domain.gateway_nodes import NodeAck, NodeView, node_name, node_state
from keyops.domain.gateway_tls import set_tls_identity
from keyops.errors import BadRequest, NotFound, Unauthorized
from keyops.secrets import Keyring, Purpose
from keyops.storage import notify
from keyops.storage.db import MAX_ROW_ID
from keyops.storage.models import (
    Environment,
    GatewayCredential,
    GatewayNode,
)
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.desired import DesiredStateRepository
from keyops.storage.repositories.gateway import GatewayRepository, member_nodes

if TYPE_CHECKING:
    from keyops.config import Settings

__all__ = [
    "NODE_TOKEN_PREFIX",
    "GatewayService",
    "NodeAck",
    "NodeView",
    "node_name",
    "set_tls_identity",
]

NODE_TOKEN_PREFIX = "kgw_"  # noqa: S105 - a marker, not a secret


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class GatewayService:
    def __init__(
        self,
        session: Session,
        keyring: Keyring,
        *,
        node_ttl_seconds: float,
        node_forget_seconds: float = 86400.0,
    ) -> None:
        self.session = session
        self.repo = GatewayRepository(session)
        self.keyring = keyring
        self.node_ttl = timedelta(seconds=node_ttl_seconds)
        self.node_forget = timedelta(seconds=node_forget_seconds)

    @classmethod
    def of(cls, session: Session, keyring: Keyring, settings: Settings) -> GatewayService:
        """The service with the settings' node TTL and forget period."""
        return cls(
            session,
            keyring,
            node_ttl_seconds=settings.gateway_node_ttl_seconds,
            node_forget_seconds=settings.gateway_node_forget_seconds,
        )

    # --- credentials -----------------------------------------------------------------

    def create_credential(self, env: Environment, name: str) -> tuple[str, GatewayCredential]:
        """A new node credential for the environment; the clear token is only returned."""
        if not name or not name.strip():
            raise BadRequest("Credential name can not be empty!")
        token = NODE_TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = GatewayCredential(
            environment_id=env.id,
            name=name.strip(),
            token_hash=_hash(token),
            prefix=token[: len(NODE_TOKEN_PREFIX) + 6],
        )
        return token, self.repo.add_credential(record)

    def credentials(self, env: Environment) -> Sequence[GatewayCredential]:
        return self.repo.credentials(env.id)

    def revoke_credential(self, credential_id: int) -> GatewayCredential:
        notify.publish(self.session, notify.CREDENTIALS)  # every replica forgets it
        # An id beyond the column's range names no row; asking would be a driver error.
        in_range = 0 < credential_id <= MAX_ROW_ID
        record = self.repo.credential(credential_id) if in_range else None
        if record is None:
            raise NotFound(f"Node credential (id: {credential_id}) is not found!")
        if record.revoked_at is None:
            record.revoked_at = utcnow()
        return record

    def authenticate(self, token: str) -> Environment:
        """The environment a node credential belongs to; Unauthorized otherwise."""
        digest = _hash(token)
        record = self.repo.credential_by_hash(digest)
        if record is None or not hmac.compare_digest(record.token_hash, digest):
            raise Unauthorized("Invalid token")
        if record.revoked_at is not None:
            raise Unauthorized("Invalid token")
        env = self.repo.environment(record.environment_id)
        if env is None:
            raise Unauthorized("Invalid token")
        return env

    def reload(self, env: Environment) -> Environment:
        """The environment as committed now (its revision may have moved on)."""
        return self.reload_id(env.id)

    def reload_id(self, env_id: int) -> Environment:
        fresh = self.repo.environment(env_id)
        if fresh is None:
            raise Unauthorized("Invalid token")  # deleted: its credentials went with it
        return fresh

    # --- what nodes receive ----------------------------------------------------------

    def revision(self, env: Environment) -> int:
        """The environment's revision: its newest committed artifact or settings change."""
        return env.revision

    def snapshot(self, env: Environment) -> dict[str, Any]:
        """Everything the environment holds, secrets opened for the node (send over TLS)."""
        rows = self.repo.present_artifacts(env.id)
        artifacts = []
        for row in rows:
            content = (
                self.keyring.open(row.content, Purpose.DEPLOYED_CONTENT)
                if row.sealed
                else row.content
            )
            artifacts.append(
                {
                    "kind": row.kind,
                    "projectName": row.project,
                    "name": row.name,
                    "alias": row.alias,
                    "contentHash": row.content_hash,
                    "content": base64.b64encode(content).decode("ascii"),
                }
            )
        identity = None
        if env.tls_project and env.tls_keystore and env.tls_alias:
            identity = {
                "projectName": env.tls_project,
                "keyStoreName": env.tls_keystore,
                "aliasName": env.tls_alias,
            }
        return {
            "environment": env.name,
            "revision": self.revision(env),
            "tlsIdentity": identity,
            "artifacts": artifacts,
        }

    # --- what nodes report -----------------------------------------------------------

    def touch(self, env: Environment, node: str, *, hello: bool = True) -> None:
        """Record that a node is connected (it is polling now).

        ``hello`` (the first check of a poll) marks the node connected. The later checks of
        the same poll only refresh ``last_seen`` of a node still connected: a stopping node
        closes its poll and says goodbye, and the poll's handler, which notices the closed
        connection only at its next check, must not mark the node connected again.
        """
        self.touch_id(env.id, node, hello=hello)

    def touch_id(self, env_id: int, node: str, *, hello: bool = True) -> None:
        name = node_name(node)
        if not hello:
            self.repo.refresh_seen(env_id, name)
            return
        self.repo.save_node(env_id, name, connected=True)

    def ack(
        self,
        env: Environment,
        node: str,
        revision: int,
        listen: str,
        fingerprints: dict[str, Any],
        error: str | None,
    ) -> None:
        """Record what a node applied; an environment all of whose nodes caught up is
        PUBLISHED again (``record_acks`` of one)."""
        self.record_acks(env, [NodeAck(node_name(node), revision, listen, fingerprints, error)])

    def record_acks(self, env: Environment, acks: Sequence[NodeAck]) -> None:
        """What nodes of one environment applied, in one statement; then one wake-up and
        one caught-up check (it reads all of the environment's nodes).

        A new node is connected; an ack leaves a known node's ``connected`` as it is, so an
        ack still in flight when a stopping node says goodbye does not undo the goodbye
        (a node polls right after it acknowledges, and that poll says hello). A node's last
        ack wins; rows go in name order, as the presence batch writes (no deadlock).
        """
        latest = {ack.node: ack for ack in acks}
        now = utcnow()
        self.repo.save_nodes(
            [
                {
                    "environment_id": env.id,
                    "name": ack.node,
                    "last_seen": now,
                    "applied_revision": max(0, int(ack.revision)),
                    "listen": ack.listen[:300],
                    "fingerprints_json": json.dumps(ack.fingerprints)[:100_000],
                    "last_error": ack.error[:2000] if ack.error else None,
                }
                for ack in sorted(latest.values(), key=lambda a: a.node)
            ]
        )
        notify.publish(self.session, notify.nodes_topic(env.id))
        self._confirm_if_caught_up(env)

    def _confirm_if_caught_up(self, env: Environment) -> None:
        """Every node the environment counts holding the newest state (or no node left
        to count) confirms it: the way a roll-out cut short (or timed out) completes."""
        if env.target != LOCAL or env.applied_revision >= env.revision:
            return
        nodes = self.members(env)
        if all(n.applied_revision >= env.revision and not n.last_error for n in nodes):
            DesiredStateRepository(self.session).confirm([(env.id, env.revision)])

    def disconnect(self, env_id: int, node: str) -> None:
        self.repo.disconnect(env_id, node_name(node))
        notify.publish(self.session, notify.nodes_topic(env_id), notify.goodbye_topic(env_id))

    def remove(self, env: Environment, node: str) -> None:
        """An admin's removal of a node that will not come back: it no longer counts."""
        if not self.repo.remove_node(env.id, node):
            raise NotFound(f"Gateway node (name: {node}) is not found!")
        notify.publish(self.session, notify.nodes_topic(env.id), notify.goodbye_topic(env.id))
        self._confirm_if_caught_up(env)

    def members(self, env: Environment) -> list[GatewayNode]:
        """The nodes the environment counts (``member_nodes``): connected or silent."""
        return member_nodes(self.session, env.id, utcnow() - self.node_forget)

    def nodes(self, env: Environment) -> list[NodeView]:
        now = utcnow()
        live_since, forget_since = now - self.node_ttl, now - self.node_forget
        return [
            NodeView(
                name=n.name,
                applied_revision=n.applied_revision,
                last_seen=n.last_seen,
                connected=n.connected and n.last_seen >= live_since,
                listen=n.listen,
                fingerprints=json.loads(n.fingerprints_json or "{}"),
                last_error=n.last_error,
                state=node_state(n, live_since, forget_since),
            )
            for n in self.repo.nodes(env.id)
        ]
