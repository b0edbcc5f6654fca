"""Queries on keystores."""

from __future__ import annotations

from keyops.storage.models import Keystore, KeystoreEnvironment
from keyops.storage.repositories.per_environment import PerEnvironmentRepository


class KeystoreRepository(PerEnvironmentRepository[Keystore, KeystoreEnvironment]):
    parent = Keystore
    child = KeystoreEnvironment
    parent_fk = "keystore_id"
    # Lists show the files and their entries, never the passwords.
    list_deferred = ("password_sealed", "key_password_sealed")
