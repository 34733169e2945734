"""Object storage on any S3 API (MinIO, AWS S3, moto) through the `minio` client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from transmute.core.errors import StorageError
from transmute.settings import StorageConfig
from transmute.storage.base import CHUNK_SIZE, ObjectStorage, check_key

_MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


def secure(config: StorageConfig) -> bool:
    """HTTPS or not: the endpoint's scheme when it has one (http:// off, https:// on), else TRANSMUTE_S3_SECURE."""
    if config.s3_endpoint.startswith(("http://", "https://")):
        return config.s3_endpoint.startswith("https://")
    return config.s3_secure


class S3Storage(ObjectStorage):
    """Objects in one bucket, created at start when missing."""

    def __init__(self, config: StorageConfig, *, create_bucket: bool = True, retries: int = 3) -> None:
        """`retries`: attempts again after a connection error or a 5xx (0 for a check that should answer fast)."""
        endpoint = config.s3_endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
        # Retries on connection errors are urllib3's; a longer outage surfaces as StorageError and the
        # worker's message is retried with back-off.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            maxsize=16,
            retries=urllib3.Retry(total=retries, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)),
        )
        self.bucket = config.s3_bucket
        self.client = Minio(
            endpoint,
            access_key=config.s3_access_key or None,
            secret_key=config.s3_secret_key or None,
            secure=secure(config),
            region=config.s3_region or None,
            http_client=http,
        )
        if create_bucket:
            self.ensure_bucket()

    def ensure_bucket(self) -> None:
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageError(f"Could not create the bucket {self.bucket!r}: {exc.message}.") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"The object storage is unreachable: {exc}.") from exc

    def put_fileobj(
        self, key: str, fileobj: BinaryIO, size: int, content_type: str = "application/octet-stream"
    ) -> int:
        try:
            self.client.put_object(self.bucket, check_key(key), fileobj, size, content_type=content_type,
                                   part_size=16 * 1024 * 1024)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"Could not store {key!r} in the object storage: {exc}.") from exc
        return size

    def get_file(self, key: str, path: Path) -> int:
        try:
            self.client.fget_object(self.bucket, check_key(key), str(path))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise StorageError(f"The stored object {key!r} is missing.") from exc
            raise StorageError(f"Could not read {key!r} from the object storage: {exc.message}.") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"Could not read {key!r} from the object storage: {exc}.") from exc
        return path.stat().st_size

    def size(self, key: str) -> int | None:
        try:
            return self.client.stat_object(self.bucket, check_key(key)).size
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise StorageError(f"Could not look up {key!r} in the object storage: {exc.message}.") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"The object storage is unreachable: {exc}.") from exc

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            response = self.client.get_object(self.bucket, check_key(key))
        except S3Error as exc:
            raise StorageError(f"Could not read {key!r} from the object storage: {exc.message}.") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"The object storage is unreachable: {exc}.") from exc
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, check_key(key))
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"Could not delete {key!r} from the object storage: {exc}.") from exc

    def list_keys(self, prefix: str) -> list[str]:
        try:
            return sorted(
                item.object_name
                for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if item.object_name
            )
        except S3Error as exc:
            raise StorageError(f"Could not list {prefix!r} in the object storage: {exc.message}.") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"The object storage is unreachable: {exc}.") from exc

    def check(self) -> None:
        try:
            self.client.bucket_exists(self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"The object storage is unreachable: {exc}.") from exc

