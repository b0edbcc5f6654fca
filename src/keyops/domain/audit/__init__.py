"""The audit log: who changed what, when, from where, and every refused caller.

Every committed change appends one entry per changed thing in the change's own
transaction: ``install`` listens for the commit of every write session of the database
(the one place every change passes, ``Database.write``'s unit of work), so an entry
exists exactly when its change does. What the entry says comes from two places:

- the request (``RequestContext``, set per request by ``api/request_context`` and filled
  in by the auth dependency): user, token id, source address, request id, and the
  operation the route is (``route_operation``);
- the lifecycle (``note``): a per-environment resource's create, update (or rollback) and
  delete note the kind, name, environments and the SHA-256 fingerprints of the material
  before and after. Changes nobody noted (users, tokens, projects, environments, JWKs,
  republish, ...) get one entry from the route: its operation, path's project and name,
  and the environments of its deployment plan (``planned``).

Refusals and failed authorisations have no change transaction: ``record`` appends them in
their own small one. Entries are hash-chained: ``hash`` is SHA-256 over ``canonical`` of
the entry, ``prev_hash`` (the previous entry's ``hash``) and position included, so
``verify`` finds an edited, inserted, deleted or reordered row. Appends take the chain
lock (``AuditRepository.lock_head``) so that concurrent writers never fork the chain.
"""

from keyops.domain.audit.chain import (
    GENESIS,
    Verdict,
    append,
    canonical,
    entry_hash,
    fingerprints,
    install,
    note,
    planned,
    record,
    verify,
)
from keyops.domain.audit.context import (
    Operation,
    Outcome,
    RequestContext,
    RouteChange,
    current,
    route_change,
)
from keyops.domain.audit.reading import MAX_PAGE_SIZE, AuditFilter, search, token_names

__all__ = [
    "GENESIS",
    "MAX_PAGE_SIZE",
    "AuditFilter",
    "Operation",
    "Outcome",
    "RequestContext",
    "RouteChange",
    "Verdict",
    "append",
    "canonical",
    "current",
    "entry_hash",
    "fingerprints",
    "install",
    "note",
    "planned",
    "record",
    "route_change",
    "search",
    "token_names",
    "verify",
]
