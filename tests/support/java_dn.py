"""Java's own DN text, the oracle for keyops' ``subjectDn`` (tests/support/java/PrintDn.java).

One JVM start runs ``java PrintDn.java`` over every certificate given. Without java the
caller is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.databases import in_ci

PRINT_DN = Path(__file__).resolve().parent / "java" / "PrintDn.java"


def java_dns(ders: list[bytes]) -> list[tuple[str, str, str] | str]:
    """Per certificate: Java's (subject, issuer, getSubjectDN) text, or its error line."""
    java = shutil.which("java")
    if java is None:
        if in_ci():
            pytest.fail("java (a JDK) is required in CI for the DN oracle")
        pytest.skip("java is not installed")
    stdin = "".join(base64.b64encode(der).decode() + "\n" for der in ders)
    run = subprocess.run(
        [java, str(PRINT_DN)], input=stdin, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, f"java {PRINT_DN.name} failed (a JDK is needed):\n{run.stderr}"
    lines = run.stdout.splitlines()
    assert len(lines) == len(ders), run.stdout
    answers: list[tuple[str, str, str] | str] = []
    for line in lines:
        status, *fields = line.split(" ")
        if status != "OK":
            answers.append(line)
            continue
        subject, issuer, subject_dn = (base64.b64decode(f).decode() for f in fields)
        answers.append((subject, issuer, subject_dn))
    return answers


def java_dn_pair(der: bytes) -> tuple[str, str]:
    """Java's (subject, issuer) text of one certificate."""
    (answer,) = java_dns([der])
    assert not isinstance(answer, str), answer
    return answer[0], answer[1]
