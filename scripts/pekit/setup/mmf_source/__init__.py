"""MMF at the pinned commit: the per-user cache, `MMF_SRC`, fetching and installing.

    checkout.py   where MMF is looked for, fetching it (a clone or a bundle, verified), installing

MMF is not on PyPI at the pinned commit, so the kit clones it. Where MMF is looked for, in order:
an importable `mmf` (installed), the checkout named by `MMF_SRC`, the kit's cache.
"""

from .checkout import (
    cache_dir,
    cached_checkout,
    fetch,
    find_checkout,
    install,
    locate,
    verify_checkout,
)

__all__ = [
    "cache_dir",
    "cached_checkout",
    "fetch",
    "find_checkout",
    "install",
    "locate",
    "verify_checkout",
]
