"""S3 servers for the tests: moto's (the S3 protocol) and s3rver (which checks signatures)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
S3RVER = ROOT / ".node" / "node_modules" / ".bin" / "s3rver"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def storage(self, bucket: str, **extra: object) -> dict[str, object]:
        """A `[storage]` section using this server."""
        return {
            "backend": "s3",
            "bucket": bucket,
            "endpoint_url": self.endpoint_url,
            "region": "us-east-1",
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            **extra,
        }


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def moto_server(port: int) -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port)
        yield S3Server(f"http://127.0.0.1:{port}", "testing", "testing")
    finally:
        server.stop()


@contextmanager
def s3rver(port: int, directory: Path) -> Iterator[S3Server]:
    if not S3RVER.exists():
        raise RuntimeError(f"{S3RVER} is missing: `make test` installs it (npm install s3rver)")
    process = subprocess.Popen(
        [str(S3RVER), "-d", str(directory), "-a", "127.0.0.1", "-p", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield S3Server(f"http://127.0.0.1:{port}", "S3RVER", "S3RVER")
    finally:
        process.terminate()
        process.wait(10)
