"""remote.* tasks against a real OpenSSH sshd: commands, listings, staging, failures."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import SECRET, ApiFactory, Client
from tests.helpers import create, create_ok
from tests.images import ImageServer
from tests.remote_servers import Slurm, Sshd, free_port, keygen

pytestmark = pytest.mark.remote


@pytest.fixture
async def cluster(remote: tuple[Sshd, Slurm], make_api: ApiFactory, workdir: Path) -> Client:
    sshd, _ = remote
    return await make_api(machines={"cluster": sshd.machine(workdir=str(workdir))})


async def run_one(client: Client, definition: dict[str, Any]) -> dict[str, Any]:
    [status] = await create_ok(client, definition, block=True)
    assert status["status"] in ("success", "error"), status
    return dict(status)


async def file_text(client: Client, key: str, name: str) -> str:
    response = await client.get(f"/v1/file/{name}", params={"task": key})
    assert response.status == 200, await response.text()
    return await response.text()


async def test_remote_run_gives_exit_status_and_both_outputs(cluster: Client) -> None:
    status = await run_one(
        cluster,
        {
            "task_name": "remote.run",
            "machine": "cluster",
            "command": ["sh", "-c", "echo out; echo err >&2; exit 3"],
        },
    )
    assert status["status"] == "success"
    assert status["result"] == {"exit_status": 3, "stdout": "out\n", "stderr": "err\n"}
    assert sorted(status["files"]) == ["stderr", "stdout"]
    assert await file_text(cluster, status["key"], "stdout") == "out\n"
    assert await file_text(cluster, status["key"], "stderr") == "err\n"


async def test_an_argv_is_quoted_and_a_string_is_shell(cluster: Client, workdir: Path) -> None:
    argv = await run_one(
        cluster,
        {
            "task_name": "remote.run",
            "machine": "cluster",
            "command": ["echo", "a b; touch x", "$HOME"],
        },
    )
    assert argv["result"]["stdout"] == "a b; touch x $HOME\n"
    assert not (workdir / "x").exists()  # nothing of the argument reached a shell
    shell = await run_one(
        cluster,
        {"task_name": "remote.run", "machine": "cluster", "command": "pwd; echo $((6 * 7))"},
    )
    assert shell["result"]["stdout"] == f"{workdir}\n42\n"  # runs in the machine's workdir


async def test_check_turns_a_failure_into_an_error(cluster: Client) -> None:
    status = await run_one(
        cluster,
        {
            "task_name": "remote.run",
            "machine": "cluster",
            "command": "echo first >&2; echo 'the real reason' >&2; exit 2",
            "check": True,
        },
    )
    assert status["status"] == "error"
    assert status["result"] == "exit status 2: the real reason"
    assert "files" not in status


async def test_a_missing_command_is_exit_127(cluster: Client) -> None:
    status = await run_one(
        cluster, {"task_name": "remote.run", "machine": "cluster", "command": ["no-such-program"]}
    )
    assert status["status"] == "success"
    assert status["result"]["exit_status"] == 127
    assert "not found" in status["result"]["stderr"]
    checked = await run_one(
        cluster,
        {
            "task_name": "remote.run",
            "machine": "cluster",
            "command": ["no-such-program"],
            "check": True,
        },
    )
    assert checked["status"] == "error"
    assert checked["result"].startswith("exit status 127: ")


async def test_long_output_is_truncated_in_the_result_and_whole_in_the_file(
    cluster: Client,
) -> None:
    # 200,000 numbered lines (about 1.3 MB): the result keeps the last 65,536 bytes.
    status = await run_one(
        cluster, {"task_name": "remote.run", "machine": "cluster", "command": ["seq", "200000"]}
    )
    result = status["result"]
    assert result["truncated"] is True
    assert len(result["stdout"].encode()) == 65536
    assert result["stdout"].endswith("199999\n200000\n")
    whole = await file_text(cluster, status["key"], "stdout")
    assert whole == "".join(f"{i}\n" for i in range(1, 200001))


def remote_pids(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def wait_until(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"{condition.__name__} never came true"
        await asyncio.sleep(0.1)


def spawning(marker: str) -> str:
    """A shell with a background child and a foreground one, each carrying `marker`."""
    return f"sh -c 'sleep 300; true' {marker} & sh -c 'sleep 301; true' {marker}; wait"


async def test_timeout_ends_the_remote_process_and_its_children(cluster: Client) -> None:
    marker = f"taskd-timeout-{time.monotonic_ns()}"
    [status] = await create_ok(
        cluster,
        {
            "task_name": "remote.run",
            "machine": "cluster",
            "command": spawning(marker),
            "timeout": 2,
        },
    )

    async def both_running() -> bool:
        return len(remote_pids(marker)) >= 2

    await wait_until(both_running)
    response = await cluster.get("/v1/status", params={"tasks": status["key"], "block": "true"})
    [ended] = await response.json()
    assert ended["status"] == "error"
    assert ended["result"] == "timeout after 2 s"

    async def none_left() -> bool:
        return not remote_pids(marker)

    await wait_until(none_left)


async def test_cancel_ends_the_remote_process(cluster: Client) -> None:
    marker = f"taskd-cancel-{time.monotonic_ns()}"
    [status] = await create_ok(
        cluster, {"task_name": "remote.run", "machine": "cluster", "command": spawning(marker)}
    )

    async def both_running() -> bool:
        return len(remote_pids(marker)) >= 2

    await wait_until(both_running)
    response = await cluster.post(
        "/v1/cancel", data=orjson.dumps({"secret": SECRET, "tasks": [status["key"]]})
    )
    assert response.status == 200
    [cancelled] = await response.json()
    assert cancelled["result"] == "cancelled"

    async def gone() -> bool:
        return not remote_pids(marker)

    await wait_until(gone)


async def test_remote_ls_lists_entries_sorted_with_their_kinds(
    cluster: Client, workdir: Path
) -> None:
    (workdir / "b.txt").write_bytes(b"12345")
    (workdir / "a-dir").mkdir()
    (workdir / "c-link").symlink_to("b.txt")
    os.chmod(workdir / "b.txt", 0o640)
    status = await run_one(cluster, {"task_name": "remote.ls", "machine": "cluster", "path": "."})
    assert status["status"] == "success", status
    entries = status["result"]
    assert [e["name"] for e in entries] == ["a-dir", "b.txt", "c-link"]
    a_dir, b_txt, c_link = entries
    assert (a_dir["type"], a_dir["link_target"]) == ("dir", None)
    assert b_txt["type"] == "file"
    assert b_txt["size"] == 5
    assert b_txt["permissions"] == "rw-r-----"
    assert (b_txt["user"], b_txt["group"]) == ("root", "root")
    assert b_txt["last_modified"].endswith("+00:00")
    assert (c_link["type"], c_link["link_target"]) == ("link", "b.txt")
    assert set(b_txt) == {
        "name", "type", "size", "permissions", "user", "group", "last_modified", "link_target",
    }  # fmt: skip


async def test_remote_ls_of_a_missing_path_is_an_error(cluster: Client) -> None:
    status = await run_one(
        cluster, {"task_name": "remote.ls", "machine": "cluster", "path": "/no/such/dir"}
    )
    assert status["status"] == "error"
    assert status["result"] == "machine cluster: /no/such/dir: No such file"


async def test_upload_from_a_url_lands_whole_with_its_md5(
    cluster: Client, workdir: Path, image_server: ImageServer
) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    image_server.files["input.bin"] = (body, "application/octet-stream")
    status = await run_one(
        cluster,
        {
            "task_name": "remote.upload",
            "machine": "cluster",
            "source_url": f"{image_server.url}/input.bin",
            "target_path": "in/input.bin",
        },
    )
    assert status["status"] == "success", status
    assert status["result"] == {
        "path": str(workdir / "in" / "input.bin"),
        "size": len(body),
        "md5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
    }
    assert (workdir / "in" / "input.bin").read_bytes() == body
    assert [p.name for p in (workdir / "in").iterdir()] == ["input.bin"]  # no temporary left


async def test_upload_of_a_failing_url_leaves_nothing(
    cluster: Client, workdir: Path, image_server: ImageServer
) -> None:
    status = await run_one(
        cluster,
        {
            "task_name": "remote.upload",
            "machine": "cluster",
            "source_url": f"{image_server.url}/missing",
            "target_path": "in/x.bin",
        },
    )
    assert status["status"] == "error"
    assert "HTTP 404" in status["result"]
    assert not (workdir / "in" / "x.bin").exists()
    leftovers = list((workdir / "in").iterdir()) if (workdir / "in").exists() else []
    assert leftovers == []  # not even the temporary name


async def test_download_makes_a_remote_file_this_tasks_output(
    cluster: Client, workdir: Path
) -> None:
    (workdir / "results").mkdir()
    (workdir / "results" / "table.csv").write_text("a,b\n1,2\n")
    status = await run_one(
        cluster,
        {"task_name": "remote.download", "machine": "cluster", "source_path": "results/table.csv"},
    )
    assert status["status"] == "success", status
    assert status["files"] == ["table.csv"]
    assert await file_text(cluster, status["key"], "table.csv") == "a,b\n1,2\n"
    missing = await run_one(
        cluster,
        {"task_name": "remote.download", "machine": "cluster", "source_path": "nothing.txt"},
    )
    assert missing["status"] == "error"
    assert missing["result"] == f"machine cluster: {workdir}/nothing.txt: no such file"


async def test_upload_from_another_tasks_file(cluster: Client, workdir: Path) -> None:
    [first] = await create_ok(
        cluster,
        {"task_name": "remote.run", "machine": "cluster", "command": ["echo", "staged"]},
        block=True,
    )
    status = await run_one(
        cluster,
        {
            "task_name": "remote.upload",
            "machine": "cluster",
            "source_task": first["key"],
            "source_file": "stdout",
            "target_path": str(workdir / "copy.txt"),
        },
    )
    assert status["status"] == "success", status
    assert (workdir / "copy.txt").read_text() == "staged\n"
    no_file = await run_one(
        cluster,
        {
            "task_name": "remote.upload",
            "machine": "cluster",
            "source_task": first["key"],
            "source_file": "other",
            "target_path": "x",
        },
    )
    assert no_file["result"] == (
        f"task {first['key']} has no file 'other' (its files: 'stdout', 'stderr')"
    )


async def test_an_unknown_machine_is_a_400_at_create(cluster: Client) -> None:
    response = await create(
        cluster, [{"task_name": "remote.run", "machine": "elsewhere", "command": ["true"]}]
    )
    assert response.status == 400
    body = await response.json()
    assert body["errors"] == [
        {
            "name": "tasks.0.machine",
            "location": "body",
            "description": "machine: unknown machine 'elsewhere' (machines: 'cluster')",
        }
    ]


async def test_connection_failures_are_one_line_errors(
    remote: tuple[Sshd, Slurm], make_api: ApiFactory, tmp_path: Path
) -> None:
    sshd, _ = remote
    stranger = tmp_path / "stranger"
    keygen(stranger)
    wrong_hosts = tmp_path / "wrong_known_hosts"
    other_key = tmp_path / "other_host"
    keygen(other_key)
    other_pub = " ".join(other_key.with_suffix(".pub").read_text().split()[:2])
    wrong_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other_pub}\n")
    empty_hosts = tmp_path / "empty_known_hosts"
    empty_hosts.write_text("")
    closed = free_port()
    silent = socket.socket()  # accepts connections (the kernel does) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent_port = silent.getsockname()[1]
    client = await make_api(
        machines={
            "silent": sshd.machine(port=silent_port, connect_timeout=1),
            "unreachable": sshd.machine(port=closed),
            "refused": sshd.machine(client_keys=[str(stranger)]),
            "changed": sshd.machine(known_hosts=str(wrong_hosts)),
            "unknown": sshd.machine(known_hosts=str(empty_hosts)),
        }
    )
    results = {}
    for machine in ("silent", "unreachable", "refused", "changed", "unknown"):
        status = await run_one(
            client, {"task_name": "remote.run", "machine": machine, "command": ["true"]}
        )
        assert status["status"] == "error"
        results[machine] = status["result"]
    silent.close()
    where = f"127.0.0.1:{sshd.port}"
    assert results["silent"] == f"machine silent: no answer from 127.0.0.1:{silent_port} within 1 s"
    assert results["unreachable"].startswith(
        f"machine unreachable: cannot connect to 127.0.0.1:{closed}"
    )
    assert results["refused"] == f"machine refused: authentication refused by {where} for root"
    assert results["changed"] == (
        f"machine changed: host key of {where} not verifiable against {wrong_hosts}"
    )
    assert results["unknown"] == (
        f"machine unknown: host key of {where} not verifiable against {empty_hosts}"
    )
    assert all("\n" not in r for r in results.values())


async def test_an_uploaded_file_is_staged_onto_a_machine(cluster: Client, workdir: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    response = await cluster.post(f"/v1/upload/input.dat?secret={SECRET}", data=io.BytesIO(data))
    [uploaded] = await response.json()
    status = await run_one(
        cluster,
        {
            "task_name": "remote.upload",
            "machine": "cluster",
            "source_task": uploaded["key"],  # its one file: no source_file needed
            "target_path": "inputs/input.dat",
        },
    )
    assert status["status"] == "success", status
    assert status["result"]["md5"] == uploaded["result"]["md5"]
    assert (workdir / "inputs" / "input.dat").read_bytes() == data


async def test_more_commands_at_once_than_sshd_allows_sessions_all_run(cluster: Client) -> None:
    """sshd allows 10 sessions per connection; the machine's channel limit (8) queues the rest."""
    definitions = [
        {
            "task_name": "remote.run",
            "machine": "cluster",
            "command": ["sh", "-c", f"sleep 1; echo {i}"],
        }
        for i in range(30)
    ]
    statuses = await create_ok(cluster, definitions, block=True)
    assert [s["status"] for s in statuses] == ["success"] * 30
    assert [s["result"]["stdout"] for s in statuses] == [f"{i}\n" for i in range(30)]
