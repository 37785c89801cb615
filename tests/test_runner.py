"""Jobs, records and the end-to-end CLI on a subsample of the real data (issue 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.data import DataConfig, prepare
from idsbench.models import register_model
from idsbench.models.base import BaseModel
from idsbench.models.registry import unregister_model
from idsbench.runner import JobSpec, build_jobs, run_benchmark, run_job


@pytest.fixture
def broken_model():
    @register_model("test-broken", description="raises in fit")
    class Broken(BaseModel):
        def __init__(self, random_state=0):
            self.random_state = random_state

        def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
            raise RuntimeError("deliberate failure in fit")

    yield "test-broken"
    unregister_model("test-broken")


def test_jobs_are_serializable_data():
    cfg = DataConfig("toniot", task="multiclass", max_train_rows=1000).resolved()
    jobs = build_jobs(cfg, ["xgboost", "cnn"], [0, 1], profile="quick", training={"epochs": 1})
    assert [j.job_id for j in jobs] == [
        "toniot-multiclass-random-xgboost-seed0", "toniot-multiclass-random-cnn-seed0",
        "toniot-multiclass-random-xgboost-seed1", "toniot-multiclass-random-cnn-seed1"]
    for job in jobs:
        text = json.dumps(job.to_dict())
        assert JobSpec.from_dict(json.loads(text)) == job
    assert jobs[1].training["epochs"] == 1 and jobs[2].training["lr"] == 1e-3


def test_api_returns_records_and_failed_model_is_recorded(real_data_dir, tmp_path, broken_model):
    frame = run_benchmark("unsw", models=["stump", broken_model], split="random",
                          max_train_rows=2000, out=tmp_path, data_dir=str(real_data_dir))
    assert isinstance(frame, pd.DataFrame)
    by_model = frame.set_index("model")
    assert by_model.loc["stump", "status"] == "ok"
    assert by_model.loc[broken_model, "status"] == "failed"
    assert "deliberate failure in fit" in by_model.loc[broken_model, "error"]
    assert not isinstance(by_model.loc[broken_model].get("metrics"), dict)

    run_dir = tmp_path / frame.attrs["run_dir"].split("/")[-1]
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2
    board = (run_dir / "leaderboard.md").read_text()
    assert "### Failed" in board and "deliberate failure in fit" in board
    table = board.split("### Failed")[0]
    assert broken_model not in table  # a failed model never shows as a score


def test_record_fields(real_data_dir):
    cfg = DataConfig("toniot", task="binary", max_train_rows=3000,
                     data_dir=str(real_data_dir)).resolved()
    data = prepare(cfg)
    job = build_jobs(cfg, ["xgboost"], [3])[0]
    record, preds = run_job(job, data)
    assert record["status"] == "ok", record.get("error")
    for key in ("dataset", "split", "task", "model", "seed", "status", "error", "metrics",
                "metrics_unseen", "timing", "n_train", "n_test", "n_features", "params",
                "environment", "protocol", "data"):
        assert key in record
    m = record["metrics"]
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted",
                "per_class", "confusion_matrix", "precision", "recall", "f1", "fpr", "roc_auc"):
        assert key in m
    assert record["seed"] == 3 and record["n_test"] == 42209
    assert np.asarray(m["confusion_matrix"]).sum() == record["n_test"]
    assert record["metrics_unseen"]["n"] == int((~data.test_has_train_twin).sum())
    assert record["timing"]["predict_rows_per_second"] > 0
    assert {"packages", "git", "python"} <= set(record["environment"])
    assert preds["y_pred"].shape == (42209,)


def test_seeds_make_networks_repeatable(real_data_dir):
    cfg = DataConfig("unsw", split="random", max_train_rows=1500,
                     data_dir=str(real_data_dir)).resolved()
    data = prepare(cfg)
    jobs = build_jobs(cfg, ["cnn"], [0, 0, 1], training={"epochs": 1})
    (a, pa), (b, pb), (c, pc) = (run_job(j, data) for j in jobs)
    assert np.array_equal(pa["score"], pb["score"])
    assert not np.array_equal(pa["score"], pc["score"])


def test_cli_end_to_end_on_real_subsample(real_data_dir, tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "--models", "xgboost,stump,lstm", "--dataset", "toniot", "--task", "multiclass",
        "--seeds", "0,1", "--max-train-rows", "3000", "--epochs", "1",
        "--data-dir", str(real_data_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["models"] == ["xgboost", "stump", "lstm"] and config["seeds"] == [0, 1]
    records = [json.loads(l) for l in (run_dir / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    xgb = [r for r in records if r["model"] == "xgboost"][0]
    assert xgb["metrics"]["accuracy"] > 0.9  # ToN_IoT multiclass is easy for trees
    board = (run_dir / "leaderboard.md").read_text()
    assert "toniot · multiclass · random" in board and "| xgboost" in board

    again = CliRunner().invoke(cli, ["leaderboard", str(run_dir)])
    assert again.exit_code == 0 and again.output.strip() == board.strip()
