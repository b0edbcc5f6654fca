"""What the console shows, computed from the API's answers: pure functions, no I/O.

Expiry badges (days left, coloured by threshold), the facts of a certificate a person
checks (subject, issuer, SANs, serial, fingerprints, dates), and the not-after of a
list row. Nothing here ever reads private material: the API's certificate ``get``
answers the public DER only, and keys/keystores are shown by their public facts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from keyops.crypto.x509 import CertificateParseError, format_instant, parse_certificate

__all__ = [
    "Badge",
    "CertificateFacts",
    "badge",
    "certificate_facts",
    "days_left",
    "soonest",
]

# Colour thresholds of a badge, in days left (the expiry alerts' defaults 30 and 7).
WARN_DAYS = 30
DANGER_DAYS = 7


@dataclass(frozen=True)
class Badge:
    css: str  # badge-ok, badge-warn, badge-danger, badge-expired
    text: str
    days: int


def parse_instant(text: str) -> datetime | None:
    """An instant as the API writes it (``2024-01-01T00:00:00.000Z``), or None."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def days_left(not_after: datetime, now: datetime | None = None) -> int:
    """Whole days until ``not_after`` (negative once past), as the expiry list counts."""
    return int((not_after - (now or datetime.now(UTC))).total_seconds() // 86400)


def badge(days: int) -> Badge:
    if days < 0:
        return Badge("badge-expired", f"expired {-days} days ago", days)
    if days <= DANGER_DAYS:
        css = "badge-danger"
    elif days <= WARN_DAYS:
        css = "badge-warn"
    else:
        css = "badge-ok"
    return Badge(css, f"{days} days" if days != 1 else "1 day", days)


def soonest(instants: Iterable[str | None], now: datetime | None = None) -> Badge | None:
    """The badge of the earliest of several not-afters (a resource's environments)."""
    parsed = [p for p in (parse_instant(i) for i in instants if i) if p is not None]
    return badge(days_left(min(parsed), now)) if parsed else None


@dataclass(frozen=True)
class CertificateFacts:
    subject: str
    issuer: str
    sans: list[str]
    serial: str
    sha1: str  # lower-case hex, no colons
    sha256: str
    not_before: str
    not_after: str
    key: str  # "RSA 2048", "EC P-256", ...
    badge: Badge


def _sans(der: bytes) -> list[str]:
    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    names: list[str] = []
    for general in ext:
        kind = type(general).__name__.replace("Name", "").replace("Address", "")
        value = general.value
        names.append(f"{kind}:{value.rfc4514_string() if isinstance(value, x509.Name) else value}")
    return names


def certificate_facts(
    base64_der: str | None, now: datetime | None = None
) -> CertificateFacts | None:
    """The facts of a certificate from the API's ``base64EncodedContent``, or None."""
    if not base64_der:
        return None
    try:
        parsed = parse_certificate(base64.b64decode(base64_der, validate=True))
    except (CertificateParseError, binascii.Error, ValueError):
        return None
    key = parsed.key_type
    if parsed.curve:
        key += f" {parsed.curve}"
    elif parsed.key_size:
        key += f" {parsed.key_size}"
    return CertificateFacts(
        subject=parsed.subject_dn,
        issuer=parsed.issuer_dn,
        sans=_sans(parsed.der),
        serial=parsed.serial_number,
        sha1=parsed.sha1_thumbprint.lower(),
        sha256=parsed.sha256_thumbprint.lower(),
        not_before=format_instant(parsed.not_before),
        not_after=format_instant(parsed.not_after),
        key=key,
        badge=badge(days_left(parsed.not_after, now)),
    )
