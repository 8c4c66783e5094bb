"""Storage back ends: one small protocol, a local directory and an S3 bucket.

`S3Storage` lives in `vectordb_manager.storage.s3` and needs the ``s3`` extra (boto3).
"""

from vectordb_manager.storage.base import ObjectInfo, ObjectNotFound, Storage
from vectordb_manager.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "ObjectNotFound", "Storage"]
