"""Shared fixtures.  Real-data tests read ``$IDSBENCH_DATA_DIR`` (CI points it at
``../shared/datasets``); without it they fall back to that path beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path | None:
    env = os.environ.get("IDSBENCH_DATA_DIR")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "datasets"]
    for c in candidates:
        if (c / "ton-iot").is_dir() or (c / "unsw-nb15").is_dir():
            return c
    return None


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """A cache for the whole session unless the caller chose one (CI gives a fresh one)."""
    if not os.environ.get("IDSBENCH_CACHE_DIR"):
        os.environ["IDSBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("idsbench-cache"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    yield


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    d = _real_data_dir()
    if d is None and os.environ.get("CI"):
        pytest.fail("CI must provide the real datasets: set IDSBENCH_DATA_DIR")
    if d is None:
        pytest.skip("real datasets not found: set IDSBENCH_DATA_DIR to the folder holding "
                    "unsw-nb15/ and ton-iot/")
    return d


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh, empty cache for tests that count reads or check invalidation."""
    monkeypatch.setenv("IDSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
