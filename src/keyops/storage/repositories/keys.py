"""Queries on crypto keys."""

from __future__ import annotations

from keyops.storage.models import CryptoKey, CryptoKeyEnvironment
from keyops.storage.repositories.per_environment import PerEnvironmentRepository


class KeyRepository(PerEnvironmentRepository[CryptoKey, CryptoKeyEnvironment]):
    parent = CryptoKey
    child = CryptoKeyEnvironment
    parent_fk = "key_id"
