"""Which deployment target kinds exist: the built-in ones plus any configured extras."""

from __future__ import annotations

import importlib
from functools import cache

from keyops.config import Settings
from keyops.errors import KeyopsError

BUILTIN_TARGETS = {"local": "keyops.deploy.targets.local:LocalTarget"}


@cache
def _parse_extras(spec: str) -> dict[str, str]:
    extras: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, path = item.partition("=")
        if not sep or ":" not in path or not name.strip():
            raise KeyopsError(
                f"KEYOPS_EXTRA_TARGETS entry {item!r} is not name=package.module:Class",
                status=500,
                error="internal_error",
            )
        extras[name.strip()] = path.strip()
    return extras


def target_paths(settings: Settings) -> dict[str, str]:
    """Target kind name -> import path of its class."""
    return {**BUILTIN_TARGETS, **_parse_extras(settings.extra_targets)}


def target_names(settings: Settings) -> frozenset[str]:
    """The kinds an environment may name as its target."""
    return frozenset(target_paths(settings))


def load_target_class(path: str) -> type:
    """Import ``package.module:Class``."""
    module_name, _, attr = path.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    assert isinstance(cls, type)
    return cls
