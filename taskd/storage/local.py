"""Local storage: files under `storage.path`, served by taskd at signed `/v1/files/` URLs."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio import Redis

from taskd.signing import EXPIRES, sign_url
from taskd.storage import CHUNK, StorageError


class LocalStorage:
    def __init__(self, root: Path, url_ttl: int, redis: Redis, url_key: str) -> None:
        self.root = root
        self.url_ttl = url_ttl
        self.redis = redis
        # Shared by every front end through Redis: any of them checks a URL another signed.
        self.url_key_name = url_key
        self._url_key: bytes | None = None

    def path(self, key: str, name: str) -> Path:
        # A fixed suffix: no stored file is ever the ".gz"/".br" sibling of another, which a
        # file server might pick as a pre-compressed variant.
        return self.root / key / f"{name}.file"

    def content_type_path(self, key: str, name: str) -> Path:
        # Names never start with ".", so the sidecar cannot collide with a file.
        return self.root / key / f".{name}.content-type"

    async def put(self, key: str, name: str, data: bytes | Path, content_type: str) -> None:
        await asyncio.to_thread(self._put, key, name, data, content_type)

    def _put(self, key: str, name: str, data: bytes | Path, content_type: str) -> None:
        directory = self.root / key
        directory.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed into place: a reader never sees half a file.
        for target, body in (
            (self.content_type_path(key, name), content_type.encode()),
            (self.path(key, name), data),
        ):
            fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                if isinstance(body, Path):
                    with body.open("rb") as source:
                        shutil.copyfileobj(source, out)
                else:
                    out.write(body)
            os.replace(temp, target)

    async def read(self, key: str, name: str) -> AsyncIterator[bytes]:
        try:
            source = await asyncio.to_thread(self.path(key, name).open, "rb")
        except OSError as exc:
            raise StorageError(f"file {name!r} of task {key}: {exc.strerror}") from None
        try:
            while chunk := await asyncio.to_thread(source.read, CHUNK):
                yield chunk
        finally:
            source.close()

    async def url(self, key: str, name: str, base: str) -> str:
        expires = str(int(time.time()) + self.url_ttl)
        # Signed over the path taskd serves, whatever prefix a proxy adds in front of it.
        path = sign_url(f"/v1/files/{key}/{name}", await self.url_key(), [(EXPIRES, expires)])
        return base + path

    async def check(self) -> bool:
        def writable() -> bool:
            self.root.mkdir(parents=True, exist_ok=True)
            return os.access(self.root, os.W_OK | os.X_OK)

        try:
            return await asyncio.to_thread(writable)
        except OSError:
            return False

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / key, True)

    def stored(self, key: str, name: str) -> tuple[Path, str] | None:
        """The file and its content type, if it exists (blocking: call it in a thread)."""
        path = self.path(key, name)
        try:
            content_type = self.content_type_path(key, name).read_text()
        except OSError:
            return None
        return (path, content_type) if path.is_file() else None

    async def url_key(self) -> bytes:
        """The key of file URLs: made once, by whichever process asks first."""
        if self._url_key is None:
            await self.redis.set(self.url_key_name, secrets.token_bytes(32), nx=True)
            self._url_key = await self.redis.get(self.url_key_name)
            assert self._url_key is not None
        return self._url_key
