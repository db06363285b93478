"""A user's command on a machine, run to its end, or ended there when the task stops.

sshd starts each command in a session of its own, so the remote shell is the leader of a
process group holding everything the command starts. The shell first prints its PID; a
cancel or timeout then signals the whole group from a second channel (TERM, then KILL), so
closing our channel is never the only thing that stops the remote work.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from taskd.remote import RemoteError
from taskd.remote.machines import DROPPED, Machine, exit_code

log = logging.getLogger(__name__)
TAIL = 65536  # bytes of each stream kept for the result: the end, where errors are
KILL_AFTER = 2.0  # seconds between TERM and KILL


@dataclass(frozen=True)
class Finished:
    exit_status: int
    stdout_tail: bytes
    stderr_tail: bytes
    truncated: bool


class Tail:
    """Writes a stream to a file and keeps its last TAIL bytes."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.kept = bytearray()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.size += len(chunk)
        self.kept += chunk
        if len(self.kept) > 2 * TAIL:
            del self.kept[:-TAIL]

    @property
    def tail(self) -> bytes:
        return bytes(self.kept[-TAIL:])

    def close(self) -> None:
        self.file.close()


def shell_line(command: str | Sequence[str], cwd: str | None) -> str:
    """Print the group's PID, go to `cwd`, run the command (argv quoted, or a shell string)."""
    body = command if isinstance(command, str) else shlex.join(command)
    where = f"mkdir -p {shlex.quote(cwd)} && cd {shlex.quote(cwd)} && " if cwd else ""
    # `exec </dev/null` keeps the command from waiting on an stdin nobody writes.
    return f"echo $$; exec </dev/null; {where}{body}"


async def run_command(
    machine: Machine,
    command: str | Sequence[str],
    stdout: Path,
    stderr: Path,
    cwd: str | None = None,
) -> Finished:
    """Run to the end, streaming both outputs to files; on cancellation end the remote group."""
    out, err = Tail(stdout), Tail(stderr)
    try:
        async with machine.channel() as connection:
            machine.commands += 1
            process = await connection.create_process(
                shell_line(command, cwd), encoding=None, stdin=asyncssh.DEVNULL
            )
            first_line = asyncio.ensure_future(process.stdout.readline())
            try:
                await asyncio.shield(first_line)
                await asyncio.gather(copy(process.stdout, out), copy(process.stderr, err))
                await process.wait_closed()
            except BaseException:
                # Stopped: end what runs there (its PID may still be on its way).
                await asyncio.shield(end_group(machine, first_line))
                raise
            finally:
                process.close()
            status = exit_code(process)
    finally:
        out.close()
        err.close()
    truncated = out.size > TAIL or err.size > TAIL
    return Finished(status, out.tail, err.tail, truncated)


async def copy(stream: asyncssh.SSHReader[bytes], into: Tail) -> None:
    while chunk := await stream.read(65536):
        into.write(chunk)


async def end_group(machine: Machine, first_line: asyncio.Future[bytes]) -> None:
    """TERM the command's process group, KILL what is left after KILL_AFTER seconds."""
    try:
        async with asyncio.timeout(machine.settings.command_timeout):
            pid = int(await first_line)
    except (TimeoutError, ValueError, asyncssh.Error, *DROPPED):
        log.warning("machine %s: the command's PID never came; it may still run", machine.name)
        return
    # Zombies (ended, not reaped yet) count as gone.
    alive = f"ps -o stat= -g {pid} | grep -q '^[^Z]'"
    line = (
        f"kill -TERM -- -{pid} 2>/dev/null || exit 0; "
        f"for i in 1 2 3 4 5 6 7 8 9 10; do {alive} || exit 0; sleep {KILL_AFTER / 10:g}; done; "
        f"kill -KILL -- -{pid} 2>/dev/null; exit 0"
    )
    try:
        await machine.execute(line, timeout=KILL_AFTER + 10)
        log.info("machine %s: ended remote process group %d", machine.name, pid)
    except (RemoteError, *DROPPED) as exc:
        log.warning("machine %s: could not end process group %d: %s", machine.name, pid, exc)
