"""keyops.declarative: the desired state of projects in a YAML file, planned and applied
through ``keyops.client``, the current state dumped back, and bulk imports.

    from keyops.client import Client
    from keyops.declarative import apply, load, plan

    desired = load("keyops.yaml")
    with Client(url, token) as kc:
        p = plan(kc, desired, prune=True)
        for action in p.changes:
            print(action.op, action.kind, action.project, action.name, action.reason)
        result = apply(kc, p)
        assert not plan(kc, desired, prune=True).pending  # idempotent

Nothing here prints or exits: the CLI (``keyops.cli.apply``) does that.
"""

from keyops.declarative.apply import Outcome, Result, apply
from keyops.declarative.bulk import (
    FileResult,
    ImportResult,
    import_certificates,
    import_keystores,
)
from keyops.declarative.dump import SecretMode, dump
from keyops.declarative.plan import Action, Plan, plan
from keyops.declarative.schema import DesiredState, Spec, SpecError, load, parse, resolve

__all__ = [
    "Action",
    "DesiredState",
    "FileResult",
    "ImportResult",
    "Outcome",
    "Plan",
    "Result",
    "SecretMode",
    "Spec",
    "SpecError",
    "apply",
    "dump",
    "import_certificates",
    "import_keystores",
    "load",
    "parse",
    "plan",
    "resolve",
]
