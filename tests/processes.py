"""taskd as real processes for the fault tests: config files, spawning, finding children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import ROOT


def write_toml(path: Path, config: dict[str, Any]) -> Path:
    """Sections of scalars and lists: their JSON spelling is valid TOML."""
    lines: list[str] = []

    def section(name: str, table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {orjson.dumps(v).decode()}" for k, v in scalars.items())
        for key, value in table.items():
            if isinstance(value, dict):
                section(f"{name}.{key}", value)

    for name, table in config.items():
        section(name, table)
    path.write_text("\n".join(lines) + "\n")
    return path


def environment(**extra: str) -> dict[str, str]:
    """As a user's shell would have it: no TASKD_* variables from this one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKD_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def taskd(
    *argv: str, cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`taskd ARGV…` in its own process group, its output in `log`; killed on exit if alive."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskd", *argv],
            cwd=cwd,
            env=env or environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_line(
    log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, f"no {text!r} in {log}:\n{log.read_text()}"
        time.sleep(0.05)


def children(pid: int) -> dict[str, int]:
    """The direct children of `pid` by what they run: "worker", "serve", "redis-server"."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != pid or fields[0] == "Z":
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        for name in ("worker", "serve"):
            if name in words:
                found[name] = int(entry.name)
        if words and "redis-server" in words[0]:  # it rewrites its own title
            found["redis-server"] = int(entry.name)
    return found
