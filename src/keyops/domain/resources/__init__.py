"""One lifecycle for the resources kept per environment: certificates, keys, keystores.

``PerEnvironmentService`` owns create, update (the seed's whole replacement, rename
included where the kind allows it), delete, get, listing and the desired state of an
environment (``lifecycle``); a kind says only what is its own through the hooks of
``ResourceHooks`` (``hooks``). Every check runs before anything is written, so a refusal
changes nothing (decision 5).
"""

from keyops.domain.resources.hooks import Derive, Named, Validated
from keyops.domain.resources.lifecycle import PerEnvironmentService

__all__ = ["Derive", "Named", "PerEnvironmentService", "Validated"]
