"""Gateway drivers: hand each applied snapshot to a real gateway through files on disk.

``base`` defines the protocol; ``files`` runs check/reload commands, ``nginx`` checks and
reloads nginx, ``haproxy`` updates HAProxy in memory through its runtime API. The
layout of the files and the atomic writer live in ``keyops.gateway.output``.
"""

from keyops.gateway.drivers.base import Change, Driver, DriverError

__all__ = ["Change", "Driver", "DriverError"]
