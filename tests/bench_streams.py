"""`make bench`: many concurrent status_streams on one `taskd serve` (DESIGN §9).

A client process (this one) opens STREAMS streams on queued tasks of a `taskd serve` that has
no worker, then measures: KB of serve RSS per idle stream; the Redis connections serve holds;
fan-out latency when tasks change one at a time (a worker runs 50 ms tasks one by one, 50
streams watching each); and when BURST streams' tasks end at the same moment (one cancel
of all of them). Latency is the time from a task's `completed` stamp (taken on this
machine just before the transition is sent to Redis) to its terminal line's arrival.
QUICK=1 opens fewer streams.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis

from taskd.process import raise_open_file_limit
from taskd.redis_server import RedisServer
from tests.bench_engine import percentile, process, taskd_config, wait_http
from tests.conftest import free_port

QUICK = os.environ.get("QUICK") == "1"
STREAMS = 2000 if QUICK else 10000
BURST = 1000 if QUICK else 5000
PER_TASK = 50  # streams watching each task of the one-at-a-time phase
SECRET = "bench"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stamp(status: dict[str, Any]) -> float:
    return datetime.fromisoformat(status["events"]["completed"]).timestamp()


class Streams:
    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: dict[str, list[float]] = {"one at a time": [], "burst": []}
        self.phase = "one at a time"
        self.opened = 0

    async def create(self, session: aiohttp.ClientSession, definitions: list[Any]) -> list[str]:
        keys: list[str] = []
        for start in range(0, len(definitions), 100):
            body = orjson.dumps({"secret": SECRET, "tasks": definitions[start : start + 100]})
            async with session.post(f"{self.base}/v1/create", data=body) as response:
                keys += [s["key"] for s in orjson.loads(await response.read())]
        return keys

    async def follow(self, session: aiohttp.ClientSession, key: str) -> None:
        async with session.get(f"{self.base}/v1/status_stream", params={"tasks": key}) as r:
            await r.content.readline()
            self.opened += 1
            async for line in r.content:
                arrived = time.time()
                status = orjson.loads(line)
                if status["status"] in ("success", "error"):
                    self.latencies[self.phase].append(arrived - stamp(status))


async def run(base: str, serve_pid: int, redis_url: str, start_worker: Any) -> dict[str, Any]:
    streams = Streams(base)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout()) as s:
        short = {"task_name": "sleep", "seconds": 0.05, "steps": 1}
        steady = await streams.create(s, [short] * ((STREAMS - BURST) // PER_TASK))
        burst = await streams.create(s, [{"task_name": "sleep", "seconds": 3600}] * BURST)
        base_rss = rss_kb(serve_pid)
        ones = [asyncio.create_task(streams.follow(s, k)) for k in steady for _ in range(PER_TASK)]
        bursts = [asyncio.create_task(streams.follow(s, k)) for k in burst]
        opened = time.monotonic()
        while streams.opened < len(ones) + len(bursts):
            await asyncio.sleep(0.1)
        opening = time.monotonic() - opened
        await asyncio.sleep(1)
        per_stream = (rss_kb(serve_pid) - base_rss) / (len(ones) + len(bursts))
        with redis.Redis.from_url(redis_url) as admin:
            # Everything connected now but this admin connection is the serve process.
            connections = len(admin.client_list()) - 1
        # The worker runs the steady tasks one at a time (max_jobs = 1), then one of the
        # burst's long sleeps; the others wait queued. One cancel ends them all at once.
        with start_worker():
            await asyncio.gather(*ones)
            streams.phase = "burst"
            body = orjson.dumps({"secret": SECRET, "tasks": burst})
            sent = time.monotonic()
            async with s.post(f"{base}/v1/cancel", data=body) as response:
                assert response.status == 200, await response.text()
            cancel_seconds = time.monotonic() - sent
            await asyncio.gather(*bursts)
    return {
        "streams": len(ones) + len(bursts),
        "opening_seconds": opening,
        "kb_per_idle_stream": per_stream,
        "serve_redis_connections": connections,
        "latencies": streams.latencies,
        "cancel_seconds": cancel_seconds,
    }


def main() -> None:
    raise_open_file_limit()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < STREAMS + 1000:
        sys.exit(f"bench_streams: needs {STREAMS + 1000} open files, the limit is {soft}")
    work = Path(tempfile.mkdtemp(prefix="taskd-streams-"))
    server = RedisServer(work / "redis", port=free_port()).start()
    port = free_port()
    config = taskd_config(work, port, server)
    # One worker slot; and one cancel names the whole burst.
    text = config.read_text().replace("max_jobs = 10", "max_jobs = 1")
    config.write_text(text.replace("[server]\n", "[server]\nmax_keys_per_request = 100000\n", 1))
    env = {**os.environ, "TASKD_CONFIG": str(config), "PYTHONPATH": str(Path.cwd())}
    log = work / "taskd.log"
    python = [sys.executable, "-m", "taskd"]
    try:
        with process([*python, "serve"], env, Path.cwd(), log) as serve:
            wait_http(f"http://127.0.0.1:{port}/v1/tasks")

            def start_worker() -> Any:
                return process([*python, "worker"], env, Path.cwd(), log)

            base = f"http://127.0.0.1:{port}"
            result = asyncio.run(run(base, serve.pid, server.url, start_worker))
    finally:
        server.stop()
    print(f"\n{result['streams']} concurrent status_streams on one taskd serve")
    print(
        f"  opened in {result['opening_seconds']:.1f} s;"
        f" {result['kb_per_idle_stream']:.1f} KB of serve RSS per idle stream"
    )
    print(f"  Redis connections held by serve: {result['serve_redis_connections']}")
    print(f"  the cancel of the burst's {BURST} tasks answered in {result['cancel_seconds']:.2f} s")
    for phase, values in result["latencies"].items():
        print(
            f"  fan-out, {phase:<13} p50 {percentile(values, 0.5) * 1000:7.1f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms  (n={len(values)})"
        )


if __name__ == "__main__":
    main()
