"""The client commands of `taskd` against a real `taskd run`: output, exit codes, env vars."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import free_port
from tests.helpers import ROOT
from tests.processes import environment, taskd, wait_for_line


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`taskd run` on the shipped demo config, on a free port: its URL."""
    root = tmp_path_factory.mktemp("console")
    port = free_port()
    config = root / "taskd.toml"
    config.write_text(
        (ROOT / "config" / "taskd.toml").read_text().replace("port = 8080", f"port = {port}")
    )
    log = root / "run.log"
    with taskd("--config", str(config), "run", cwd=root, log=log) as process:
        wait_for_line(log, "taskd is serving", process)
        yield f"http://127.0.0.1:{port}"


def cli(server: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`taskd ARGV…` as a user runs it: URL and secret from the environment, in a temp cwd."""
    variables = environment(
        **{"TASKD_URL": server, "TASKD_SECRET": "demo-secret", "COLUMNS": "200", **env}
    )
    return subprocess.run(
        [sys.executable, "-m", "taskd", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=variables,
        cwd=ROOT / "tests",  # no config/taskd.toml here: nothing of a server's config is read
    )


def test_submit_block_prints_a_table_and_exits_0(server: str) -> None:
    done = cli(server, "submit", "hello", "name=cli", "--block")
    assert done.returncode == 0, done.stderr
    assert "success" in done.stdout
    assert "Hello cli" in done.stdout


def test_submit_json_and_a_failed_task_exits_1(server: str) -> None:
    done = cli(server, "submit", "hello", "name=json", "--block", "--json")
    [status] = orjson.loads(done.stdout)
    assert status["result"] == "Hello json"
    failed = cli(server, "submit", "image.info", "url=http://127.0.0.1:9/none.jpg", "--block")
    assert failed.returncode == 1
    assert "error" in failed.stdout


def test_stream_shows_progress_and_ends_with_the_results(server: str) -> None:
    done = cli(server, "submit", "sleep", "seconds=0.5", "steps=5", "--stream")
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stdout or "success" in done.stdout
    assert "success" in done.stdout
    streamed = cli(server, "submit", "sleep", "seconds=0.3", "steps=3", "--stream", "--json")
    lines = [orjson.loads(line) for line in streamed.stdout.splitlines()]
    assert lines[0]["status"] == "queued"
    assert [line["progress"] for line in lines if "progress" in line][-1] == 100
    assert lines[-1]["status"] == "success"


def test_status_watch_cancel(server: str) -> None:
    [queued] = orjson.loads(cli(server, "submit", "sleep", "seconds=30", "--json").stdout)
    key = queued["key"]
    status = cli(server, "status", key, "--json")
    assert status.returncode == 0
    assert orjson.loads(status.stdout)[0]["key"] == key
    cancelled = cli(server, "cancel", key)
    assert cancelled.returncode == 0
    assert "cancelled" in cancelled.stdout
    watched = cli(server, "watch", key, "--json")
    assert watched.returncode == 1  # it ended in error (cancelled)
    assert orjson.loads(watched.stdout.splitlines()[-1])["result"] == "cancelled"


def test_tasks_lists_the_catalog_with_parameters(server: str) -> None:
    done = cli(server, "tasks")
    assert done.returncode == 0
    assert "slurm.submit" in done.stdout
    assert "seconds, [steps]" in done.stdout  # required and optional parameters of sleep


def test_upload_and_download(server: str, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("staged by the cli\n")
    [uploaded] = orjson.loads(cli(server, "upload", str(source), "--json").stdout)
    assert uploaded["files"] == ["notes.txt"]
    target = tmp_path / "back.txt"
    done = cli(server, "download", uploaded["key"], "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "staged by the cli\n"


def test_usage_credential_and_connection_errors_exit_2_in_one_line(server: str) -> None:
    for done in (
        cli(server, "submit", "hello"),  # a missing parameter
        cli(server, "submit", "hello", "name=x", TASKD_SECRET="wrong"),
        cli(f"http://127.0.0.1:{free_port()}", "tasks"),
        cli(server, "submit", "hello", "not-a-pair"),
    ):
        assert done.returncode == 2, done
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("taskd: ")
        assert "Traceback" not in done.stderr
    assert cli(server, "submit").returncode == 2  # argparse: usage
    missing = cli(server, "submit", "hello")
    assert missing.stderr.strip() == "taskd: HTTP 400: tasks.name: name is missing"


def test_flags_win_over_the_environment(server: str) -> None:
    done = cli(server, "submit", "hello", "name=f", "--block", "--secret", "demo-secret",
               TASKD_SECRET="wrong")  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_every_server_command_lists_its_environment() -> None:
    for command in ("run", "serve", "worker", "sign"):
        done = subprocess.run(
            [sys.executable, "-m", "taskd", command, "--help"],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        for variable in ("TASKD_CONFIG", "TASKD_REDIS_URL", "TASKD_HOST", "TASKD_PORT"):
            assert variable in done.stdout, (command, variable)
    client_help = subprocess.run(
        [sys.executable, "-m", "taskd", "submit", "--help"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    for variable in ("TASKD_URL", "TASKD_SECRET", "TASKD_API_KEY"):
        assert variable in client_help
