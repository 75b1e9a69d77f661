"""Skipping a test for what the environment lacks, or failing where it must not lack it."""

from __future__ import annotations

import os

import pytest


def no_mmf(reason):
    """Skip a test that needs MMF, saying why; fail instead where PEKIT_REQUIRE_MMF is set (CI,
    where every MMF test must run)."""
    if os.environ.get("PEKIT_REQUIRE_MMF"):
        pytest.fail(f"{reason} (PEKIT_REQUIRE_MMF is set: every MMF test must run)")
    pytest.skip(reason)
