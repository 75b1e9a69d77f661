"""Where the tests keep the wheels they download (the pinned transformers wheel, setuptools)."""

from __future__ import annotations

from pekit.core import location

WHEEL_CACHE = location.kit_root() / ".cache" / "wheels"
