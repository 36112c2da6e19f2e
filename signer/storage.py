"""Blob storage behind one interface: folders on local paths and S3 buckets.

A `BlobStore` maps keys to bytes. Keys are relative, slash-separated paths
made of letters, digits, `.`, `_` and `-`, so that the same key names an
object in every backend and never escapes a folder. The methods are async;
the folder and boto3 backends run their blocking calls in a worker thread.

Durability of the folder backend: `put` writes a temporary file in the
target folder, fsyncs it, renames it over the key's path and fsyncs the
folder. A crash before the rename leaves the previous object (or none)
and a stray `.tmp-*` file that `list` skips. A crash after the rename
leaves the new object in full.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

_KEY_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_TEMP_PREFIX = ".tmp-"


class StorageError(Exception):
    """A blob store could not complete an operation."""


class BlobNotFoundError(StorageError, KeyError):
    """The store contains no object under the requested key."""

    def __init__(self, location: str, key: str) -> None:
        super().__init__(f"no object {key!r} in {location}")
        self.location = location
        self.key = key

    def __str__(self) -> str:
        return str(self.args[0])


class BlobStore(Protocol):
    """Stores bytes under keys at one location."""

    @property
    def location(self) -> str:
        """A URL naming where the objects live, recorded in the log."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store data under key, replacing any object there."""
        ...

    async def get(self, key: str) -> bytes:
        """Return the bytes under key; raise BlobNotFoundError if absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object under key; an absent key is not an error."""
        ...

    async def list(self, prefix: str = "") -> list[str]:
        """Return the sorted keys that start with prefix."""
        ...


def check_key(key: str) -> str:
    """Return key unchanged if it is a valid relative object key.

    Raise ValueError for an empty key, an absolute path, `.` or `..` parts,
    or characters outside letters, digits, `.`, `_`, `-` and `/`.
    """
    parts = key.split("/")
    if not key or not all(_KEY_PART.fullmatch(part) for part in parts):
        raise ValueError(
            f"invalid object key {key!r}: use slash-separated parts of letters, "
            "digits, '.', '_' and '-', none starting with '.' or '-'"
        )
    return key


class FolderBlobStore:
    """Stores each object as a file under a root folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as error:
            raise BlobNotFoundError(self.location, key) from error
        except OSError as error:
            raise StorageError(
                f"could not read {key!r} in {self.location}: {error}"
            ) from error

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            pass

    async def list(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._list, prefix)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _list(self, prefix: str) -> list[str]:
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(_TEMP_PREFIX):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


class S3BlobStore:
    """Stores objects in one bucket of an S3-compatible service through boto3.

    `client` is a boto3 S3 client; its endpoint, credentials, timeouts and
    retry policy are the caller's choice. `prefix` (no leading or trailing
    slash) puts every key of this store under one folder of the bucket.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = check_key(prefix) + "/" if prefix else ""

    @property
    def location(self) -> str:
        endpoint = self.client.meta.endpoint_url
        return f"s3://{self.bucket}/{self.prefix}?endpoint={endpoint}"

    async def put(self, key: str, data: bytes) -> None:
        name = self.prefix + check_key(key)
        await self._call(
            "put", key, self.client.put_object, Bucket=self.bucket, Key=name, Body=data
        )

    async def get(self, key: str) -> bytes:
        name = self.prefix + check_key(key)
        return await asyncio.to_thread(self._get, key, name)

    async def delete(self, key: str) -> None:
        name = self.prefix + check_key(key)
        await self._call(
            "delete", key, self.client.delete_object, Bucket=self.bucket, Key=name
        )

    async def list(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._list, prefix)

    async def _call(self, verb: str, key: str, function: Any, **arguments: Any) -> Any:
        import botocore.exceptions

        try:
            return await asyncio.to_thread(function, **arguments)
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        ) as error:
            raise StorageError(
                f"could not {verb} {key!r} in {self.location}: {error}"
            ) from error

    def _get(self, key: str, name: str) -> bytes:
        import botocore.exceptions

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
            return response["Body"].read()
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFoundError(self.location, key) from error
            raise StorageError(
                f"could not get {key!r} in {self.location}: {error}"
            ) from error
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(
                f"could not get {key!r} in {self.location}: {error}"
            ) from error

    def _list(self, prefix: str) -> list[str]:
        import botocore.exceptions

        paginator = self.client.get_paginator("list_objects_v2")
        keys = []
        try:
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            ):
                for item in page.get("Contents", []):
                    keys.append(item["Key"][len(self.prefix) :])
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        ) as error:
            raise StorageError(
                f"could not list {prefix!r} in {self.location}: {error}"
            ) from error
        return sorted(keys)
