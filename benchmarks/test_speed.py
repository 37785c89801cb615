"""pytest-benchmark suite: the data and inference paths that ``idsbench bench`` measures.

Not part of the test run (``testpaths`` is ``tests``).  Run and compare over time with::

    python -m pytest benchmarks/ --benchmark-autosave          # stores .benchmarks/...
    python -m pytest benchmarks/ --benchmark-compare           # against the last saved run

The data is a synthetic ToN_IoT-shaped file of 50,000 rows (``tests/synth.py``), so the suite
runs anywhere; ``idsbench bench`` is the one to use for figures on the real files.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import pytest

from idsbench.data import io as dio
from idsbench.data.manifest import get_manifest
from idsbench.models.registry import create_model
from tests.synth import toniot_frame, write_csv

ROWS = 50_000


@pytest.fixture(scope="module")
def toniot_file(tmp_path_factory):
    return write_csv(toniot_frame(ROWS, seed=0),
                     tmp_path_factory.mktemp("data") / "train_test_network.csv.gz")


@pytest.fixture
def empty_cache(monkeypatch):
    """A cache folder emptied before each round (setup, untimed)."""
    path = tempfile.mkdtemp(prefix="idsbench-benchmarks-")
    monkeypatch.setenv(dio.ENV_CACHE_DIR, path)

    def reset():
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)

    yield reset
    shutil.rmtree(path, ignore_errors=True)


def test_read_csv_reference(benchmark, toniot_file):
    benchmark(pd.read_csv, toniot_file)


def test_first_load(benchmark, toniot_file, empty_cache):
    m = get_manifest("toniot")
    benchmark.pedantic(dio.load_table, args=(toniot_file, m), setup=empty_cache, rounds=5)


def test_second_load(benchmark, toniot_file, empty_cache):
    m = get_manifest("toniot")
    dio.load_table(toniot_file, m)
    benchmark(dio.load_table, toniot_file, m)


@pytest.mark.parametrize("batch", [1, 256, 8192])
@pytest.mark.parametrize("name", ["cnn", "lstm", "stump"])
def test_predict_proba(benchmark, name, batch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096, 64)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    kwargs = {"epochs": 1, "device": "cpu"} if name != "stump" else {}
    model = create_model(name, random_state=0, **kwargs).fit(X, y)
    batch_rows = X[np.arange(batch) % len(X)]
    benchmark(model.predict_proba, batch_rows)
