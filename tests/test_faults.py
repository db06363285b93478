"""Faults with real processes and real signals: killed workers, supervised children, SIGTERM."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from taskd.redis_server import RedisServer
from tests.conftest import SECRET, ConfigFactory, free_port
from tests.helpers import ROOT
from tests.processes import children, environment, taskd, wait_for_line, write_toml
from tests.remote_servers import Slurm, Sshd

pytestmark = pytest.mark.faults


def post(base: str, path: str, body: dict[str, Any], timeout: float = 30) -> Any:
    request = urllib.request.Request(f"{base}{path}", data=orjson.dumps(body))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return orjson.loads(response.read())


def create(base: str, definition: dict[str, Any], block: bool = False) -> dict[str, Any]:
    [status] = post(base, "/v1/create", {"secret": SECRET, "tasks": definition, "block": block})
    return dict(status)


def status(base: str, key: str, block: bool = False) -> dict[str, Any]:
    [found] = post(base, "/v1/status", {"tasks": [key], "block": block})
    return dict(found)


def until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError):
            value = None  # a server being restarted
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_long_run(base: str, runs: Path) -> str:
    """A task whose first run lasts a minute and any re-run none; its key once it runs."""
    definition = {"task_name": "test.runs", "path": str(runs), "seconds": 60, "rerun_seconds": 0}
    key = str(create(base, definition)["key"])
    until(lambda: status(base, key).get("progress") == "running", 30, "the first run")
    return key


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def serve(make_config: ConfigFactory, tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """A `taskd serve` process on a config of these sections: (base URL, config path)."""
    with contextlib.ExitStack() as stack:

        def start(**sections: Any) -> tuple[str, Path]:
            port = free_port()
            config = write_toml(
                tmp_path / "taskd.toml", make_config(server={"port": port}, **sections)
            )
            log = tmp_path / "serve.log"
            process = stack.enter_context(
                taskd("--config", str(config), "serve", cwd=tmp_path, log=log)
            )
            wait_for_line(log, "serving http://", process)
            return f"http://127.0.0.1:{port}", config

        yield start


def test_a_killed_workers_task_runs_again_within_the_lease(
    serve: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    lease = 3.0
    base, config = serve(worker={"lease": lease, "shutdown_grace": 0})  # job_timeout: an hour
    runs = tmp_path / "runs"
    argv = ("--config", str(config), "worker")
    with taskd(*argv, cwd=tmp_path, log=tmp_path / "a.log") as first:
        key = start_long_run(base, runs)
        with taskd(*argv, cwd=tmp_path, log=tmp_path / "b.log") as second:
            wait_for_line(tmp_path / "b.log", "worker started", second)
            first.send_signal(signal.SIGKILL)
            # job_timeout is an hour: only the lease can bring the re-run; the bound only
            # stops the test.
            final = until(
                lambda: (s := status(base, key)) and s["status"] == "success" and s,
                3 * lease,
                "the re-run",
            )
    assert final["result"] == 2
    [dead, survivor] = lines(runs)
    assert (int(dead), int(survivor)) == (first.pid, second.pid)


def test_a_task_that_kills_its_worker_ends_worker_lost_after_max_tries(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    port = free_port()
    config = write_toml(
        tmp_path / "taskd.toml",
        make_config(server={"port": port}, worker={"lease": 1, "max_tries": 2}),
    )
    log = tmp_path / "run.log"
    runs = tmp_path / "runs"
    base = f"http://127.0.0.1:{port}"
    with taskd("--config", str(config), "run", cwd=tmp_path, log=log) as run:
        wait_for_line(log, "taskd is serving", run)
        key = create(base, {"task_name": "test.kill_worker", "path": str(runs)})["key"]
        final = until(
            lambda: (s := status(base, key)) and s["status"] == "error" and s, 60, "worker lost"
        )
        assert run.poll() is None  # the supervisor lived through it
    assert final["result"] == "worker lost"
    assert len(lines(runs)) == 2
    assert "worker exited with status -9; restarting it in 1 s" in log.read_text()


def test_taskd_run_restarts_each_child_that_dies(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "taskd.toml"
    config.write_text(
        (ROOT / "config" / "taskd.toml").read_text().replace("port = 8080", f"port = {port}")
    )
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{port}"
    body = {"secret": "demo-secret", "block": True}
    with taskd("--config", str(config), "run", cwd=tmp_path, log=log) as run:
        wait_for_line(log, "taskd is serving", run)
        done = post(base, "/v1/create", {**body, "tasks": {"task_name": "hello", "name": "0"}})
        for round_, name in enumerate(["worker", "serve", "redis-server"], start=1):
            pid = children(run.pid)[name]
            os.kill(pid, signal.SIGKILL)
            until(
                lambda name=name, pid=pid: children(run.pid).get(name) not in (None, pid),
                30,
                f"a new {name}",
            )
            answer = until(
                lambda round_=round_: post(
                    base,
                    "/v1/create",
                    {**body, "tasks": {"task_name": "hello", "name": str(round_)}},
                ),
                60,
                f"service after {name} restarted",
            )
            assert answer[0]["result"] == f"Hello {round_}"
            assert f"{name} exited with status -9; restarting it in 1 s" in log.read_text()
        # redis-server keeps its AOF across the restart: the first task is still there.
        assert status(base, done[0]["key"]) == done[0]
        assert run.poll() is None
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=10) == 0


def test_sigterm_hands_a_workers_running_task_back_at_once(
    serve: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    # The default lease (30 s): only the hand-back explains a re-run within seconds.
    base, config = serve(worker={"shutdown_grace": 1})
    runs = tmp_path / "runs"
    argv = ("--config", str(config), "worker")
    with taskd(*argv, cwd=tmp_path, log=tmp_path / "a.log") as first:
        key = start_long_run(base, runs)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    assert "handed 1 tasks back to the queue" in (tmp_path / "a.log").read_text()
    with taskd(*argv, cwd=tmp_path, log=tmp_path / "b.log"):
        final = until(
            lambda: (s := status(base, key)) and s["status"] == "success" and s, 15, "the re-run"
        )
    assert final["result"] == 2


def test_taskd_config_is_honoured_by_taskd_run_and_make_run(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    for how in ("taskd run", "make run"):
        port = free_port()
        config = tmp_path / f"{how.split()[0]}.toml"
        # The test's Redis and files directory: `make run` works in the checkout.
        config.write_text(
            (ROOT / "config" / "taskd.toml")
            .read_text()
            .replace("port = 8080", f"port = {port}")
            .replace('url = ""', f'url = "{redis_server.url}"')
            .replace('path = "var/files"', f'path = "{tmp_path / "files"}"')
        )
        log = tmp_path / f"{how.split()[0]}.log"
        env = environment(TASKD_CONFIG=str(config))
        if how == "taskd run":
            argv = [sys.executable, "-m", "taskd", "run"]
        else:
            argv = ["make", "-s", "-C", str(ROOT), "run"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_line(log, f"taskd is serving http://127.0.0.1:{port}", process, timeout=60)
            answer = post(
                f"http://127.0.0.1:{port}",
                "/v1/create",
                {
                    "secret": "demo-secret",
                    "block": True,
                    "tasks": {"task_name": "hello", "name": how},
                },
            )
            assert answer[0]["result"] == f"Hello {how}"
        finally:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C at the terminal
            process.wait(timeout=15)


def test_sigterm_on_serve_ends_open_streams_cleanly(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    port = free_port()
    config = write_toml(tmp_path / "taskd.toml", make_config(server={"port": port}))
    log = tmp_path / "serve.log"
    with taskd("--config", str(config), "serve", cwd=tmp_path, log=log) as serve:
        wait_for_line(log, "serving http://", serve)
        base = f"http://127.0.0.1:{port}"
        key = create(base, {"task_name": "hello", "name": "never run"})["key"]  # no worker
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", f"/v1/status_stream?tasks={key}")
            response = connection.getresponse()
            first = response.readline()
            serve.send_signal(signal.SIGTERM)
            rest = response.read()  # raises IncompleteRead unless the response ended properly
        finally:
            connection.close()
        assert serve.wait(timeout=10) == 0
    assert orjson.loads(first)[0]["status"] == "queued"
    assert rest == b""


@pytest.mark.remote
def test_a_killed_workers_slurm_job_is_followed_again_not_resubmitted(
    serve: Callable[..., tuple[str, Path]], tmp_path: Path, remote: tuple[Sshd, Slurm]
) -> None:
    sshd, slurm = remote
    lease = 3.0
    machine = sshd.machine(scheduler="slurm", workdir=str(tmp_path / "work"), poll_interval=0.5)
    base, config = serve(worker={"lease": lease, "shutdown_grace": 0}, machines={"hpc": machine})
    argv = ("--config", str(config), "worker")
    definition = {
        "task_name": "slurm.submit",
        "machine": "hpc",
        "script": "#!/bin/sh\nsleep 6\necho finished\n",
    }
    with taskd(*argv, cwd=tmp_path, log=tmp_path / "a.log") as first:
        key = str(create(base, definition)["key"])
        until(lambda: status(base, key).get("progress") == "RUNNING", 30, "the job to run")
        with taskd(*argv, cwd=tmp_path, log=tmp_path / "b.log") as second:
            wait_for_line(tmp_path / "b.log", "worker started", second)
            first.send_signal(signal.SIGKILL)
            final = until(
                lambda: (s := status(base, key)) and s["status"] != "executing" and s,
                3 * lease + 30,
                "the job's end",
            )
    assert final["status"] == "success", final
    job_id = final["result"]["job_id"]
    assert final["result"]["state"] == "COMPLETED"
    assert f"following Slurm job {job_id} again" in (tmp_path / "b.log").read_text()
    jobs = until(
        lambda: slurm.run("sacct", "-n", "-X", "-P", f"--name=taskd-{key}", "--format=JobID"),
        15,
        "the job's accounting record",
    )
    assert jobs.split() == [job_id]  # one job: the re-run did not submit again
