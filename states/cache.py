"""Memoising what depends only on the catalogue, so a wide catalogue costs once, not per turn.

A catalogue is built once when the warehouse opens and not changed afterwards; values are kept
per catalogue object (by identity, holding a reference so the id cannot be reused).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from states.ports import Catalog

T = TypeVar("T")
_KEEP = 8  # catalogues remembered at once: a process has one or two; tests build more


def per_catalog(build: Callable[[Catalog], T]) -> Callable[[Catalog], T]:
    """`build(catalog)`, computed once per catalogue object."""
    cache: dict[int, tuple[Catalog, Any]] = {}
    lock = threading.Lock()

    @functools.wraps(build)
    def get(catalog: Catalog) -> T:
        hit = cache.get(id(catalog))
        if hit is not None and hit[0] is catalog:
            return hit[1]
        value = build(catalog)
        with lock:
            if len(cache) >= _KEEP:
                cache.clear()
            cache[id(catalog)] = (catalog, value)
        return value

    return get
