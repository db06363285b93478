"""Files in and out of a machine over SFTP, streamed in chunks, never whole in memory.

A file is written under a temporary name beside its target and renamed into place, so the
target is either absent or complete, and a re-run of the same task writes it again safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import secrets
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncssh

from taskd.remote import RemoteError
from taskd.remote.machines import Machine

CHUNK = 1 << 18


def sftp_error(machine: Machine, path: str, exc: asyncssh.SFTPError) -> RemoteError:
    return RemoteError(f"machine {machine.name}: {path}: {exc.reason}")


async def put_stream(machine: Machine, chunks: AsyncIterator[bytes], path: str) -> dict[str, Any]:
    """Write `chunks` to `path` (parents created); {"path", "size", "md5"} of what landed."""
    target = machine.path(path)
    temp = posixpath.join(
        posixpath.dirname(target), f".{posixpath.basename(target)}.taskd-{secrets.token_hex(4)}"
    )
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    async with machine.sftp() as sftp:
        try:
            await sftp.makedirs(posixpath.dirname(target) or ".", exist_ok=True)
            async with sftp.open(temp, "wb") as out:
                async for chunk in chunks:
                    await out.write(chunk)
                    md5.update(chunk)
                    size += len(chunk)
            await sftp.posix_rename(temp, target)
        except asyncssh.SFTPError as exc:
            await remove_quietly(sftp, temp)
            raise sftp_error(machine, target, exc) from None
        except BaseException:
            await remove_quietly(sftp, temp)
            raise
    return {"path": target, "size": size, "md5": md5.hexdigest()}


async def put_bytes(machine: Machine, data: bytes, path: str) -> dict[str, Any]:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return await put_stream(machine, chunks(), path)


async def remove_quietly(sftp: asyncssh.SFTPClient, path: str) -> None:
    with contextlib.suppress(asyncssh.Error, OSError):
        await sftp.remove(path)


async def get_file(machine: Machine, path: str, local: Path) -> int:
    """Copy the remote file `path` to `local`; its size. A missing file is a RemoteError."""
    source = machine.path(path)
    size = 0
    async with machine.sftp() as sftp:
        try:
            if not await sftp.isfile(source):
                raise RemoteError(f"machine {machine.name}: {source}: no such file")
            with local.open("wb") as out:
                async with sftp.open(source, "rb") as remote:
                    while chunk := await remote.read(CHUNK):
                        out.write(cast(bytes, chunk))  # binary mode: bytes
                        size += len(chunk)
        except asyncssh.SFTPError as exc:
            raise sftp_error(machine, source, exc) from None
    return size


async def get_if_exists(machine: Machine, path: str, local: Path) -> bool:
    """Like get_file, but a missing file leaves `local` empty and answers False."""
    try:
        await get_file(machine, path, local)
    except RemoteError:
        await asyncio.to_thread(local.write_bytes, b"")
        return False
    return True


async def list_dir(machine: Machine, path: str) -> list[dict[str, Any]]:
    """The entries of a directory (or the one entry of a file), sorted by name."""
    target = machine.path(path)
    async with machine.sftp() as sftp:
        try:
            attrs = await sftp.lstat(target)
            is_dir = attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)
            if is_dir:
                names = [n for n in await sftp.readdir(target) if n.filename not in (".", "..")]
            else:
                # A stat carries no `ls -l` line: owners are then given by number.
                names = [asyncssh.SFTPName(posixpath.basename(target), "", attrs)]
            entries = []
            for name in names:
                full = posixpath.join(target, str(name.filename)) if is_dir else target
                link = None
                permissions = name.attrs.permissions or 0
                if stat.S_ISLNK(permissions):
                    try:
                        link = str(await sftp.readlink(full))
                    except asyncssh.SFTPError:
                        link = None
                entries.append(entry(name, link))
        except asyncssh.SFTPError as exc:
            raise sftp_error(machine, target, exc) from None
    return sorted(entries, key=lambda e: e["name"])


def entry(name: asyncssh.SFTPName, link: str | None) -> dict[str, Any]:
    attrs = name.attrs
    mode = attrs.permissions or 0
    # OpenSSH's readdir gives `ls -l` lines: the owners' names are their 3rd and 4th fields.
    fields = str(name.longname or "").split()
    user = fields[2] if len(fields) > 3 else str(attrs.uid)
    group = fields[3] if len(fields) > 3 else str(attrs.gid)
    modified = datetime.fromtimestamp(attrs.mtime or 0, UTC).isoformat()
    return {
        "name": str(name.filename),
        "type": kind(mode),
        "size": attrs.size or 0,
        "permissions": stat.filemode(mode)[1:],
        "user": user,
        "group": group,
        "last_modified": modified,
        "link_target": link,
    }


def kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"
