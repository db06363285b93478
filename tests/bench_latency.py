"""`make bench`: create→started latency, blocking round trips and idle CPU, against raw arq.

Everything runs side by side on this machine, each in its own processes: one `taskd serve` and
one `taskd worker` on a private redis-server, and raw arq workers (its shipped 0.5 s poll, and a
1 ms poll) on the same server. Figures are printed as ratios to those peers; nothing asserts time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
from arq.connections import ArqRedis, RedisSettings, create_pool

from taskd.redis_server import RedisServer
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "500"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "5"))

PEER = """
from arq.connections import RedisSettings

async def hello(ctx, name):
    return f"Hello {{name}}"

class WorkerSettings:
    functions = [hello]
    redis_settings = RedisSettings(port={port})
    poll_delay = {poll}
    max_jobs = 50
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pid: int) -> float:
    """CPU share (percent of one core) a process uses while nothing is queued."""
    time.sleep(1)
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_SECONDS)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


@contextmanager
def process(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    try:
        yield child
    finally:
        child.terminate()
        child.wait(10)


async def wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


async def bench_taskd(base: str) -> tuple[list[float], list[float]]:
    """Sequential `create` with block=true on hello: round trips and create→started."""
    body = orjson.dumps(
        {"secret": "bench", "block": True, "tasks": {"task_name": "hello", "name": "b"}}
    )
    trips: list[float] = []
    starts: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(ROUNDS + 50):
            began = time.perf_counter()
            async with session.post(f"{base}/v1/create", data=body) as response:
                [status] = orjson.loads(await response.read())
            elapsed = time.perf_counter() - began
            assert status["status"] == "success", status
            if i >= 50:  # warm-up
                trips.append(elapsed)
                events = status["events"]
                starts.append(
                    (
                        datetime.fromisoformat(events["started"])
                        - datetime.fromisoformat(events["queued"])
                    ).total_seconds()
                )
            await asyncio.sleep(0.002)  # let the worker go idle, as a lone caller would find it
    return trips, starts


async def bench_arq(pool: ArqRedis, rounds: int) -> tuple[list[float], list[float]]:
    """arq's own client: enqueue, wait for the result (10 ms result polling), enqueue→start."""
    trips: list[float] = []
    starts: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        job = await pool.enqueue_job("hello", "b")
        assert job is not None
        await job.result(poll_delay=0.01)
        trips.append(time.perf_counter() - began)
        info = await job.result_info()
        assert info is not None
        starts.append((info.start_time - info.enqueue_time).total_seconds())
        await asyncio.sleep(0.002)
    return trips, starts


def row(name: str, values: list[float], unit: float = 1000) -> str:
    return (
        f"  {name:<34} p50 {percentile(values, 0.5) * unit:8.2f} ms"
        f"   p99 {percentile(values, 0.99) * unit:8.2f} ms   (n={len(values)})"
    )


def bench_env(work: Path, port: int, redis: RedisServer, extra: str = "") -> dict[str, str]:
    """The environment of a taskd under test: its config file (port, Redis, the bench account)."""
    config = work / "taskd.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [server]
            port = {port}
            [redis]
            url = "{redis.url}"
            [log]
            level = "warning"
            [accounts.bench]
            secret = "bench"
            max_pending = 1000000
            rate_per_minute = 100000000
            """
        )
        + textwrap.dedent(extra)
    )
    return {**os.environ, "TASKD_CONFIG": str(config), "PYTHONPATH": str(ROOT)}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="taskd-bench-"))
    redis = RedisServer(work / "redis", port=free_port()).start()
    port = free_port()
    env = bench_env(work, port, redis)
    python = [sys.executable, "-m"]
    results: dict[str, tuple[list[float], list[float], float]] = {}
    try:
        with (
            process([*python, "taskd", "worker"], env, ROOT) as worker,
            process([*python, "taskd", "serve"], env, ROOT),
        ):
            asyncio.run(wait_http(f"http://127.0.0.1:{port}/v1/tasks"))
            idle = idle_cpu(worker.pid)
            trips, starts = asyncio.run(bench_taskd(f"http://127.0.0.1:{port}"))
            results["taskd"] = (trips, starts, idle)
        for label, poll, rounds in (
            ("arq, 0.5 s poll", "0.5", 40),
            ("arq, 1 ms poll", "0.001", ROUNDS),
        ):
            (work / "peer.py").write_text(PEER.format(port=redis.port, poll=poll))
            peer_env = {**env, "PYTHONPATH": str(work)}
            with process([*python, "arq", "peer.WorkerSettings"], peer_env, work) as peer:
                time.sleep(1)
                idle = idle_cpu(peer.pid)

                async def run_peer(rounds: int = rounds) -> tuple[list[float], list[float]]:
                    pool = await create_pool(RedisSettings(port=redis.port))
                    try:
                        return await bench_arq(pool, rounds)
                    finally:
                        await pool.aclose()

                trips, starts = asyncio.run(run_peer())
            results[label] = (trips, starts, idle)
    finally:
        redis.stop()

    print("\ncreate -> started (queue wake-up latency)")
    for label, (_, starts, _) in results.items():
        print(row(label, starts))
    print("\nround trip: create and wait for the result (taskd: POST /v1/create block=true)")
    for label, (trips, _, _) in results.items():
        print(row(label, trips))
    print("\nidle worker CPU (percent of one core, nothing queued)")
    for label, (_, _, idle) in results.items():
        print(f"  {label:<34} {idle:6.2f} %")
    taskd_start = percentile(results["taskd"][1], 0.5)
    print("\nratios (taskd / peer, lower is better)")
    for label in ("arq, 0.5 s poll", "arq, 1 ms poll"):
        start = percentile(results[label][1], 0.5)
        trip = percentile(results[label][0], 0.5)
        print(
            f"  vs {label:<31} create->started p50 x{taskd_start / start:.3f}"
            f"   round trip p50 x{percentile(results['taskd'][0], 0.5) / trip:.3f}"
        )


if __name__ == "__main__":
    main()
