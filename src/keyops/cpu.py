"""One bounded pool for slow CPU work, so it never runs on the event loop.

Password hashing (argon2), keystore key derivations and key generation all release the
GIL in C; run here they leave the event loop free for the healthcheck, gateway nodes'
long polls and every other request. Work beyond the pool's size queues.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# One worker per core but one, kept for the event loop; at most four.
WORKERS = max(1, min(4, (os.cpu_count() or 2) - 1))
POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="keyops-cpu")


async def run_cpu(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the CPU pool."""
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(POOL, ctx.run, fn, *args)
