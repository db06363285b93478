"""Log set-up: text for people, one JSON object per line for collectors."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from taskd.context import TaskLogger
from taskd.logs import setup_logging
from taskd.settings import LogSettings
from tests.conftest import API_KEY, OTHER_SECRET, SECRET, ConfigFactory, free_port
from tests.processes import taskd, wait_for_line, write_toml


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_task_key(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(level="debug", format="json"), "worker")
    TaskLogger(logging.getLogger("tasks.demo"), {"task_key": "K" * 26}).info("step %d", 3)
    entry = orjson.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["level"] == "info"
    assert entry["logger"] == "tasks.demo"
    assert entry["message"] == f"task {'K' * 26}: step 3"
    assert entry["task_key"] == "K" * 26


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_name_the_process_and_respect_the_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(LogSettings(level="warning", format="text"), "serve")
    logging.getLogger("taskd.x").info("hidden")
    logging.getLogger("taskd.x").warning("shown")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert " serve WARNING taskd.x: shown" in lines[0]


def test_a_whole_runs_logs_hold_no_credential(make_config: ConfigFactory, tmp_path: Path) -> None:
    """serve and worker at debug level, sent credentials every way a client can, good and bad."""
    port = free_port()
    config = write_toml(
        tmp_path / "taskd.toml", make_config(server={"port": port}, log={"level": "debug"})
    )
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{port}"
    argv = ("--config", str(config))
    with (
        taskd(*argv, "serve", cwd=tmp_path, log=log) as serve,
        taskd(*argv, "worker", cwd=tmp_path, log=log),
    ):
        wait_for_line(log, "serving http://", serve)
        hello = {"task_name": "hello", "name": "x"}
        attempts = [
            ("POST", f"/v1/create?secret={SECRET}&block=1", {"tasks": hello}, {}),
            ("POST", "/v1/create", {"secret": SECRET, "tasks": hello, "block": True}, {}),
            ("POST", "/v1/create", {"tasks": hello}, {"Authorization": f"Secret {SECRET}"}),
            (
                "POST",
                "/v1/create",
                {"tasks": hello, "api_key": API_KEY},
                {"Origin": "https://example.com"},
            ),
            (
                "POST",
                "/v1/create",
                {"tasks": hello},
                {"Authorization": f"Api-Key {API_KEY}", "Origin": "https://evil.com"},
            ),
            ("POST", "/v1/create", {"tasks": hello, "secret": OTHER_SECRET + "x"}, {}),
            ("POST", "/v1/cancel", {"tasks": ["A" * 26], "secret": OTHER_SECRET}, {}),
            (
                "GET",
                f"/v1/create_file/x?task_name=hello&name=y&account=demo&sig={SECRET}",
                None,
                {},
            ),
        ]
        for method, path, body, headers in attempts:
            request = urllib.request.Request(
                base + path,
                method=method,
                headers=headers,
                data=orjson.dumps(body) if body is not None else None,
            )
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=10).read()
        # Past aiohttp's limits: answered before any handler, logged by aiohttp itself.
        for raw in (
            b"GET /v1/status?secret="
            + SECRET.encode()
            + b"&t="
            + b"A" * 9000
            + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Secret "
            + SECRET.encode()
            + b"A" * 9000
            + b"\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(raw)
                assert sock.recv(100).startswith(b"HTTP/1.")
        time.sleep(0.5)
    text = log.read_text()
    assert "Error handling request" in text  # aiohttp did log the oversized requests...
    for credential in (SECRET, API_KEY, OTHER_SECRET):
        assert credential not in text  # ...and nobody logged a credential
    assert "Traceback" not in text
    assert " ERROR " not in text


def test_a_workers_json_lines_about_a_task_carry_its_key(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    """The engine's, the error boundary's and the callbacks' lines, not only the task's own."""
    port = free_port()
    config = write_toml(
        tmp_path / "taskd.toml",
        make_config(server={"port": port}, log={"format": "json"}, fetch={"allow_hosts": []}),
    )
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{port}"

    def post(path: str, body: dict[str, object]) -> list[dict[str, object]]:
        request = urllib.request.Request(base + path, data=orjson.dumps(body))
        with urllib.request.urlopen(request, timeout=30) as response:
            return list(orjson.loads(response.read()))

    argv = ("--config", str(config))
    with (
        taskd(*argv, "serve", cwd=tmp_path, log=log) as serve,
        taskd(*argv, "worker", cwd=tmp_path, log=log) as worker,
    ):
        wait_for_line(log, "serving http://", serve)
        wait_for_line(log, "worker started", worker)
        [failed] = post(
            "/v1/create",
            {
                "secret": SECRET,
                "block": True,
                # A refused callback URL: the delivery logs a line of its own.
                "tasks": {"task_name": "test.raise", "kind": "base",
                          "url_errback": "http://10.0.0.1/hook"},
            },
        )  # fmt: skip
        [sleeping] = post(
            "/v1/create", {"secret": SECRET, "tasks": {"task_name": "sleep", "seconds": 30}}
        )
        deadline = time.monotonic() + 20
        while post("/v1/status", {"tasks": [sleeping["key"]]})[0]["status"] != "executing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        post("/v1/cancel", {"secret": SECRET, "tasks": [sleeping["key"]]})
        wait_for_line(log, "stopping it", worker)
        wait_for_line(log, "callback not sent", worker)
    entries = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    about = {
        "failed": [e for e in entries if str(failed["key"]) in e["message"]],
        "sleeping": [e for e in entries if str(sleeping["key"]) in e["message"]],
    }
    assert any("failed" in e["message"] for e in about["failed"])  # the boundary's traceback line
    assert any("callback not sent" in e["message"] for e in about["failed"])
    assert any("stopping it" in e["message"] for e in about["sleeping"])
    for e in about["failed"]:
        assert e.get("task_key") == failed["key"], e
    for e in about["sleeping"]:
        assert e.get("task_key") == sleeping["key"], e
