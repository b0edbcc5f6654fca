"""The master key as the database knows it: a guard at start and rotation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from keyops.config import Settings
from keyops.crypto.envelope import key_id
from keyops.domain.history import decode_rows, encode_rows
from keyops.secrets import MASTER_KEY_FILE, Keyring, Purpose, load_keyring
from keyops.storage.repositories.keys import KeyRepository
from keyops.storage.repositories.keystores import KeystoreRepository
from keyops.storage.repositories.masterkey import SEALED_COLUMNS, MasterKeyRepository


class MasterKeyMismatch(RuntimeError):
    """The configured master key is not the one the database's secrets are sealed with."""


class MasterKeyMissing(RuntimeError):
    """No master key is configured, but the database's secrets are sealed with one."""


def recorded_key_id(session: Session) -> str | None:
    """The id of the master key the database's secrets are sealed with, if one is recorded."""
    state = MasterKeyRepository(session).recorded()
    return state.key_id if state is not None else None


def open_keyring(session: Session, settings: Settings) -> Keyring:
    """The configured keyring; a new key file is made only for a database that records none.

    A missing key file beside a database that already holds sealed secrets is refused,
    not replaced: a new key could never open them.
    """
    master_key = settings.master_key.get_secret_value() if settings.master_key else None
    previous = (
        settings.previous_master_keys.get_secret_value() if settings.previous_master_keys else None
    )
    data_dir = settings.data_dir
    recorded = recorded_key_id(session)
    try:
        return load_keyring(master_key, data_dir, previous, create=recorded is None)
    except FileNotFoundError:
        path = (data_dir / MASTER_KEY_FILE).resolve()
        raise MasterKeyMissing(
            f"no master key: this database's secrets are sealed with master key {recorded},"
            f" but {path} does not exist and KEYOPS_MASTER_KEY is not set. Restore the key"
            f" file from your backup to {path} (mode 0600), or set KEYOPS_MASTER_KEY to the"
            " base64 of that key."
        ) from None


def check_master_key(session: Session, keyring: Keyring) -> None:
    """Record the master key on first use; refuse a key that can not open stored secrets."""
    # Replicas starting together may both find no row: the first insert wins, the
    # other does nothing, and both then check against what was recorded.
    state = MasterKeyRepository(session).record_if_absent(keyring.current_id)
    held = {key_id(k) for k in [keyring.current, *keyring.previous]}
    if state.key_id not in held:
        raise MasterKeyMismatch(
            f"this database's secrets are sealed with master key {state.key_id}, but the"
            f" configured master key is {keyring.current_id}. Set KEYOPS_MASTER_KEY (or the"
            " data directory's master.key) to the key that sealed them."
        )


@dataclass(frozen=True, slots=True)
class RotationReport:
    old_key_id: str
    new_key_id: str
    values: int


# The kinds whose kept versions hold sealed columns, with their rows' model and the
# column pointing at the resource (history's encoding leaves that one out).
_VERSIONED: dict[str, tuple[type[Any], str]] = {
    "key": (KeyRepository.child, KeyRepository.parent_fk),
    "keystore": (KeystoreRepository.child, KeystoreRepository.parent_fk),
}


def _reseal_versions(repo: MasterKeyRepository, old: Keyring, new_ring: Keyring) -> int:
    """Re-seal the sealed columns inside kept versions' material (a rollback to a version
    from before the rotation must open with the new key)."""
    count = 0
    for version in repo.versions_holding(_VERSIONED):
        child, parent_fk = _VERSIONED[version.kind]
        columns = [(c, getattr(Purpose, p)) for m, c, p in SEALED_COLUMNS if m is child]
        rows = decode_rows(version.material, child)
        for row in rows:
            for column, purpose in columns:
                value = getattr(row, column)
                if value is not None:
                    setattr(row, column, new_ring.seal(old.open(value, purpose), purpose))
                    count += 1
        version.material = encode_rows(rows, parent_fk)
    return count


def rotate(session: Session, old: Keyring, new_key: bytes) -> RotationReport:
    """Re-seal every secret under ``new_key`` in this transaction; all or nothing."""
    repo = MasterKeyRepository(session)
    state = repo.recorded(lock=True)
    old_id = state.key_id if state is not None else old.current_id
    new_ring = Keyring(new_key)
    count = 0
    for row, column, purpose_name in repo.sealed_values():
        purpose: str = getattr(Purpose, purpose_name)
        setattr(row, column, new_ring.seal(old.open(getattr(row, column), purpose), purpose))
        count += 1
    count += _reseal_versions(repo, old, new_ring)
    repo.set_key(new_ring.current_id)
    return RotationReport(old_id, new_ring.current_id, count)
