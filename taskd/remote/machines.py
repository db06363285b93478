"""One pooled SSH connection per configured machine and worker process.

A connection is opened on first use, shared by every task of the process, and opened again
after it dropped. The host key is always checked against the machine's `known_hosts`: an
unknown or changed key is refused. A semaphore bounds the channels open at once on it (sshd
refuses sessions beyond its `MaxSessions`), and every command has a timeout and an output cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import shlex
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TypeVar

import asyncssh

from taskd.remote import ConnectionDropped, RemoteError
from taskd.remote.commands import Command, Output
from taskd.settings import MachineSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
# What taskd's own commands (squeue, sacct, ls…) may print; a user's command streams to files.
MAX_OUTPUT = 16 * 1024 * 1024
READ_SIZE = 65536
CLOSE_TIMEOUT = 2.0
# Errors that mean the connection is gone (or never came): open it again next time.
DROPPED = (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError, ConnectionError)


class Machine:
    def __init__(self, name: str, settings: MachineSettings) -> None:
        self.name = name
        self.settings = settings
        self.commands = 0  # commands started on it by this process
        self.reachable: bool | None = None  # as last seen, with when (unix time)
        self.checked: float | None = None
        self.background: set[asyncio.Task[None]] = set()  # ended by close()
        self._connection: asyncssh.SSHClientConnection | None = None
        self._connecting = asyncio.Lock()
        self._channels = asyncio.Semaphore(settings.max_channels)

    def path(self, path: str) -> str:
        """A path on the machine: absolute, or relative to its `workdir`."""
        if posixpath.isabs(path) or not self.settings.workdir:
            return posixpath.normpath(path) if path else "."
        return posixpath.normpath(posixpath.join(self.settings.workdir, path))

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self._connecting:
            if self._connection is not None and not self._connection.is_closed():
                return self._connection
            self._connection = None
            settings = self.settings
            try:
                self._connection = await asyncssh.connect(
                    settings.host,
                    settings.port,
                    username=settings.username,
                    client_keys=settings.client_keys or (),
                    known_hosts=settings.known_hosts,
                    connect_timeout=settings.connect_timeout,
                    keepalive_interval=settings.keepalive,
                    keepalive_count_max=3,
                    config=None,  # this machine's settings only, not ~/.ssh/config
                    agent_path=None,
                )
            except BaseException as exc:
                self.seen(False)
                raise self.connect_error(exc) from None
            self.seen(True)
            log.info("machine %s: connected to %s:%d", self.name, settings.host, settings.port)
            return self._connection

    def connect_error(self, exc: BaseException) -> BaseException:
        where = f"{self.settings.host}:{self.settings.port}"
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            message = f"host key of {where} not verifiable against {self.settings.known_hosts}"
        elif isinstance(exc, asyncssh.PermissionDenied):
            message = f"authentication refused by {where} for {self.settings.username}"
        elif isinstance(exc, asyncssh.DisconnectError):
            message = f"{where} closed the connection: {exc.reason}"
        elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
            message = f"no answer from {where} within {self.settings.connect_timeout:g} s"
        elif isinstance(exc, OSError):
            message = f"cannot connect to {where}: {exc.strerror or exc}"
        elif isinstance(exc, asyncssh.Error | ValueError):
            message = f"cannot connect to {where}: {exc}"
        else:
            return exc  # a cancellation, or a bug: not ours to reword
        return RemoteError(f"machine {self.name}: {message}")

    def seen(self, reachable: bool) -> None:
        self.reachable, self.checked = reachable, time.time()

    def dropped(self, connection: asyncssh.SSHClientConnection) -> None:
        if self._connection is connection:
            log.warning("machine %s: connection lost; it is opened again on next use", self.name)
            self._connection = None
            self.seen(False)
        connection.abort()

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """The connection, holding one of the machine's channel slots."""
        async with self._channels:
            connection = await self.connection()
            try:
                yield connection
            except DROPPED:
                self.dropped(connection)
                raise ConnectionDropped(f"machine {self.name}: connection lost") from None
            except asyncssh.ChannelOpenError as exc:
                raise RemoteError(f"machine {self.name}: {exc.reason}") from None

    async def run(self, command: Command[T], timeout: float | None = None) -> T:
        """Run one of taskd's own commands; an idempotent one is tried again after a drop."""
        line = shlex.join(command.argv())  # quoted word by word: nothing reaches a shell raw
        try:
            output = await self.execute(line, timeout)
        except ConnectionDropped:
            if not command.idempotent:
                raise
            output = await self.execute(line, timeout)
        return command.parse(output)

    async def execute(self, line: str, timeout: float | None = None) -> Output:
        """`line` in the remote shell, its output capped at MAX_OUTPUT bytes."""
        timeout = timeout or self.settings.command_timeout
        async with self.channel() as connection:
            self.commands += 1
            process = await connection.create_process(line, encoding=None, stdin=asyncssh.DEVNULL)
            try:
                async with asyncio.timeout(timeout):
                    stdout, stderr = await asyncio.gather(
                        capped(process.stdout, line), capped(process.stderr, line)
                    )
                    await process.wait_closed()
            except TimeoutError:
                raise RemoteError(
                    f"machine {self.name}: {line.split()[0]} gave no answer within {timeout:g} s"
                ) from None
            finally:
                process.close()
        return Output(stdout, stderr, exit_code(process))

    @contextlib.asynccontextmanager
    async def sftp(self) -> AsyncIterator[asyncssh.SFTPClient]:
        async with self.channel() as connection:
            self.commands += 1
            async with connection.start_sftp_client() as client:
                yield client

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background.clear()
        if self._connection is not None:
            self._connection.close()
            # A peer that stopped answering must not hold up a worker's stop.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._connection.wait_closed()
            self._connection.abort()
            self._connection = None


def exit_code(process: asyncssh.SSHClientProcess[bytes]) -> int:
    """The exit status; a shell's 128+N for a process ended by signal N."""
    if process.exit_status is not None and process.exit_status >= 0:
        return int(process.exit_status)
    signals = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "SEGV": 11, "PIPE": 13, "TERM": 15}
    signal_name = (process.exit_signal or ("", False, "", ""))[0]
    return 128 + signals.get(signal_name, 0)


async def capped(stream: asyncssh.SSHReader[bytes], line: str) -> bytes:
    data = bytearray()
    while chunk := await stream.read(READ_SIZE):
        data += chunk
        if len(data) > MAX_OUTPUT:
            raise RemoteError(f"{line.split()[0]}: more than {MAX_OUTPUT} bytes of output")
    return bytes(data)


class Machines(Mapping[str, Machine]):
    """The configured machines of one process, by name."""

    def __init__(self, settings: Mapping[str, MachineSettings]) -> None:
        self._machines = {name: Machine(name, s) for name, s in settings.items()}

    def __getitem__(self, name: str) -> Machine:
        return self._machines[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._machines)

    def __len__(self) -> int:
        return len(self._machines)

    async def close(self) -> None:
        await asyncio.gather(*(machine.close() for machine in self._machines.values()))
