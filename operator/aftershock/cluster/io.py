"""Blocking Kubernetes calls from asyncio code, each on a named, bounded pool of its own.

The official client blocks. A run, a scheduler tick or an admission review hands each call to
its own pool for the length of that call only, so none of them ever queues behind another's
load: admission and the kill switch keep their latency while every run thread is busy."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Io:
    """Runs blocking calls on a dedicated, bounded thread pool and awaits them."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def io_pool(name: str, env: str, default: int) -> Io:
    """A named pool whose size can be set in the environment (e.g. AFTERSHOCK_RUN_THREADS)."""
    size = int(os.environ.get(env, str(default)))
    return Io(ThreadPoolExecutor(max_workers=size, thread_name_prefix=name))
