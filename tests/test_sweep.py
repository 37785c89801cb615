"""``idsbench sweep`` (issue 9): the grid as jobs, the paper-layout table, a tiny real sweep."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.data import DataConfig
from idsbench.errors import ConfigError
from idsbench.runner import JobSpec
from idsbench.sweep import build_sweep_jobs, parse_grid, render_sweep


def test_grid_values_are_parsed_and_checked():
    assert parse_grid("--lr", "0.01, 0.001,0.0001,0.001", float) == [0.01, 0.001, 0.0001]
    assert parse_grid("--batch-size", "16,1024", int) == [16, 1024]
    with pytest.raises(ConfigError, match=r"--batch-size '16,big': 'big' is not an integer"):
        parse_grid("--batch-size", "16,big", int)
    with pytest.raises(ConfigError, match=r"--lr '0.01,0': '0' must be greater than 0"):
        parse_grid("--lr", "0.01,0", float)
    with pytest.raises(ConfigError, match=r"--lr is empty"):
        parse_grid("--lr", " , ", float)


def test_each_grid_point_is_a_job_with_its_own_id():
    cfg = DataConfig("toniot", max_train_rows=1000).resolved()
    jobs = build_sweep_jobs(cfg, ["cnn"], [0, 1], [0.01, 0.0001], [16, 1024], epochs=3)
    assert len(jobs) == 8 and len({j.job_id for j in jobs}) == 8
    assert jobs[0].job_id == "toniot-binary-random-cnn-seed0-lr0.01-bs16"
    assert jobs[-1].job_id == "toniot-binary-random-cnn-seed1-lr0.0001-bs1024"
    for job in jobs:
        # the swept values are what the network is trained with; the rest comes from the profile
        assert job.training["lr"] == job.sweep["lr"]
        assert job.training["batch_size"] == job.sweep["batch_size"]
        assert job.training["epochs"] == 3 and job.training["early_stopping"] is False
        assert JobSpec.from_dict(json.loads(json.dumps(job.to_dict()))) == job
    # outside a sweep, job ids are unchanged
    plain = JobSpec(cfg, "cnn", 0)
    assert plain.job_id == "toniot-binary-random-cnn-seed0"


def test_non_networks_cannot_be_swept():
    cfg = DataConfig("toniot").resolved()
    with pytest.raises(ConfigError, match=r"'xgboost' is not a network .*only reach networks: "
                                          r".*cnn"):
        build_sweep_jobs(cfg, ["cnn", "xgboost"], [0], [0.01], [16])


def _record(lr, bs, f1, val_loss, seed=0, status="ok"):
    record = {"job_id": f"toniot-binary-random-cnn-seed{seed}-lr{lr:g}-bs{bs}", "model": "cnn",
              "dataset": "toniot", "task": "binary", "split": "random", "seed": seed,
              "profile": "paper", "status": status, "sweep": {"lr": lr, "batch_size": bs},
              "protocol": {"max_train_rows": 2000},
              "training": {"epochs": 1, "lr": lr, "batch_size": bs, "early_stopping": False}}
    if status == "ok":
        record["metrics"] = {"accuracy": f1 - 0.01, "precision": f1 + 0.01, "recall": f1 - 0.02,
                             "f1": f1}
        record["history"] = [{"epoch": 1, "val_loss": val_loss}]
    else:
        record["error"] = "RuntimeError: boom"
    return record


def _bold_cells(markdown: str) -> int:
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    return sum(cell.strip().startswith("**") for row in rows for cell in row.split("|"))


TABLE = """\
| LR    | Metric    | 16         | 1024   |
|-------|-----------|------------|--------|
| 0.01  | Accuracy  | 0.8400     | 0.7900 |
|       | Precision | 0.8600     | 0.8100 |
|       | Recall    | 0.8300     | 0.7800 |
|       | F1-score  | 0.8500     | 0.8000 |
| 0.001 | Accuracy  | **0.8900** | failed |
|       | Precision | **0.9100** | failed |
|       | Recall    | **0.8800** | failed |
|       | F1-score  | **0.9000** | failed |"""


def test_paper_layout_marks_the_best_setting():
    records = [_record(0.01, 16, 0.85, 0.30), _record(0.01, 1024, 0.80, 0.20),
               _record(0.001, 16, 0.88, 0.40), _record(0.001, 16, 0.92, 0.40, seed=1),
               _record(0.001, 1024, 0, 0, status="failed")]
    text, (best,) = render_sweep(records)
    assert TABLE in text  # lr descending as rows, batch sizes ascending as columns, seeds averaged
    assert (best.lr, best.batch_size, best.n_seeds) == (0.001, 16, 2)
    assert best.scores["F1-score"] == pytest.approx(0.90)
    assert "best cnn: lr 0.001, batch size 16" in best.describe()
    assert "### Failed" in text and "cnn-seed0-lr0.001-bs1024`: RuntimeError: boom" in text

    # chosen on validation rows instead: the lowest validation loss wins, whatever test says
    text, (best,) = render_sweep(records, select="val-loss")
    assert (best.lr, best.batch_size) == (0.01, 1024)
    assert "| 0.01  | Accuracy  | 0.8400 | **0.7900** |" in text
    assert _bold_cells(text) == 4  # one setting


def test_tiny_real_sweep_writes_the_table(real_data_dir, tmp_path):
    args = ["sweep", "--models", "cnn", "--dataset", "toniot", "--lr", "0.01,0.001",
            "--batch-size", "256,1024", "--epochs", "1", "--max-train-rows", "1500",
            "--data-dir", str(real_data_dir), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]

    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    assert {(r["training"]["lr"], r["training"]["batch_size"]) for r in records} == {
        (0.01, 256), (0.01, 1024), (0.001, 256), (0.001, 1024)}
    assert all(r["timing"]["epochs_run"] == 1 for r in records)

    table = (run_dir / "sweep.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["LR", "Metric", "256", "1024"]
    assert [line.split("|")[2].strip() for line in lines[2:]] == \
        ["Accuracy", "Precision", "Recall", "F1-score"] * 2

    # the bold cells are the record with the highest test F1-score
    top = max(records, key=lambda r: (r["metrics"]["f1"], r["metrics"]["accuracy"]))
    assert _bold_cells(table) == 4
    assert f"**{top['metrics']['f1']:.4f}**" in table
    assert f"best cnn: lr {top['sweep']['lr']:g}, batch size {top['sweep']['batch_size']}" \
        in result.output

    # --resume finds nothing left to run and rewrites the same table
    again = CliRunner().invoke(cli, ["sweep", "--resume", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert (run_dir / "sweep.md").read_text() == table
