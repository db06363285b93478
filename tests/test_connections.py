"""Open connections bounded below the open-file limit: beyond it new connections wait,
never an accept-error loop, and the server keeps serving."""

from __future__ import annotations

import concurrent.futures
import contextlib
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import ConfigFactory, free_port
from tests.processes import environment, wait_for_line, write_toml


def request(port: int, path: str = "/v1/tasks") -> tuple[int, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


def limit_open_files(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@pytest.mark.parametrize(
    ("max_connections", "open_files", "idle"),
    [(20, None, 60), (0, 200, 400)],  # configured; or the default margin below a low limit
)
def test_connections_beyond_the_limit_wait_and_the_server_keeps_serving(
    make_config: ConfigFactory,
    tmp_path: Path,
    max_connections: int,
    open_files: int | None,
    idle: int,
) -> None:
    port = free_port()
    config = write_toml(
        tmp_path / "taskd.toml",
        make_config(server={"port": port, "max_connections": max_connections}),
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "taskd", "--config", str(config), "serve"],
            cwd=tmp_path,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_open_files(open_files) if open_files else None,
        )
    sockets: list[socket.socket] = []
    try:
        wait_for_line(log, "serving http://", serve)
        for _ in range(idle):  # idle keep-alive connections, more than the server may hold
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
        time.sleep(0.5)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(request, port)
            time.sleep(1)
            assert not waiting.done()  # beyond the limit: it waits for a free slot
            for sock in sockets:
                sock.close()
            sockets.clear()
            status, body = waiting.result(timeout=10)
        assert status == 200
        assert "tasks" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/tasks", timeout=10) as answer:
            assert "tasks" in orjson.loads(answer.read())
        assert serve.poll() is None
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        serve.terminate()
        serve.wait(timeout=10)
    lines = log.read_text().splitlines()
    assert len(lines) < 20, lines  # one line per interval, with a count: no flood
    assert not any("Traceback" in line for line in lines)
