"""`taskd run`: the whole service on one machine: redis-server, one HTTP server, one worker."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from taskd.process import die_with_parent
from taskd.redis_server import RedisServer
from taskd.settings import Settings

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(Exception):
    """A stop signal arrived."""


def raise_stop(signum: int, frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def run(settings: Settings, config: Path, var: Path = Path("var")) -> int:
    """Start everything, wait for a signal or a child's death, stop everything; the exit code."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, raise_stop)
    redis: RedisServer | None = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = {**os.environ, "TASKD_CONFIG": str(config.resolve())}
        if not settings.redis.configured:
            redis = RedisServer(var / "redis", persist=True).start()
            env["TASKD_REDIS_URL"] = redis.url
        for command in ("worker", "serve"):
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "taskd", command],
                    env=env,
                    preexec_fn=die_with_parent,
                    # Own session: a terminal's Ctrl-C reaches only us, and we stop them in order.
                    start_new_session=True,
                )
            )
        if not listening(settings, children):
            log.error("the HTTP server did not start; stopping")
            return 1
        announce(settings, env.get("TASKD_REDIS_URL") or "as configured")
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
        log.error("a child process exited; stopping")
        return 1
    except Stop as stop:
        log.info("%s: stopping", stop)
        return 0
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        stop_all(children)
        if redis is not None:
            redis.stop()


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


def stop_all(children: list[subprocess.Popen[bytes]], timeout: float = 7) -> None:
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
