"""``idsbench bench`` (issue 8): the quick benchmark's JSON, FLOP counting, cache invalidation.

No test here asserts a time: the figures depend on the machine and its load.  The tests check
that every figure is produced, is a finite positive number where it is a ratio or a rate,
and that the caches the benchmark measures are invalidated when they must be.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from idsbench.bench import BenchConfig, e2e_command, flops_per_flow
from idsbench.cli import cli
from idsbench.data import DataConfig, prepare
from idsbench.data import io as dio
from idsbench.data.manifest import get_manifest
from idsbench.errors import ConfigError
from tests.synth import toniot_frame, write_csv

TONIOT_NAME = "train_test_network.csv"


@pytest.fixture
def synthetic_toniot(tmp_path):
    """A data folder holding a small ToN_IoT-shaped file (used by name: its checksum differs)."""
    root = tmp_path / "data"
    write_csv(toniot_frame(3000, seed=4), root / "ton-iot" / TONIOT_NAME)
    return root


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_quick_bench_writes_every_figure(synthetic_toniot, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, [
        "bench", "--quick", "--dataset", "toniot", "--data-dir", str(synthetic_toniot),
        "--allow-checksum-mismatch", "--models", "stump,lstm", "--device", "cpu",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Targets" in result.output and "loop/bare" in result.output

    doc = json.loads(out.read_text())
    assert doc["bench_version"] == 1 and doc["models"] == ["stump", "lstm"]
    env = doc["environment"]
    assert env["torch_threads"] >= 1 and "torch" in env["packages"] and "git" in env

    # data: every step timed from an empty cache and again warm; the three ratios
    data = doc["data"]
    assert set(data["seconds"]) == {"read_csv", "first_load", "first_load_until_cached",
                                    "second_load_table", "first_prepare", "second_prepare"}
    seconds = data["seconds"]
    for first, until_cached in zip(seconds["first_load"]["samples"],
                                   seconds["first_load_until_cached"]["samples"]):
        assert until_cached >= first  # the same loads, timed to a later point
    for fig in data["seconds"].values():
        assert fig["n"] == len(fig["samples"]) >= 1 and all(_positive(s) for s in fig["samples"])
    assert all(_positive(v) for v in data["ratios"].values())
    assert data["rows"]["features"] > 0 and data["rows"]["train"] > 0

    # training loop: networks only, each against its bare loop
    train = doc["training"]
    assert set(train["models"]) == {"lstm"} and not train["failed"]
    for fig in train["models"].values():
        assert fig["batch_size"] == 512 and fig["steps"] == 3
        assert all(_positive(fig[k]) for k in ("loop_samples_per_second",
                                               "bare_samples_per_second", "loop_vs_bare"))

    # inference: every model at every batch size; FLOPs and the share of the peak for networks
    inf = doc["inference"]
    assert _positive(inf["matmul_peak"]["flops_per_second"]) and not inf["failed"]
    assert set(inf["models"]) == {"stump", "lstm"}
    for name, fig in inf["models"].items():
        assert set(fig["batch_sizes"]) == {"1", "256", "8192"}
        for entry in fig["batch_sizes"].values():
            assert _positive(entry["flows_per_second"])
            if fig["kind"] == "torch":
                assert _positive(entry["fraction_of_matmul_peak"])
        assert (fig.get("flops_per_flow") is not None) == (name != "stump")

    targets = {t["target"]: t for t in doc["targets"]}
    assert {"first load / read_csv", "first / second load (prepare)",
            "lstm: loop / bare loop"} <= set(targets)
    assert all(isinstance(t["met"], bool) and _positive(t["value"]) for t in targets.values())


def test_lstm_flops_include_the_recurrent_layer():
    # the fused CPU LSTM kernel has no formula in FlopCounterMode; ours must count it exactly
    from idsbench.models.simple_nets import _LSTMNet

    net = _LSTMNet(n_features=10, n_classes=2, steps=4, hidden=8)  # chunks of 3 values
    lstm = 2 * 4 * (4 * 8 * 3 + 4 * 8 * 8)  # input and recurrent products, 4 steps
    head = 2 * 8 * 2
    assert flops_per_flow(net, 10, batch=16) == lstm + head


def test_bad_settings_name_the_option():
    with pytest.raises(ConfigError, match="--stages: unknown stage"):
        BenchConfig(stages=("data", "training")).resolved()
    with pytest.raises(ConfigError, match="train_steps must be a positive integer, got 0"):
        BenchConfig(train_steps=0).resolved()
    result = CliRunner().invoke(cli, ["bench", "--models", "nosuchmodel"])
    assert result.exit_code == 2 and "unknown model 'nosuchmodel'" in result.output


def test_e2e_times_the_default_run_of_all_models(tmp_path):
    cmd = e2e_command(BenchConfig(dataset="toniot", data_dir="/data").resolved(), tmp_path)
    text = " ".join(cmd[1:])
    assert text.startswith("-m idsbench.cli -q run --models all --dataset toniot")
    assert "--task binary --seeds 0 --profile default" in text
    assert f"--out {tmp_path}" in text and "--data-dir /data" in text


def test_e2e_reports_time_status_and_each_job(synthetic_toniot, monkeypatch):
    # the real command takes many minutes; a one-model run exercises the same reporting
    import sys

    from idsbench import bench

    def small_run(cfg, out_dir):
        return [sys.executable, "-m", "idsbench.cli", "-q", "run", "--models", "stump",
                "--dataset", "toniot", "--data-dir", cfg.data_dir, "--allow-checksum-mismatch",
                "--max-train-rows", "1000", "--out", str(out_dir), "--no-progress"]

    monkeypatch.setattr(bench, "e2e_command", small_run)
    fig = bench.bench_e2e(BenchConfig(data_dir=str(synthetic_toniot)).resolved())
    assert fig["exit_status"] == 0, fig["stderr_tail"]
    assert _positive(fig["seconds"]) and fig["jobs"]["stump"]["status"] == "ok"
    assert 0 < fig["jobs"]["stump"]["accuracy"] <= 1 and 0 < fig["jobs"]["stump"]["f1_macro"] <= 1
    text = bench.render_tables({"e2e": fig})
    assert "stump" in text and f"{fig['jobs']['stump']['accuracy']:.4f}" in text
    targets = bench.evaluate_targets({"e2e": fig})
    assert targets[0]["target"].startswith("idsbench run") and targets[0]["limit"] == 1200


# ---------------------------------------------------------------------- cache invalidation


def test_table_cache_follows_the_file_content(tmp_path, isolated_cache):
    m = get_manifest("toniot")
    path = write_csv(toniot_frame(300, seed=1), tmp_path / TONIOT_NAME)
    def entries() -> int:
        dio.wait_for_cache_writes()  # entries are written in a thread
        return len(list((isolated_cache / "tables").glob("*.arrow")))

    first, _, sha1 = dio.load_table(path, m)
    again, _, _ = dio.load_table(path, m)
    assert again.equals(first)
    assert entries() == 1

    # new content (same name): a new checksum, so the cached table is not used
    write_csv(toniot_frame(200, seed=2), path)
    changed, _, sha2 = dio.load_table(path, m)
    assert sha2 != sha1 and len(changed) == 200
    assert entries() == 2

    # another bad-value policy is another cache entry
    dio.load_table(path, m, policy="drop")
    assert entries() == 3


def test_prepared_cache_follows_settings_and_content(tmp_path, isolated_cache):
    root = tmp_path / "data"
    path = write_csv(toniot_frame(600, seed=1), root / "ton-iot" / TONIOT_NAME)
    cfg = DataConfig("toniot", data_dir=str(root), allow_checksum_mismatch=True)
    prepared = isolated_cache / "prepared"

    a = prepare(cfg)
    b = prepare(cfg)
    assert len(list(prepared.glob("*.npz"))) == 1
    np.testing.assert_array_equal(a.X_train, b.X_train)

    # another preprocessing setting: new arrays, not the cached ones
    c = prepare(DataConfig("toniot", data_dir=str(root), allow_checksum_mismatch=True,
                           split_seed=1))
    assert len(list(prepared.glob("*.npz"))) == 2
    assert not np.array_equal(c.y_test, a.y_test) or not np.array_equal(c.X_test, a.X_test)

    # new file content: new arrays
    write_csv(toniot_frame(400, seed=2), path)
    d = prepare(cfg)
    assert len(list(prepared.glob("*.npz"))) == 3
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 400
