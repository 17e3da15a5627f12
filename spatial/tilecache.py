"""In-process tile cache: an LRU of MVT bytes bounded in bytes, and the layers' change versions.

A cached tile is keyed by ``(layer table, layer version, tile matrix set, z, x, y)``. A change to a
layer's table bumps its version (statement trigger of migration 0003), so stale tiles are never
looked up again and age out of the LRU. Versions are known without a query on the hot path: they
are reloaded when older than a TTL, raised by every tile rendered (its statement reads the
version too) and pushed immediately by ``LISTEN city_layer_versions``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

TileKey = tuple[str, int, str, int, int, int]
ENTRY_OVERHEAD = 120
"""Approximate bytes of bookkeeping per entry (key tuple, dict slot), counted in the budget."""

NOTIFY_CHANNEL = "city_layer_versions"


class TileCache:
    """LRU of tile bytes with a total size budget; empty tiles are cached too."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[TileKey, bytes] = OrderedDict()

    def get(self, key: TileKey) -> bytes | None:
        """The cached tile, refreshed as most recently used, or ``None``."""
        data = self._entries.get(key)
        if data is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return data

    def put(self, key: TileKey, data: bytes) -> None:
        """Store a tile, evicting least recently used ones; tiles over 1/4 of the budget skip."""
        cost = len(data) + ENTRY_OVERHEAD
        if cost * 4 > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old) + ENTRY_OVERHEAD
        self._entries[key] = data
        self.size += cost
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        """Number of cached tiles."""
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        """Counters for monitoring and tests."""
        return {
            "tiles": len(self._entries),
            "bytes": self.size,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
        }


class LayerVersions:
    """The last known version of each layer table; versions only ever go up."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._versions: dict[str, int] = {}
        self._loaded_at = float("-inf")

    @property
    def stale(self) -> bool:
        """True when the versions should be reloaded from the database."""
        return time.monotonic() - self._loaded_at > self.ttl_s

    def load(self, rows: Iterable[tuple[str, int]]) -> None:
        """Merge a full read of ``city.layer_versions``."""
        for layer, version in rows:
            self.observe(layer, version)
        self._loaded_at = time.monotonic()

    def observe(self, layer: str, version: int | None) -> None:
        """Raise a layer's version (from a tile statement or a notification)."""
        if version is not None and version > self._versions.get(layer, -1):
            self._versions[layer] = version

    def notify(self, payload: str) -> None:
        """Apply a ``layer:version`` notification payload; malformed payloads are ignored."""
        layer, _, version = payload.rpartition(":")
        if layer and version.isdigit():
            self.observe(layer, int(version))

    def expire(self) -> None:
        """Force a reload on the next read (e.g. after the listener reconnects)."""
        self._loaded_at = float("-inf")

    def get(self, layer: str) -> int | None:
        """The known version, ``None`` for a layer without change tracking."""
        return self._versions.get(layer)
