"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.conftest import SECRET

KEY = re.compile(r"^[A-Z2-7]{26}$")
STATUS_KEYS = {"status", "key", "progress", "events", "result", "files"}


def assert_timestamp(value: str) -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", value), value
    datetime.fromisoformat(value)


def assert_status(status: dict[str, Any]) -> None:
    """The Dragon status object: exactly the documented keys, in the documented forms."""
    assert set(status) <= STATUS_KEYS, status
    assert KEY.match(status["key"])
    assert status["status"] in {"queued", "executing", "success", "error"}
    for name, stamp in status["events"].items():
        assert name in {"queued", "started", "completed"}
        assert_timestamp(stamp)
    terminal = status["status"] in {"success", "error"}
    assert ("result" in status) == terminal
    assert ("completed" in status["events"]) == terminal


async def create(
    client: TestClient[Any, Any], tasks: Any, block: bool = False, **extra: Any
) -> ClientResponse:
    body = {"secret": SECRET, "tasks": tasks, "block": block, **extra}
    return await client.post("/v1/create", data=orjson.dumps(body))


async def create_ok(client: TestClient[Any, Any], tasks: Any, block: bool = False) -> list[Any]:
    response = await create(client, tasks, block)
    body = await response.json()
    assert response.status == 200, body
    return list(body)


async def read_lines(response: ClientResponse) -> list[Any]:
    return [orjson.loads(line) async for line in response.content if line.strip()]


ROOT = Path(__file__).resolve().parent.parent
# Debian's chromium, headless, on a machine with no network but loopback (see INFRA.md).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def run_taskd(
    *argv: str, cwd: Path = ROOT, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`taskd ARGV…` as a user would run it: no TASKD_* variables from this environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKD_")}
    return subprocess.run(
        [sys.executable, "-m", "taskd", *argv],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
