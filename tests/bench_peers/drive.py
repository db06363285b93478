"""The peers' shared client driver (standard library only: it runs in every peer's venv)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


def drive(
    one: Callable[[], None],
    batch: Callable[[int], None],
    together: Callable[[list[int]], None] | None = None,
) -> None:
    """argv: WORKLOAD N CLIENTS. latency: N sequential `one()` round trips; throughput: `batch`
    (submit k tasks, wait for all) over N tasks split among CLIENTS threads, or for an async
    client `together(shares)`, which runs one batch per share concurrently in its loop."""
    workload, n, clients = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    one()  # warm up connections
    cpu, started = time.process_time(), time.perf_counter()
    latencies: list[float] = []
    if workload == "latency":
        for _ in range(n):
            t = time.perf_counter()
            one()
            latencies.append(time.perf_counter() - t)
    else:
        shares = [n // clients + (i < n % clients) for i in range(clients)]
        if together is not None:
            together(shares)
        else:
            threads = [threading.Thread(target=batch, args=(k,)) for k in shares]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    seconds = time.perf_counter() - started
    print(
        json.dumps({"seconds": seconds, "cpu": time.process_time() - cpu, "latencies": latencies})
    )


class AsyncClient(Protocol):
    def one(self) -> Awaitable[None]: ...
    def batch(self, k: int) -> Awaitable[None]: ...


class LoopThread:
    """An event loop in its own thread, where an async client's coroutines run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def call(self, coroutine: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()  # type: ignore[arg-type]


def drive_async(runner: LoopThread, client: AsyncClient) -> None:
    """`drive` for an async client: concurrent clients are tasks in its one loop."""

    async def together(shares: list[int]) -> None:
        await asyncio.gather(*(client.batch(k) for k in shares))

    drive(
        lambda: runner.call(client.one()),
        lambda k: runner.call(client.batch(k)),
        lambda shares: runner.call(together(shares)),
    )
