"""Keystore parsing off the event loop, in one small pool, under one budget per request.

Reading a keystore derives keys from its password: up to seconds of CPU for a crafted
(or merely paranoid) file. On the event loop that stalled every other request, the
healthcheck and the gateway nodes' long polls included (issue 8). So every parse of a
request runs in one call into the bounded CPU pool (``keyops.cpu``) (the key derivations release the
GIL there), shares one ``KeystoreBudget``, and an identical (file, type, password, key
password) is parsed once per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keyops.cpu import run_cpu
from keyops.crypto.keystores import KeystoreBudget, KeystoreError, ParsedKeystore, parse_keystore

__all__ = ["ParseJob", "parse_all", "parse_now"]


@dataclass(frozen=True, slots=True)
class ParseJob:
    data: bytes
    store_type: str
    password: str | None
    key_password: str | None = None

    def __repr__(self) -> str:
        # Never the password in a log line or traceback.
        return f"ParseJob(store_type={self.store_type!r}, size={len(self.data)})"


def parse_now(jobs: Sequence[ParseJob]) -> list[ParsedKeystore | KeystoreError]:
    """Parse in order in the calling thread; stops after (and includes) the first refusal."""
    budget = KeystoreBudget()
    done: dict[ParseJob, ParsedKeystore | KeystoreError] = {}
    results: list[ParsedKeystore | KeystoreError] = []
    for job in jobs:
        if job not in done:
            try:
                done[job] = parse_keystore(
                    job.data, job.store_type, job.password, job.key_password, budget=budget
                )
            except KeystoreError as exc:
                done[job] = exc
                # Later jobs are not parsed: the caller reports the first refusal.
                results.append(exc)
                return results
        results.append(done[job])
    return results


async def parse_all(jobs: Sequence[ParseJob]) -> list[ParsedKeystore | KeystoreError]:
    """Parse in order, off the event loop; stops after (and includes) the first refusal."""
    return await run_cpu(parse_now, list(jobs))
