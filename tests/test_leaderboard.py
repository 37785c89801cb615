"""Leaderboard rendering: golden markdown, significance marks, published results, merging.

The records here are built by hand from fixed prediction vectors (no model is trained), so the
expected answers are known: which model errs on which rows is chosen, not learned.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.errors import ConfigError
from idsbench.evaluation.metrics import classification_metrics
from idsbench.records import RunDir, load_records
from idsbench.report.baselines import load_file, load_published, protocol_differences
from idsbench.report.groups import group_records
from idsbench.report.leaderboard import render_leaderboard, write_leaderboard
from idsbench.report.significance import mcnemar_exact, paired_bootstrap, t_interval

GOLDEN = Path(__file__).parent / "golden" / "leaderboard.md"
PAPER = Path(__file__).resolve().parents[2] / "shared" / "reference" / "lstm-resnet-cbam-paper.md"

TON_FILE = {"role": "all", "path": "/data/ton-iot/train_test_network.csv", "sha256": "ab" * 32,
            "rows": 211043, "status": "verified"}
UNSW_FILES = [{"role": "train", "path": "/data/unsw-nb15/UNSW_NB15_training-set.csv",
               "sha256": "cd" * 32, "rows": 175341, "status": "verified"},
              {"role": "test", "path": "/data/unsw-nb15/UNSW_NB15_testing-set.csv",
               "sha256": "ef" * 32, "rows": 82332, "status": "verified"}]


# ------------------------------------------------------------------------------ builders


def wrong_on(y_true: np.ndarray, rows, n_classes: int) -> np.ndarray:
    """``y_true`` with the given rows moved to the next class (so they are wrong)."""
    pred = y_true.copy()
    rows = np.asarray(list(rows), dtype=int)
    pred[rows] = (pred[rows] + 1) % n_classes
    return pred


def make_record(model: str, seed: int, y_true, y_pred, classes: list[str], *, dataset: str,
                task: str, split: str, run_id: str, fit_seconds: float = 1.0,
                training: dict | None = None, max_train_rows: int | None = None,
                files: list[dict] | None = None, finished_at: str = "2026-01-01T00:00:00+00:00",
                model_params: dict | None = None) -> dict:
    """A complete 'ok' record whose metrics are computed from the given predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    proba = np.full((len(y_pred), k), 0.1 / max(k - 1, 1))
    proba[np.arange(len(y_pred)), y_pred] = 0.9
    metrics = classification_metrics(y_true, y_pred, proba, classes, task)
    unseen = np.arange(len(y_true)) % 3 != 0
    train_counts = {c: int((y_true == i).sum()) * 4 for i, c in enumerate(classes)}
    job_id = f"{dataset}-{task}-{split}-{model}-seed{seed}"
    return {
        "record_version": 1, "job_id": job_id, "run_id": run_id, "dataset": dataset,
        "split": split, "task": task, "model": model, "seed": seed, "profile": "default",
        "model_params": model_params or {}, "status": "ok", "error": None,
        "started_at": finished_at, "finished_at": finished_at,
        "n_train": 4 * len(y_true), "n_val": len(y_true) // 2, "n_test": len(y_true),
        "n_features": 40, "classes": list(classes),
        "protocol": {"dataset": dataset, "task": task, "split": split, "split_seed": 0,
                     "test_size": 0.2 if split == "random" else None, "val_fraction": 0.1,
                     "max_train_rows": max_train_rows, "identity_columns": "drop",
                     "bad_values": "impute", "dedup": "none"},
        "data": {"files": files or [], "train_class_counts": train_counts},
        "training": training or {"class_weight": None}, "rebalance": {"method": "none"},
        "n_params": 1234 if training else None,
        "timing": {"fit_seconds": fit_seconds, "predict_seconds": 0.5,
                   "predict_rows_per_second": len(y_true) / 0.5},
        "metrics": metrics,
        "metrics_unseen": classification_metrics(y_true[unseen], y_pred[unseen], proba[unseen],
                                                 classes, task),
    }


def failed_record(model: str, seed: int, *, dataset: str, task: str, split: str, run_id: str,
                  error: str) -> dict:
    return {"record_version": 1, "job_id": f"{dataset}-{task}-{split}-{model}-seed{seed}",
            "run_id": run_id, "dataset": dataset, "split": split, "task": task, "model": model,
            "seed": seed, "profile": "default", "model_params": {}, "status": "failed",
            "error": error,
            "protocol": {"dataset": dataset, "task": task, "split": split, "split_seed": 0,
                         "test_size": 0.2, "val_fraction": 0.1, "max_train_rows": 5000,
                         "identity_columns": "drop", "bad_values": "impute", "dedup": "none"}}


def save(run_dir: Path, record: dict, y_true=None, y_pred=None) -> None:
    run = RunDir(run_dir)
    preds = None
    if y_pred is not None:
        preds = {"y_true": np.asarray(y_true, dtype=np.int16),
                 "y_pred": np.asarray(y_pred, dtype=np.int16),
                 "score": np.zeros(len(y_pred), dtype=np.float32),
                 "twin": np.zeros(len(y_pred), dtype=bool)}
    run.write_record(record, preds)


NET = {"epochs": 8, "batch_size": 512, "lr": 0.001, "patience": 2, "early_stopping": True,
       "class_weight": None}


def build_ton_binary_run(run_dir: Path, run_id: str = "run-a") -> None:
    """ToN_IoT binary, 1,000 test rows: xgboost (3 seeds) best, lstm-resnet-cbam close behind,
    stump far behind, one failed model."""
    n = 1000
    y = (np.arange(n) % 5 < 2).astype(int)  # 40% attacks
    common = dict(dataset="toniot", task="binary", split="random", run_id=run_id,
                  max_train_rows=5000, files=[TON_FILE])
    for seed in (0, 1, 2):
        pred = wrong_on(y, range(seed, n, 50), 2)  # 20 errors
        save(run_dir, make_record("xgboost", seed, y, pred, ["Normal", "Attack"],
                                  fit_seconds=2.0 + seed, **common), y, pred)
    for seed in (0, 1):
        pred = wrong_on(y, range(seed + 3, n, 45), 2)  # 23 errors, on other rows
        save(run_dir, make_record("lstm-resnet-cbam", seed, y, pred, ["Normal", "Attack"],
                                  fit_seconds=60.0 + seed, training=NET, **common), y, pred)
    pred = wrong_on(y, range(0, n, 4), 2)  # 250 errors
    save(run_dir, make_record("stump", 0, y, pred, ["Normal", "Attack"], fit_seconds=0.01,
                              **common), y, pred)
    save(run_dir, failed_record("broken", 0, dataset="toniot", task="binary", split="random",
                                run_id=run_id, error="RuntimeError: deliberate failure in fit"))


UNSW_CLASSES = ["Normal", "Generic", "Exploits", "Worms"]


def build_unsw_multiclass_run(run_dir: Path, run_id: str = "run-b") -> None:
    """UNSW-NB15 multiclass on the official partitions, stored without predictions; 'Worms' has
    30 of 2,000 test rows (low support)."""
    n = 2000
    y = np.repeat([0, 1, 2, 3], [1200, 500, 270, 30])
    common = dict(dataset="unsw", task="multiclass", split="official", run_id=run_id,
                  files=UNSW_FILES)
    cnn = wrong_on(y, list(range(0, 1200, 20)) + list(range(1200, 2000, 8)), 4)
    save(run_dir, make_record("cnn", 0, y, cnn, UNSW_CLASSES, fit_seconds=30.0,
                              training=NET, **common))
    stump = np.where(y == 1, 1, 0)
    save(run_dir, make_record("stump", 0, y, stump, UNSW_CLASSES, fit_seconds=0.02, **common))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    a, b = root / "run-a", root / "run-b"
    build_ton_binary_run(a)
    build_unsw_multiclass_run(b)
    return a, b


# ------------------------------------------------------------------------------ golden


def test_golden_markdown(two_runs):
    text = render_leaderboard(load_records(two_runs), title="golden leaderboard")
    if os.environ.get("IDSBENCH_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "leaderboard text changed; if on purpose, rerun with IDSBENCH_UPDATE_GOLDEN=1 and "
        "review the diff of tests/golden/leaderboard.md")


def test_rendering_is_deterministic_and_paths_free(two_runs):
    records = load_records(two_runs)
    first = render_leaderboard(records)
    assert render_leaderboard(list(reversed(records))) == first
    assert str(two_runs[0]) not in first and "_run_dir" not in first


# ------------------------------------------------------------------------------ significance


def test_identical_predictions_are_not_significant():
    y = np.arange(600) % 3
    pred = wrong_on(y, range(0, 600, 7), 3)
    mc = mcnemar_exact(y, pred, pred.copy())
    assert (mc.only_a, mc.only_b, mc.p_value) == (0, 0, 1.0)
    boot = paired_bootstrap(y, pred, pred.copy(), "f1_macro", n_classes=3)
    assert boot.difference == 0 and not boot.significant


def test_right_on_200_more_rows_is_significant():
    y = np.arange(2000) % 2
    better = wrong_on(y, range(0, 100), 2)  # 100 errors
    worse = wrong_on(y, range(0, 300), 2)  # the same 100 plus 200 more
    mc = mcnemar_exact(y, better, worse)
    assert (mc.only_a, mc.only_b) == (200, 0) and mc.p_value < 1e-6
    for metric in ("accuracy", "f1_macro"):
        boot = paired_bootstrap(y, worse, better, metric, n_classes=2)
        assert boot.significant and boot.high < 0
    assert paired_bootstrap(y, worse, better, "accuracy", n_classes=2).difference == \
        pytest.approx(-0.1)


def test_balanced_disagreement_is_not_significant():
    y = np.arange(1000) % 2
    a = wrong_on(y, range(0, 10), 2)
    b = wrong_on(y, range(10, 20), 2)  # as many errors, on other rows
    assert mcnemar_exact(y, a, b).p_value == pytest.approx(1.0)
    assert not paired_bootstrap(y, a, b, "f1_macro", n_classes=2).significant


def test_bootstrap_observed_difference_matches_sklearn_over_seeds():
    from sklearn.metrics import f1_score

    y = np.arange(900) % 3
    a = np.vstack([wrong_on(y, range(s, 900, 11), 3) for s in range(3)])
    b = np.vstack([wrong_on(y, range(s, 900, 6), 3) for s in range(2)])
    expected = (np.mean([f1_score(y, p, average="macro") for p in a])
                - np.mean([f1_score(y, p, average="macro") for p in b]))
    boot = paired_bootstrap(y, a, b, "f1_macro", n_classes=3, n_boot=200)
    assert boot.difference == pytest.approx(expected, abs=1e-12)
    assert boot.low <= boot.difference <= boot.high


def test_t_interval_matches_scipy():
    from scipy import stats

    vals = [0.91, 0.93, 0.92, 0.95]
    expected = stats.t.interval(0.95, len(vals) - 1, loc=np.mean(vals), scale=stats.sem(vals))
    assert t_interval(vals) == pytest.approx(expected)
    assert t_interval([0.9]) is None


def _row(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {label} "))


def test_leaderboard_marks_not_significant_differences(tmp_path):
    """A model identical to the best is marked n.s.; one wrong on 200 more rows is not.

    Equal scores rank by name, so the copy comes second."""
    y = np.arange(2000) % 2
    best = wrong_on(y, range(0, 100), 2)
    worse = wrong_on(y, range(0, 300), 2)
    common = dict(dataset="toniot", task="binary", split="random", run_id="r")
    for model, pred in (("xgboost", best), ("xgboost-copy", best.copy()), ("weaker", worse)):
        save(tmp_path, make_record(model, 0, y, pred, ["Normal", "Attack"], **common), y, pred)
    text = render_leaderboard(load_records([tmp_path]), baselines=False)
    assert "| best " in _row(text, "xgboost")
    assert "n.s." in _row(text, "xgboost-copy") and "not significant" in text.split("### Paired")[1]
    weaker = _row(text, "weaker")
    assert "-0.1" in weaker and "n.s." not in weaker
    paired = text.split("### Paired tests")[1].split("###")[0]
    assert re.search(r"\| weaker .*\| 200 / 0 .*\| <0\.001 .*\| worse", paired)


def test_missing_predictions_are_said_not_guessed(two_runs):
    text = render_leaderboard(load_records([two_runs[1]]))
    assert "(no stored predictions)" in _row(text, "stump (one-feature rule)")


# ------------------------------------------------------------------------------ sections


def test_per_class_table_flags_low_support(two_runs):
    text = render_leaderboard(load_records([two_runs[1]]))
    per_class = text.split("### Per class")[1]
    assert "| Worms ⚠ " in per_class and "| Normal " in per_class
    assert "Normal ⚠" not in per_class
    assert "Low support: Worms (30 test rows, 1.50%)" in per_class


def test_shortcut_reference_is_shown_when_present_and_asked_for_when_absent(two_runs, tmp_path):
    text = render_leaderboard(load_records([two_runs[0]]))
    stump_acc = json.loads((two_runs[0] / "records" / "toniot-binary-random-stump-seed0.json")
                           .read_text())["metrics"]["accuracy"]
    assert f"a single-feature rule (`stump`" in text and f"accuracy {stump_acc:.4f}" in text
    y = np.arange(100) % 2
    save(tmp_path / "solo", make_record("xgboost", 0, y, y, ["Normal", "Attack"],
                                        dataset="toniot", task="binary", split="random",
                                        run_id="solo"), y, y)
    alone = render_leaderboard(load_records([tmp_path / "solo"]))
    assert "add `stump` to `--models`" in alone


def test_shortcut_note_says_when_the_best_model_is_not_better_than_the_rule(tmp_path):
    y = np.arange(1000) % 2
    common = dict(dataset="toniot", task="binary", split="random", run_id="r")
    best, rule = wrong_on(y, range(0, 40), 2), wrong_on(y, range(1, 42), 2)  # one row apart
    for model, pred in (("xgboost", best), ("stump", rule)):
        save(tmp_path, make_record(model, 0, y, pred, ["Normal", "Attack"], **common), y, pred)
    text = render_leaderboard(load_records([tmp_path]), baselines=False)
    assert "that margin is **not significant**" in text


def test_failed_jobs_are_listed_never_scored(two_runs):
    text = render_leaderboard(load_records([two_runs[0]]))
    before, failed = text.split("### Failed")
    assert "broken" not in before
    assert "`broken` seed 0: RuntimeError: deliberate failure in fit" in failed


def test_spread_section_gives_t_intervals(two_runs):
    records = load_records([two_runs[0]])
    text = render_leaderboard(records)
    accs = [r["metrics"]["accuracy"] for r in records if r["model"] == "xgboost"]
    lo, hi = t_interval(accs)
    spread = text.split("### Spread over seeds")[1].split("###")[0]
    assert f"{np.mean(accs):.4f} [{lo:.4f}, {hi:.4f}]" in _row(spread.strip(), "xgboost")
    assert "(1 seed)" in _row(spread.strip(), "stump (one-feature rule)")


# ------------------------------------------------------------------------------ published


def test_published_results_sit_beside_reproduced_with_protocol_differences(two_runs):
    text = render_leaderboard(load_records(two_runs))
    ton = text.split("## toniot")[1].split("## unsw")[0]
    published = ton.split("### Published results")[1].split("###")[0]
    row = next(line for line in published.splitlines() if "lstm-resnet-cbam" in line)
    # the paper's headline, our mean, and every stated difference
    assert "0.9955" in row and "Table I; abstract" in row
    assert "100 epochs there, up to 8 with early stopping here" in row
    assert "all training rows there, capped at 5,000 here" in row
    assert "Not stated by cui, Table I" in published and "task: binary or 10-class" in published
    assert "20 more setting(s) not shown" in published
    # a published result for another task is pointed to, not mixed in
    assert "random forest" not in row and "(multiclass)" in published
    unsw = text.split("## unsw")[1]
    t2 = unsw.split("### Published results")[1].split("###")[0]
    assert "LuNet → `lunet`" in t2 and "Densely-ResNet → `densely-resnet`" in t2
    assert "decision tree" not in t2.split("\n-")[0]  # Kasongo & Sun is binary only


def test_table_one_cell_appears_when_a_run_uses_its_settings(tmp_path):
    y = np.arange(400) % 2
    training = {**NET, "lr": 0.01, "batch_size": 64, "epochs": 100, "early_stopping": False}
    save(tmp_path, make_record("lstm-resnet-cbam", 0, y, y, ["Normal", "Attack"],
                               dataset="toniot", task="binary", split="random", run_id="r",
                               training=training, files=[TON_FILE]), y, y)
    text = render_leaderboard(load_records([tmp_path]))
    published = text.split("### Published results")[1].split("###")[0]
    cell = next(line for line in published.splitlines() if "(lr 0.01, batch size 64)" in line)
    assert "0.9682" in cell and "nothing stated differs" in cell
    headline = next(line for line in published.splitlines() if "(lr 0.001, batch size 512)" in line)
    assert "learning rate 0.001 there, 0.01 here" in headline


def test_protocol_differences_name_each_field():
    (rf,) = [p for p in load_published() if p.id == "ids2eval-toniot-rf-ip-ports"]
    proto = {"task": "binary", "split": "random", "test_size": 0.2, "identity_columns": "drop",
             "max_train_rows": None, "dedup": "none"}
    diffs = protocol_differences(rf, proto, 461043, None)
    assert diffs == ["task multiclass there, binary here",
                     "211,043 data rows there, 461,043 here",
                     "addresses and ports kept there, dropped here",
                     "duplicate test rows removed there, every test row scored here"]


def test_baseline_files_hold_the_required_figures():
    from idsbench.data.manifest import list_datasets

    pubs = {p.id: p for p in load_published()}
    head = pubs["cui-toniot-lr0.001-batch512"]
    assert head.headline and head.model == "lstm-resnet-cbam"
    assert head.metrics == {"accuracy": 0.9955, "precision": 0.9951, "recall": 0.995, "f1": 0.995}
    assert head.protocol["training"] == {"epochs": 100, "lr": 0.001, "batch_size": 512}
    assert head.protocol["split"] == "random" and head.protocol["test_size"] == 0.2
    assert len([p for p in pubs.values() if p.table == "Table I"]) == 21
    assert {pubs[f"cui-unsw-{m}"].metrics["accuracy"] for m in
            ("lstm", "lunet", "densely-resnet", "cnn", "lstm-resnet-cbam")} == \
        {0.7015, 0.7267, 0.7393, 0.8163, 0.8923}
    assert pubs["kasongo-unsw-dt"].metrics["accuracy"] == 0.8813
    assert pubs["kasongo-unsw-dt-selected"].metrics["accuracy"] == 0.9085
    assert pubs["ids2eval-unsw-sttl-rule"].model == "stump"
    assert pubs["ids2eval-toniot-rf"].metrics["accuracy"] == 0.9759
    for p in pubs.values():
        assert p.dataset in list_datasets(), p.id
        assert p.unknown, f"{p.id}: say what the source leaves unstated"
    # Table II states neither split nor task: nothing may pretend otherwise
    assert all(pubs[f"cui-unsw-{m}"].protocol.get(k) is None for m in ("lstm", "cnn")
               for k in ("split", "task"))


@pytest.mark.skipif(not PAPER.is_file(), reason="the seed paper's text is not beside the checkout")
def test_table_one_and_two_match_the_paper_text():
    text = re.sub(r"LR=[0-9.]+", "", PAPER.read_text(encoding="utf-8").replace("<b>", "")
                  .replace("</b>", ""))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TABLE I:"))
    rows = [line for line in lines[start:start + 20]
            if re.search(r"(Accuracy|Precision|Recall|F1-score)\t", line)]
    grid = [[float(x) for x in re.findall(r"0\.\d{4}", r)] for r in rows]
    pubs = [p for p in load_published() if p.table == "Table I"]
    for i, lr in enumerate((0.01, 0.001, 0.0001)):
        for j, batch in enumerate((16, 32, 64, 128, 256, 512, 1024)):
            (p,) = [p for p in pubs if p.protocol["training"]["lr"] == lr
                    and p.protocol["training"]["batch_size"] == batch]
            assert [p.metrics[m] for m in ("accuracy", "precision", "recall", "f1")] == \
                [grid[4 * i + k][j] for k in range(4)], (lr, batch)
    start = next(i for i, line in enumerate(lines) if line.startswith("TABLE II:"))
    table2 = {p.paper_model: p for p in load_published() if p.table == "Table II"}
    for line in lines[start + 1:start + 9]:
        nums = [float(x) for x in re.findall(r"0\.\d{4}", line)]
        if nums:
            p = table2[line.split("\t")[0]]
            assert [p.metrics[m] for m in ("accuracy", "precision", "recall", "f1")] == nums


def test_bad_baselines_file_names_the_entry(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": 1, "source": {"key": "x", "citation": "y"}, "tables": [
        {"name": "T", "dataset": "unsw", "results": [
            {"id": "x-1", "metrics": {"accuracy": 89.23}}]}]}))
    with pytest.raises(ConfigError, match=r"bad\.json: table 'T', result 'x-1': metrics must map"):
        load_file(bad)
    bad.write_text(json.dumps({"schema": 1, "source": {"key": "x", "citation": "y"}, "tables": [
        {"name": "T", "dataset": "unsw", "protocol": {"split": "80/20"}, "results": []}]}))
    with pytest.raises(ConfigError, match=r"split '80/20'; expected one of"):
        load_file(bad)


# ------------------------------------------------------------------------------ merging, CLI


def test_records_remember_their_run_dir_without_writing_it(two_runs):
    records = load_records([two_runs[0]])
    assert {r["_run_dir"] for r in records} == {str(two_runs[0])}
    RunDir(two_runs[0]).rebuild_jsonl()
    assert "_run_dir" not in (two_runs[0] / "records.jsonl").read_text()
    from_jsonl = load_records([two_runs[0] / "records.jsonl"])
    assert {r["_run_dir"] for r in from_jsonl} == {str(two_runs[0])}


def test_merging_runs_of_one_protocol(tmp_path):
    """Seeds from two runs form one row; a seed run twice counts once (the later record)."""
    a, b = tmp_path / "runs" / "run-a", tmp_path / "runs" / "run-b"
    y = (np.arange(500) % 5 < 2).astype(int)
    common = dict(dataset="toniot", task="binary", split="random", files=[TON_FILE])
    for seed in (0, 1):
        pred = wrong_on(y, range(seed, 500, 40), 2)
        save(a, make_record("xgboost", seed, y, pred, ["Normal", "Attack"], run_id="run-a",
                            **common), y, pred)
    later = "2026-02-01T00:00:00+00:00"
    for seed in (1, 2):  # seed 1 again, later: it replaces run-a's seed 1
        pred = wrong_on(y, range(seed, 500, 25), 2)
        save(b, make_record("xgboost", seed, y, pred, ["Normal", "Attack"], run_id="run-b",
                            finished_at=later, **common), y, pred)
    pred = wrong_on(y, range(0, 500, 3), 2)
    save(b, make_record("stump", 0, y, pred, ["Normal", "Attack"], run_id="run-b", **common),
         y, pred)

    (group,) = group_records(load_records([a, b]))
    (xgb,) = [v for v in group.variants if v.label == "xgboost"]
    assert xgb.seeds == [0, 1, 2] and group.duplicates == 1
    assert [r["run_id"] for r in xgb.records] == ["run-a", "run-b", "run-b"]

    out = tmp_path / "merged.md"
    result = CliRunner().invoke(cli, ["leaderboard", str(a), str(b), "-o", str(out),
                                      "--title", "merged"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# merged\n") and text.count("## toniot · binary · random") == 1
    assert "merged from 2 runs (run-a, run-b)" in text
    assert "1 record(s) repeated a model and seed" in text
    assert re.search(r"\| xgboost +\| 3 ", text)
    # a folder of runs gives the same leaderboard as naming each run
    again = CliRunner().invoke(cli, ["leaderboard", str(tmp_path / "runs"), "--title", "merged"])
    assert again.exit_code == 0 and again.output.strip() == text.strip()


def test_cli_options(two_runs, tmp_path):
    result = CliRunner().invoke(cli, ["leaderboard", str(two_runs[0]), "--plots"])
    assert result.exit_code == 2 and "--plots needs -o FILE" in result.output
    plain = CliRunner().invoke(cli, ["leaderboard", str(two_runs[0]), "--no-baselines"])
    assert plain.exit_code == 0 and "### Published results" not in plain.output
    assert "### Published results" in CliRunner().invoke(
        cli, ["leaderboard", str(two_runs[0])]).output


def test_write_leaderboard_keeps_the_cli_and_file_in_step(two_runs):
    target = write_leaderboard(two_runs[0])
    assert target == two_runs[0] / "leaderboard.md"
    out = CliRunner().invoke(cli, ["leaderboard", str(two_runs[0])])
    assert out.exit_code == 0 and out.output.strip() == target.read_text().strip()
