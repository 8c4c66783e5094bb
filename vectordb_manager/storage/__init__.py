"""Storage back ends: one small protocol, a local directory implementation (and S3 later)."""

from vectordb_manager.storage.base import ObjectInfo, ObjectNotFound, Storage
from vectordb_manager.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "ObjectNotFound", "Storage"]
