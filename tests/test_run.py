"""`taskd run`: the whole service from one command, stopped without orphans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import free_port
from tests.helpers import ROOT, run_taskd


def descendants(pid: int) -> set[int]:
    """Every process whose parent chain leads to `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    config = tmp_path / "taskd.toml"
    config.write_text(
        (ROOT / "config" / "taskd.toml").read_text().replace("port = 8080", f"port = {port}")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKD_")}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskd", "--config", str(config), "run"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    # Ready when it says so: it announces itself once its HTTP server answers.
    while "taskd is serving" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "taskd run did not come up"
        time.sleep(0.1)
    urllib.request.urlopen(f"{base}/v1/tasks", timeout=5).read()
    yield process, base, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_run_serves_the_demo_and_stops_everything(
    service: tuple[subprocess.Popen[bytes], str, Path], stop: signal.Signals
) -> None:
    process, base, log = service
    body = orjson.dumps(
        {"secret": "demo-secret", "block": True, "tasks": {"task_name": "hello", "name": "run"}}
    )
    with urllib.request.urlopen(f"{base}/v1/create", data=body, timeout=10) as response:
        assert orjson.loads(response.read())[0]["result"] == "Hello run"
    children = descendants(process.pid)
    assert len(children) >= 3  # redis-server, the HTTP server, the worker
    started = time.monotonic()
    process.send_signal(stop)
    # SIGKILL leaves no chance to clean up: the kernel stops the children (parent-death signal).
    assert process.wait(timeout=10) == (-signal.SIGKILL if stop == signal.SIGKILL else 0)
    deadline = started + 10  # the contract: everything gone within 10 s of the signal
    while [pid for pid in children if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if alive(pid)] == []
    if stop == signal.SIGKILL:
        return
    output = log.read_text()
    assert base in output
    assert "demo-secret" in output


def test_run_with_its_port_taken_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = tmp_path / "taskd.toml"
        config.write_text(f"[server]\nport = {port}\n[accounts.a]\nsecret = 's'\n")
        done = run_taskd("--config", str(config), "run", cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "taskd is serving" not in done.stdout


def test_a_second_run_in_the_same_directory_is_refused(
    service: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    """Its redis-server would take over the first one's socket, and lose it on exit."""
    first, base, log = service
    config = log.parent / "taskd.toml"
    other = config.with_name("other.toml")
    other.write_text(
        config.read_text().replace(f"port = {base.rsplit(':', 1)[1]}", f"port = {free_port()}")
    )
    done = run_taskd("--config", str(other), "run", cwd=log.parent, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "taskd: another `taskd run` is using var/redis/ (stop it first)"
    assert first.poll() is None
    with urllib.request.urlopen(f"{base}/v1/tasks", timeout=10) as response:  # still serving
        assert response.status == 200
