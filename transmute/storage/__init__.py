"""Object storage for sources and results: a local folder (embedded) or any S3 API through `minio`,
chosen once at start by `create_storage`."""

from __future__ import annotations

from transmute.settings import StorageConfig
from transmute.storage.base import ObjectStorage
from transmute.storage.filesystem import FilesystemStorage


def create_storage(config: StorageConfig) -> ObjectStorage:
    """The storage the configuration names: S3 when an endpoint is set, else a folder under data_dir."""
    if config.s3_endpoint:
        from transmute.storage.s3 import S3Storage  # minio is only needed when S3 is used

        return S3Storage(config)
    return FilesystemStorage(config.data_dir / "objects")
