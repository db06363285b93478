"""`taskd run`: the whole service on one machine (redis-server, one HTTP server, one worker),
supervised: a child that exits unasked is started again."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

from taskd.errors import TaskdError
from taskd.process import die_with_parent
from taskd.redis_server import RedisServer
from taskd.settings import Settings

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# A child that exits unasked is started again after this long, doubling up to the maximum;
# one that had lived this long before it exited starts from the minimum again.
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
STABLE_SECONDS = 30.0


class Stop(Exception):
    """A stop signal arrived."""


def raise_stop(signum: int, frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


class Child:
    """A supervised process: started again with backoff whenever it exits unasked."""

    def __init__(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.name = name
        self._start = start
        self.process = start()
        self.started = time.monotonic()
        self.delay = BACKOFF_MIN
        self.restart_at: float | None = None

    def supervise(self) -> None:
        now = time.monotonic()
        if self.restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            if now - self.started >= STABLE_SECONDS:
                self.delay = BACKOFF_MIN
            log.warning(
                "%s exited with status %s; restarting it in %g s", self.name, code, self.delay
            )
            self.restart_at = now + self.delay
            self.delay = min(self.delay * 2, BACKOFF_MAX)
        elif now >= self.restart_at:
            try:
                self.process = self._start()
            except TaskdError as exc:  # e.g. redis-server would not start: try again later
                log.warning("%s: %s", self.name, exc)
                self.restart_at = now + self.delay
                self.delay = min(self.delay * 2, BACKOFF_MAX)
                return
            self.started, self.restart_at = time.monotonic(), None


def run(settings: Settings, config: Path, var: Path = Path("var")) -> int:
    """Start everything, restart what dies, stop everything on a signal; the exit code."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, raise_stop)
    redis: RedisServer | None = None
    children: list[Child] = []
    try:
        env = {**os.environ, "TASKD_CONFIG": str(config.resolve())}
        if not settings.redis.configured:
            own(var / "redis")  # the lock is held until this process ends
            redis = RedisServer(var / "redis", persist=True)
            server = redis
            children.append(Child("redis-server", lambda: server.start().running()))
            env["TASKD_REDIS_URL"] = redis.url
        for command in ("worker", "serve"):
            children.append(Child(command, partial(spawn, command, env)))
        if not listening(settings, [c.process for c in children]):
            log.error("the HTTP server did not start; stopping")
            return 1
        announce(settings, env.get("TASKD_REDIS_URL") or "as configured")
        while True:
            for child in children:
                child.supervise()
            time.sleep(0.2)
    except Stop as stop:
        log.info("%s: stopping", stop)
        return 0
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        # The worker hands its running tasks back within its grace; redis-server goes last.
        stop_all(
            [c.process for c in children if c.name != "redis-server"],
            settings.worker.shutdown_grace + 3,
        )
        if redis is not None:
            redis.stop()


class InUse(TaskdError):
    """Another `taskd run` serves from the same directory."""


def own(directory: Path) -> int:
    """An exclusive lock on `directory`: a second `taskd run` there would start a second
    redis-server on the same socket, and the first one's exit would unlink it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "taskd-run.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InUse(f"another `taskd run` is using {directory}/ (stop it first)") from None
    return fd


def spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "taskd", command],
        env=env,
        preexec_fn=die_with_parent,
        # Own session: a terminal's Ctrl-C reaches only us, and we stop them in order.
        start_new_session=True,
    )


def listening(settings: Settings, children: list[subprocess.Popen[bytes]]) -> bool:
    """Wait until our HTTP server answers its catalog; False if a child dies first."""
    host = settings.server.host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104
    url = f"http://{host}:{settings.server.port}/v1/tasks"
    while all(child.poll() is None for child in children):
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(url, timeout=1) as response,
        ):
            if "tasks" in orjson.loads(response.read()):
                return True
        time.sleep(0.05)
    return False


def stop_all(children: list[subprocess.Popen[bytes]], timeout: float) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.0, deadline - time.monotonic()))
        if child.poll() is None:
            child.kill()
            child.wait()


def announce(settings: Settings, redis_url: str) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    lines = [f"taskd is serving {base}  (redis: {redis_url})"]
    for name, account in settings.accounts.items():
        keys = ", ".join(k.get_secret_value() for k in account.api_keys) or "none"
        lines.append(
            f"  account {name!r}: secret {account.secret.get_secret_value()!r}, api keys: {keys}"
        )
    lines.append(
        f"  try: curl -s {base}/v1/create -d "
        '\'{"secret": "demo-secret", "block": true, '
        '"tasks": {"task_name": "hello", "name": "world"}}\''
    )
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)
