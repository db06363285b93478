"""`make bench`: the engine side by side with its peers, in one run on this machine.

taskd (one `taskd serve` + `taskd worker`, max_jobs = 10), raw arq 0.28 (5 ms poll), Celery 5
(Redis broker and backend, threads pool), Celery's Flower HTTP API and Dramatiq (Redis broker,
Results middleware): each with one worker process of 10 slots, each against its own fresh
redis-server, each driven by its own client process (tests/bench_peers/). Workloads:
- latency: sequential round trips (taskd: POST /v1/create block=true);
- throughput: N tasks submitted as fast as the client can (taskd: lists of 100 per create,
  results through one status_stream per list), by 1 and by 16 concurrent clients;
- scaling: the same with 2 worker processes;
and for the single-client throughput run, Redis commands per task (INFO commandstats) and CPU
ms per task of the client, the HTTP server (taskd serve, Flower), the worker(s) and Redis.
Figures are printed as one markdown table (plus ratios) and saved as JSON; nothing asserts.
QUICK=1 runs smaller counts (under 3 minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from taskd.redis_server import RedisServer
from tests.bench_latency import bench_env
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "tests" / "bench_peers"
VENVS = ROOT / ".bench"
QUICK = os.environ.get("QUICK") == "1"
LATENCY_ROUNDS = 200 if QUICK else 1000
TASKS = 2000 if QUICK else 10000
SYSTEMS = ("taskd", "arq", "celery", "dramatiq", "flower")
# Flower polls every result over HTTP: a fifth of the tasks keeps its runs bounded.
SHARE = {"flower": 0.2}


@dataclass
class System:
    """One system under test: its processes and how its client is started."""

    client: list[str]
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    server: subprocess.Popen[bytes] | None = None


def cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its living descendants (Dramatiq forks its worker processes)."""
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        frontier += [int(k) for k in kids]
    return total


@contextmanager
def process(
    argv: list[str], env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def taskd_config(work: Path, port: int, redis: RedisServer) -> Path:
    """The bench's taskd config, with the peers' 10 slots per worker."""
    env = bench_env(work, port, redis, f'[worker]\nmax_jobs = 10\n[storage]\npath = "{work}"\n')
    return Path(env["TASKD_CONFIG"])


@contextmanager
def start(name: str, work: Path, redis: RedisServer, workers: int) -> Iterator[System]:
    redis_url = redis.url
    env = {**os.environ, "BENCH_REDIS": redis_url, "PYTHONPATH": f"{ROOT}:{PEERS}"}
    celery = [str(VENVS / "celery" / "bin" / "celery"), "-A", "celery_peer"]
    log = work / f"{name}.log"
    with ExitStack() as stack:

        def spawn(argv: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
            return stack.enter_context(process(argv, {**env, **(extra or {})}, PEERS, log))

        if name == "taskd":
            port = free_port()
            env["TASKD_CONFIG"] = str(taskd_config(work, port, redis))
            system = System(
                [sys.executable, str(PEERS / "taskd_client.py"), f"http://127.0.0.1:{port}"], env
            )
            system.server = spawn([sys.executable, "-m", "taskd", "serve"])
            system.workers = [
                spawn([sys.executable, "-m", "taskd", "worker"]) for _ in range(workers)
            ]
            wait_http(f"http://127.0.0.1:{port}/v1/tasks")
        elif name == "arq":
            system = System([sys.executable, str(PEERS / "arq_peer.py"), redis_url], env)
            arq = str(Path(sys.executable).parent / "arq")
            system.workers = [spawn([arq, "arq_peer.WorkerSettings"]) for _ in range(workers)]
        elif name in ("celery", "flower"):
            python = str(VENVS / "celery" / "bin" / "python")
            system = System([python, str(PEERS / "celery_peer.py"), redis_url], env)
            worker = [*celery, "worker", "-P", "threads", "-c", "10", "-l", "warning"]
            worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            system.workers = [spawn([*worker, "-n", f"w{i}@%h"]) for i in range(workers)]
            if name == "flower":
                port = free_port()
                system.client = [
                    sys.executable,
                    str(PEERS / "flower_client.py"),
                    f"http://127.0.0.1:{port}",
                ]
                flower = [*celery, "flower", f"--port={port}", "--address=127.0.0.1"]
                system.server = spawn(flower, {"FLOWER_UNAUTHENTICATED_API": "true"})
                wait_http(f"http://127.0.0.1:{port}/healthcheck")
        else:
            dramatiq = str(VENVS / "dramatiq" / "bin" / "dramatiq")
            python = str(VENVS / "dramatiq" / "bin" / "python")
            system = System([python, str(PEERS / "dramatiq_peer.py"), redis_url], env)
            system.workers = [
                spawn([dramatiq, "dramatiq_peer", "-p", "1", "-t", "10"]) for _ in range(workers)
            ]
        yield system


def run_client(system: System, workload: str, n: int, clients: int) -> dict[str, Any]:
    done = subprocess.run(
        [*system.client, workload, str(n), str(clients)],
        env=system.env,
        cwd=PEERS,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{system.client[1]} {workload}: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure(
    name: str, work: Path, workload: str, n: int, clients: int, workers: int
) -> dict[str, Any]:
    """One workload on a fresh redis-server: the client's report plus Redis and CPU figures."""
    server = RedisServer(
        work / f"redis-{name}-{workload}-{clients}-{workers}", port=free_port()
    ).start()
    assert server.process is not None
    try:
        with (
            start(name, work, server, workers) as system,
            redis.Redis.from_url(server.url) as admin,
        ):
            run_client(system, "latency", 3, 1)  # every process warm and connected
            pids = {
                "worker": [w.pid for w in system.workers],
                "server": [system.server.pid] if system.server else [],
                "redis": [server.process.pid],
            }
            before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
            admin.config_resetstat()
            report = run_client(system, workload, n, clients)
            stats = admin.info("commandstats")
            after = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
    finally:
        server.stop()
    tasks = n + 1  # the client's own warm-up round trip
    report["commands_per_task"] = sum(int(s["calls"]) for s in stats.values()) / tasks
    report["cpu_ms_per_task"] = {k: (after[k] - before[k]) * 1000 / tasks for k in pids}
    report["cpu_ms_per_task"]["client"] = report["cpu"] * 1000 / tasks
    report["tasks_per_second"] = n / report["seconds"]
    return report


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="taskd-bench-"))
    results: dict[str, dict[str, Any]] = {}
    for name in SYSTEMS:
        n = int(TASKS * SHARE.get(name, 1))
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = {
            "latency": measure(
                name, work, "latency", int(LATENCY_ROUNDS * SHARE.get(name, 1)), 1, 1
            ),
            "throughput": measure(name, work, "throughput", n, 1, 1),
            "throughput_16": measure(name, work, "throughput", n, 16, 1),
            "two_workers": measure(name, work, "throughput", n, 1, 2),
        }
    out = VENVS / "engine.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"\n(figures also in {out.relative_to(ROOT)}; logs in {work})")


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| system | latency p50 ms | p90 ms | p99 ms | tasks/s 1 client | 16 clients | 2 workers"
        " | Redis cmds/task | CPU ms/task client / server / worker / redis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lat = [percentile(r["latency"]["latencies"], q) * 1000 for q in (0.5, 0.9, 0.99)]
        rates = [r[w]["tasks_per_second"] for w in ("throughput", "throughput_16", "two_workers")]
        cpu = r["throughput"]["cpu_ms_per_task"]
        server = f"{cpu['server']:.2f}" if name in ("taskd", "flower") else "-"
        rows.append(
            f"| {name} | {' | '.join(f'{v:.2f}' for v in lat)}"
            f" | {' | '.join(f'{v:.0f}' for v in rates)}"
            f" | {r['throughput']['commands_per_task']:.1f}"
            f" | {cpu['client']:.2f} / {server} / {cpu['worker']:.2f} / {cpu['redis']:.2f} |"
        )

    def rate(name: str) -> float:
        return float(results[name]["throughput"]["tasks_per_second"])

    def p50(name: str) -> float:
        return percentile(results[name]["latency"]["latencies"], 0.5)

    def worker_cpu(name: str) -> float:
        return float(results[name]["throughput"]["cpu_ms_per_task"]["worker"])

    fastest = max((n for n in results if n != "taskd"), key=rate)
    rows += [
        "",
        f"taskd throughput {rate('taskd') / rate(fastest):.2f}x the fastest peer ({fastest}),"
        f" {rate('taskd') / rate('flower'):.1f}x Flower;"
        f" latency p50 {p50('taskd') / p50('celery'):.2f}x Celery's;"
        f" worker CPU per task {worker_cpu('taskd') / worker_cpu('arq'):.2f}x arq's",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
