"""S3 storage through aiobotocore: files uploaded with their type, fetched by presigned GET."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from taskd.settings import StorageSettings
from taskd.storage import CHUNK, StorageError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


class S3Storage:
    def __init__(self, client: S3Client, bucket: str, url_ttl: int) -> None:
        self.client = client
        self.bucket = bucket
        self.url_ttl = url_ttl

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: StorageSettings) -> AsyncIterator[S3Storage]:
        """The storage on its own client, the bucket created if it does not exist."""
        async with open_client(settings) as client:
            storage = cls(client, settings.bucket, settings.url_ttl)
            try:
                await storage.ensure_bucket(settings.region)
            except (ClientError, BotoCoreError) as exc:
                where = settings.endpoint_url or "AWS"
                raise StorageError(
                    f"storage: cannot use bucket {settings.bucket!r} at {where}: {exc}"
                ) from None
            yield storage

    async def ensure_bucket(self, region: str) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket"):
                raise
        try:
            if region and region != "us-east-1":
                await self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                await self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            # Another process (a worker, a second front end) created it first.
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def put(self, key: str, name: str, data: bytes | Path, content_type: str) -> None:
        object_key = f"{key}/{name}"
        if isinstance(data, bytes):
            await self.client.put_object(
                Bucket=self.bucket, Key=object_key, Body=data, ContentType=content_type
            )
            return
        with data.open("rb") as body:  # streamed, never read whole into memory
            await self.client.put_object(
                Bucket=self.bucket, Key=object_key, Body=body, ContentType=content_type
            )

    async def read(self, key: str, name: str) -> AsyncIterator[bytes]:
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=f"{key}/{name}")
        except ClientError as exc:
            raise StorageError(f"file {name!r} of task {key}: {error_code(exc)}") from None
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                yield chunk

    async def url(self, key: str, name: str, base: str) -> str:
        return await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": f"{key}/{name}"},
            ExpiresIn=self.url_ttl,
        )

    async def check(self) -> bool:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False
        return True

    async def delete(self, key: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{key}/"):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", []) if "Key" in o]
            if objects:
                await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})  # type: ignore[typeddict-item]


@contextlib.asynccontextmanager
async def open_client(settings: StorageSettings) -> AsyncIterator[S3Client]:
    # SigV4 always (presigned URLs would be SigV2 otherwise); path-style for custom endpoints.
    config = AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
    )
    secret = settings.secret_access_key.get_secret_value()
    async with get_session().create_client(
        "s3",
        endpoint_url=settings.endpoint_url or None,
        region_name=settings.region or None,
        aws_access_key_id=settings.access_key_id or None,
        aws_secret_access_key=secret or None,
        config=config,
    ) as client:
        yield client


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
