"""The peers' shared client driver (standard library only: it runs in every peer's venv)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable


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
