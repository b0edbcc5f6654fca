"""Issue 9: every per-environment kind runs the one lifecycle of ``PerEnvironmentService``
and says only what is its own, through its hooks."""

from __future__ import annotations

import pytest

from keyops.domain.certificates import CertificateService
from keyops.domain.keys import KeyService
from keyops.domain.keystores import KeystoreService
from keyops.domain.resources import PerEnvironmentService

KINDS = (CertificateService, KeyService, KeystoreService)
# The hooks a kind must give: the base has no sensible default for them.
REQUIRED_HOOKS = ("validate", "rows", "artifact", "derive")
# What the base alone does: a kind that redefined one would fork the lifecycle.
LIFECYCLE = ("create", "update", "delete", "get", "listing", "desired_in", "check_existing")


@pytest.mark.parametrize("service", KINDS, ids=lambda c: c.kind)
def test_a_kind_gives_every_required_hook(service: type[PerEnvironmentService]) -> None:  # type: ignore[type-arg]
    for hook in REQUIRED_HOOKS:
        assert getattr(service, hook) is not getattr(PerEnvironmentService, hook), hook


@pytest.mark.parametrize("service", KINDS, ids=lambda c: c.kind)
def test_a_kind_keeps_the_shared_lifecycle(service: type[PerEnvironmentService]) -> None:  # type: ignore[type-arg]
    for method in LIFECYCLE:
        assert getattr(service, method) is getattr(PerEnvironmentService, method), method


def test_kinds_are_the_jwk_source_kinds() -> None:
    """``JwkFollower.plan`` finds derived JWKs by the kind's name."""
    from keyops.storage.repositories.jwks import SOURCE_KINDS

    assert {service.kind for service in KINDS} == SOURCE_KINDS


def test_certificates_are_never_renamed_and_keys_may_be() -> None:
    from keyops.domain.certificates import CertificateInput
    from keyops.domain.keys import KeyInput
    from keyops.errors import BadRequest

    certs = CertificateService.__new__(CertificateService)
    with pytest.raises(BadRequest, match="can not be changed"):
        certs.new_name("a", CertificateInput("b", None, None))
    assert certs.new_name("a", CertificateInput(" a ", None, None)) == "a"
    keys = KeyService.__new__(KeyService)
    assert keys.new_name("a", KeyInput("b", None, None, [])) == "b"
    assert keys.new_name("a", KeyInput("  ", None, None, [])) == "a"
