"""Where image files live. `Storage` is the seam; `LocalStorage` is the default backend."""

from tailorset.storage.base import Storage
from tailorset.storage.local import LocalStorage

__all__ = ["Storage", "LocalStorage"]
