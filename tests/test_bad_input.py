"""Bad input gets a clear error, and nothing is lost (issue 10).

Each kind of bad input gets a small file written for it.  The outcome is either correct
handling (checked on the cleaned table, the arrays a model receives and the record) or an
idsbench error whose text names the file, column or option, what was expected and what was
found.  The manifest is pointed at the synthetic files (checksum, rows, class counts) so the
official split and the checksum checks run without the real UNSW training file.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.data import io as dio
from idsbench.data import manifest as manifest_mod
from idsbench.data import preprocess
from idsbench.data.prepare import DataConfig, prepare
from idsbench.errors import ChecksumError, DataError
from idsbench.models.base import BaseModel
from idsbench.models.registry import register_model, unregister_model
from idsbench.runner import run_benchmark
from tests.synth import toniot_frame, unsw_frame, write_csv

TRAIN_NAME = "UNSW_NB15_training-set.csv"
TEST_NAME = "UNSW_NB15_testing-set.csv"
UNSW_CLASSES = ["Normal", "Generic", "Exploits", "Fuzzers", "DoS", "Reconnaissance", "Analysis",
                "Backdoor", "Shellcode", "Worms"]


# ------------------------------------------------------------------------------------ helpers


def counts(per_class: int, drop: tuple[str, ...] = ()) -> dict[str, int]:
    return {c: per_class for c in UNSW_CLASSES if c not in drop}


def decompressed(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


@pytest.fixture
def publish(monkeypatch, isolated_cache):
    """Make the UNSW manifest describe the given files as the published partitions.

    ``publish({"train": path, "test": path})`` sets each role's SHA-256, rows, bytes and class
    counts from the file; roles left out keep the real manifest's values.
    """
    real = manifest_mod._load_all()

    def _publish(files: dict[str, Path]) -> None:
        m = real["unsw"]
        specs = dict(m.files)
        for role, path in files.items():
            data = decompressed(path)
            table = pd.read_csv(path, encoding="utf-8-sig")
            specs[role] = dataclasses.replace(
                m.files[role], sha256=hashlib.sha256(data).hexdigest(), rows=len(table),
                bytes=len(data), md5=None,
                class_counts={str(k): int(v) for k, v in table["attack_cat"].value_counts().items()})
        monkeypatch.setattr(manifest_mod, "_load_all",
                            lambda: {**real, "unsw": dataclasses.replace(m, files=specs)})

    return _publish


@pytest.fixture
def unsw_dir(tmp_path, publish):
    """A data root with a published 10-class UNSW pair (120 training rows, 60 test rows)."""
    root = tmp_path / "data"
    train = write_csv(unsw_frame(class_counts=counts(12), seed=1), root / "unsw-nb15" / TRAIN_NAME)
    test = write_csv(unsw_frame(class_counts=counts(6), seed=2), root / "unsw-nb15" / TEST_NAME)
    publish({"train": train, "test": test})
    return root


@pytest.fixture
def recorder():
    """A registered model that keeps every array it is given and predicts uniform probabilities."""
    seen: list[dict] = []

    @register_model("test-recorder", description="keeps its inputs; uniform probabilities")
    class Recorder(BaseModel):
        def __init__(self, random_state=0):
            self.random_state = random_state

        def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
            seen.append({"X": X, "y": y, "X_val": X_val, "y_val": y_val})
            self.k_ = int(np.max(y)) + 1
            return self

        def predict_proba(self, X):
            seen.append({"X_predict": X})
            return np.full((len(X), self.k_), 1.0 / self.k_)

    yield seen
    unregister_model("test-recorder")


def assert_all_finite(seen: list[dict]) -> None:
    arrays = [v for call in seen for v in call.values() if v is not None]
    assert arrays, "the model received nothing"
    for a in arrays:
        assert np.isfinite(np.asarray(a, dtype=np.float64)).all()


def quality_of(record: dict, role: str) -> dict:
    roles = [f["role"] for f in record["data"]["files"]]
    return record["data"]["quality"][roles.index(role)]


# ------------------------------------------------------------------- 1. header variants


@pytest.mark.parametrize("variant", ["bom", "spaces", "crlf", "index_column", "all"])
def test_header_variants_give_the_same_table(tmp_path, variant):
    m = manifest_mod.get_manifest("unsw")
    frame = unsw_frame(40, seed=3)
    plain = write_csv(frame, tmp_path / "plain.csv", bom=False, crlf=False)

    odd = frame.copy()
    if variant in ("spaces", "all"):
        odd.columns = [f"  {c} " if i % 2 else f" {c}" for i, c in enumerate(odd.columns)]
    if variant in ("index_column", "all"):
        odd.insert(0, "Unnamed: 0", range(len(odd)))
    path = write_csv(odd, tmp_path / "odd.csv", bom=variant in ("bom", "all"),
                     crlf=variant in ("crlf", "all"))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") == (variant in ("bom", "all"))

    expected, _, _ = dio.load_table(plain, m, use_cache=False)
    table, report, _ = dio.load_table(path, m, use_cache=False)
    pd.testing.assert_frame_equal(table, expected)
    if variant in ("spaces", "all"):
        assert report.renamed_columns[" sbytes"] == "sbytes"
    if variant in ("index_column", "all"):
        assert report.dropped_columns == ["Unnamed: 0"]


# ------------------------------------------------------------- 2. text in numeric columns


def _with_bad_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"sbytes": "object", "spkts": "object"})
    frame.loc[3, "sbytes"] = "192.168.1.10"  # an address where a byte count belongs (line 5)
    frame.loc[7, "spkts"] = ""  # a blank count (line 9)
    frame.loc[9, "spkts"] = " "  # a space (line 11)
    return frame


@pytest.mark.parametrize("policy", ["impute", "drop"])
def test_text_in_numeric_column_is_reported_and_recorded(tmp_path, publish, caplog, policy):
    root = tmp_path / "data"
    bad_train = _with_bad_numbers(unsw_frame(class_counts=counts(12), seed=1))
    train = write_csv(bad_train, root / "unsw-nb15" / TRAIN_NAME)
    test = write_csv(unsw_frame(class_counts=counts(6), seed=2), root / "unsw-nb15" / TEST_NAME)
    publish({"train": train, "test": test})

    with caplog.at_level(logging.WARNING, logger="idsbench"):
        frame = run_benchmark("unsw", models=["stump"], split="official", bad_values=policy,
                              data_dir=str(root), out=tmp_path / "runs")
    record = frame.iloc[0].to_dict()
    assert record["status"] == "ok"

    # the record (also the one on disk) holds the quality report: columns, lines, examples
    on_disk = json.loads(next((Path(frame.attrs["run_dir"]) / "records").glob("*.json")).read_text())
    for rec in (record, on_disk):
        q = quality_of(rec, "train")
        assert q["bad_value_policy"] == policy
        assert q["bad_values"]["sbytes"] == {"count": 1, "lines": [5], "examples": ["192.168.1.10"],
                                             "expected": "a number"}
        assert q["bad_values"]["spkts"]["count"] == 2 and q["bad_values"]["spkts"]["lines"] == [9, 11]
        assert q["bad_values"]["spkts"]["examples"] == ["(blank)", "(blank)"]
        assert q["rows_with_bad_values"] == 3
        assert q["rows_dropped"] == (3 if policy == "drop" else 0)
        assert quality_of(rec, "test")["rows_with_bad_values"] == 0
    assert record["protocol"]["bad_values"] == policy
    assert record["n_train"] + record["n_val"] == (117 if policy == "drop" else 120)

    # the log names the file, the column and the lines
    text = caplog.text
    assert f"{train}: column 'sbytes' has 1 value(s) that are not numbers, first on lines [5]" in text
    assert f"--bad-values {policy}" in text


def test_bad_numbers_become_missing_not_zero(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    path = write_csv(_with_bad_numbers(unsw_frame(20, seed=4)), tmp_path / "t.csv")
    table, _, _ = dio.load_table(path, m, use_cache=False)
    assert np.isnan(table.loc[3, "sbytes"]) and np.isnan(table.loc[7, "spkts"])
    assert np.isnan(table.loc[9, "spkts"])
    assert table["sbytes"].notna().sum() == 19  # nothing else touched


def test_line_numbers_count_blank_lines(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    path = write_csv(_with_bad_numbers(unsw_frame(20, seed=4)), tmp_path / "t.csv", crlf=False)
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join(lines[:2] + ["", ""] + lines[2:]), encoding="utf-8")  # 2 blank lines
    _, report, _ = dio.load_table(path, m, use_cache=False)
    assert report.bad_values["sbytes"]["lines"] == [7]
    assert report.bad_values["spkts"]["lines"] == [11, 13]


# ------------------------------------------------------------------------- 3. class names


def test_class_name_variants_are_normalised(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    frame = unsw_frame(class_counts=counts(3), seed=5)
    rows = frame.index[frame["attack_cat"] == "Fuzzers"]
    frame.loc[rows[0], "attack_cat"] = " Fuzzers"  # as the raw UNSW-NB15 files spell it
    frame.loc[rows[1], "attack_cat"] = "fuzzers  "
    frame.loc[frame["attack_cat"] == "Backdoor", "attack_cat"] = "Backdoors"
    frame.loc[frame["attack_cat"] == "DoS", "attack_cat"] = "DOS"
    table, report, _ = dio.load_table(write_csv(frame, tmp_path / "c.csv"), m, use_cache=False)

    assert sorted(table["attack_cat"].unique()) == sorted(UNSW_CLASSES)
    assert table["attack_cat"].value_counts().to_dict() == counts(3)
    assert report.class_renames == {" Fuzzers": "Fuzzers", "fuzzers  ": "Fuzzers",
                                    "Backdoors": "Backdoor", "DOS": "DoS"}


def test_unknown_class_name_is_an_error_naming_it(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    frame = unsw_frame(30, seed=6)
    frame.loc[4, "attack_cat"] = "Spam"
    frame.loc[[8, 9], "attack_cat"] = "Reconnaisance"
    frame.loc[[4, 8, 9], "label"] = 1
    path = write_csv(frame, tmp_path / "c.csv")
    with pytest.raises(DataError) as err:
        dio.load_table(path, m, use_cache=False)
    msg = str(err.value)
    assert msg.startswith(f"{path}: column 'attack_cat' has class name(s) not in the dataset's list")
    assert "'Spam' (1 row, first on line 6)" in msg
    assert "'Reconnaisance' (2 rows, first on line 10; did you mean 'Reconnaissance'?)" in msg
    assert "Expected one of: Normal, Generic" in msg


def test_labels_that_contradict_the_class_are_an_error(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    frame = unsw_frame(class_counts=counts(2), seed=7)
    row = frame.index[frame["attack_cat"] == "Worms"][0]
    frame.loc[row, "label"] = 0
    path = write_csv(frame, tmp_path / "c.csv")
    with pytest.raises(DataError, match=rf"columns 'label' and 'attack_cat' disagree on 1 row\(s\), "
                                        rf"first on line\(s\) \[{row + 2}\].*label=0 with "
                                        r"attack_cat='Worms'"):
        dio.load_table(path, m, use_cache=False)


# ---------------------------------------------------------------- 4. missing columns


def test_missing_or_renamed_column_lists_closest_names(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    frame = unsw_frame(20, seed=8).rename(columns={"sbytes": "src_bytes"}).drop(columns=["dur"])
    path = write_csv(frame, tmp_path / "m.csv")
    with pytest.raises(DataError) as err:
        dio.load_table(path, m, use_cache=False)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 2 required column(s) of dataset 'unsw' missing: 'dur', "
                          "'sbytes' (closest present: 'src_bytes')")
    assert "The file has 44 columns (id, spkts," in msg


# ------------------------------------------------------------------ 5. NaN and infinity


def test_nan_and_infinity_never_reach_a_model(tmp_path, publish, recorder):
    root = tmp_path / "data"
    frame = unsw_frame(class_counts=counts(12), seed=9).astype({"rate": "object", "dur": "object"})
    frame.loc[2, "rate"], frame.loc[3, "rate"], frame.loc[4, "rate"] = "inf", "-Infinity", "NaN"
    frame.loc[5, "dur"] = "1e400"  # overflows to infinity
    frame.loc[6, "dur"] = 1e300  # finite but huge: the log transform keeps it finite
    train = write_csv(frame, root / "unsw-nb15" / TRAIN_NAME)
    test = write_csv(unsw_frame(class_counts=counts(6), seed=10), root / "unsw-nb15" / TEST_NAME)
    publish({"train": train, "test": test})

    frame = run_benchmark("unsw", models=["test-recorder"], split="official", data_dir=str(root),
                          out=None)
    record = frame.iloc[0].to_dict()
    assert record["status"] == "ok"
    q = quality_of(record, "train")
    assert q["nonfinite"] == {"rate": 3, "dur": 1} and q["bad_values"] == {}
    assert q["rows_with_bad_values"] == 4
    assert record["data"]["nonfinite_after_transform"] == 0
    assert_all_finite(recorder)


def test_nonfinite_values_from_the_transforms_are_zeroed_and_counted(unsw_dir, recorder,
                                                                      monkeypatch, caplog):
    # a transform that turns large values into NaN stands in for any numeric accident
    def leaky_log(x):
        x = np.asarray(x, dtype=np.float64)
        return np.where(x > 40, np.nan, np.sign(x) * np.log1p(np.abs(x)))

    monkeypatch.setattr(preprocess, "signed_log1p", leaky_log)
    with caplog.at_level(logging.WARNING, logger="idsbench"):
        frame = run_benchmark("unsw", models=["test-recorder"], split="official",
                              data_dir=str(unsw_dir), out=None)
    record = frame.iloc[0].to_dict()
    assert record["status"] == "ok"
    assert record["data"]["nonfinite_after_transform"] > 0
    assert "the feature transforms produced" in caplog.text
    assert_all_finite(recorder)


def test_infinity_inside_the_transforms_is_an_idsbench_error(unsw_dir, monkeypatch):
    monkeypatch.setattr(preprocess, "signed_log1p", lambda x: np.where(x > 40, np.inf, x))
    with pytest.raises(DataError, match=r"dataset 'unsw': the feature transforms failed \(Input "
                                        r"X contains infinity.*a bug in idsbench"):
        prepare(DataConfig("unsw", split="official", data_dir=str(unsw_dir)), use_cache=False)


# ----------------------------------------------------- 6. classes absent from training rows


def test_class_in_test_but_not_in_training_is_an_error(tmp_path, publish):
    root = tmp_path / "data"
    train = write_csv(unsw_frame(class_counts=counts(12, drop=("Worms",)), seed=11),
                      root / "unsw-nb15" / TRAIN_NAME)
    test = write_csv(unsw_frame(class_counts=counts(6), seed=12), root / "unsw-nb15" / TEST_NAME)
    publish({"train": train, "test": test})
    cfg = DataConfig("unsw", task="multiclass", split="official", data_dir=str(root))
    with pytest.raises(DataError) as err:
        prepare(cfg)
    msg = str(err.value)
    assert "class(es) 'Worms' (6 test rows) have no training rows in " in msg
    assert str(train) in msg and "--split random" in msg


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_label_codes_given_to_models_are_0_to_k_minus_1(tmp_path, publish, recorder, task):
    # 'Analysis' occurs nowhere and 'Worms' only in training rows; the cap leaves 1-2 rows a class
    root = tmp_path / "data"
    train = write_csv(unsw_frame(class_counts=counts(12, drop=("Analysis",)), seed=13),
                      root / "unsw-nb15" / TRAIN_NAME)
    test = write_csv(unsw_frame(class_counts=counts(6, drop=("Analysis", "Worms")), seed=14),
                     root / "unsw-nb15" / TEST_NAME)
    publish({"train": train, "test": test})
    frame = run_benchmark("unsw", models=["test-recorder"], task=task, split="official",
                          max_train_rows=9, data_dir=str(root), out=None)
    record = frame.iloc[0].to_dict()
    assert record["status"] == "ok", record["error"]

    k = 2 if task == "binary" else 9
    assert len(record["classes"]) == k and "Analysis" not in record["classes"]
    fit = recorder[0]
    assert sorted(np.unique(fit["y"]).tolist()) == list(range(k))  # every class, no gaps
    assert set(np.unique(fit["y_val"]).tolist()) <= set(range(k))
    assert record["n_train"] + record["n_val"] == 18  # 9 attack categories, 2 rows each


# ---------------------------------------------------------------------------- 7. wrong files


def _truncated_gzip(path: Path) -> None:
    data = gzip.compress(unsw_frame(50).to_csv(index=False).encode())
    path.write_bytes(data[: len(data) // 2])


WRONG_FILES = {
    "truncated gzip": (TEST_NAME + ".gz", _truncated_gzip, "the gzip file is truncated or corrupt"),
    "empty file": (TEST_NAME, lambda p: p.write_bytes(b""), "the file is empty"),
    "header only": (TEST_NAME, lambda p: p.write_text(",".join(unsw_frame(2).columns) + "\n"),
                    "the file has a header but no data rows"),
    "ToN_IoT file": (TEST_NAME, lambda p: write_csv(toniot_frame(30), p),
                     "expected a UNSW-NB15 (partitioned CSVs) file, found the columns of ToN_IoT"),
    "html page": (TEST_NAME, lambda p: p.write_text("<!DOCTYPE html><html>Sign in</html>"),
                  "expected a CSV file, found an HTML page"),
    "lfs pointer": (TEST_NAME, lambda p: p.write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n"),
        "expected a CSV file, found a Git LFS pointer"),
    "binary junk": (TEST_NAME, lambda p: p.write_bytes(bytes(range(128, 256)) * 4),
                    "not UTF-8 text"),
}


@pytest.mark.parametrize("kind", sorted(WRONG_FILES))
def test_wrong_file_is_an_error_naming_it(tmp_path, isolated_cache, kind):
    name, write, expected = WRONG_FILES[kind]
    path = tmp_path / "unsw-nb15" / name
    path.parent.mkdir(parents=True)
    write(path)
    with pytest.raises(DataError) as err:
        prepare(DataConfig("unsw", split="random", data_dir=str(tmp_path)))
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_checksum_mismatch_is_refused_unless_allowed(unsw_dir, caplog):
    path = unsw_dir / "unsw-nb15" / TEST_NAME
    published = manifest_mod.get_manifest("unsw").files["test"].sha256
    # same rows and classes, one byte count changed: looks like the file, is not the file
    frame = pd.read_csv(path, encoding="utf-8-sig")
    frame.loc[0, "sbytes"] += 1
    write_csv(frame, path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    assert actual != published

    cfg = DataConfig("unsw", split="official", data_dir=str(unsw_dir))
    with pytest.raises(ChecksumError) as err:
        prepare(cfg)
    msg = str(err.value)
    assert msg.startswith(f"{path}: SHA-256 mismatch for {TEST_NAME}: expected {published}, "
                          f"got {actual}")
    assert "--allow-checksum-mismatch" in msg

    with caplog.at_level(logging.WARNING, logger="idsbench"):
        data = prepare(dataclasses.replace(cfg, allow_checksum_mismatch=True))
    assert published in caplog.text and actual in caplog.text
    status = {f["role"]: f["status"] for f in data.info["files"]}
    assert status == {"train": "verified", "test": "counts match, checksum differs"}


def test_ragged_row_is_an_error_naming_the_line(tmp_path):
    m = manifest_mod.get_manifest("unsw")
    path = write_csv(unsw_frame(10, seed=15), tmp_path / "r.csv", crlf=False)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[4] += ",extra"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot parse as CSV: .*line 5"):
        dio.load_table(path, m, use_cache=False)


# ---------------------------------------------------------------- the official UNSW split


def test_partitions_are_identified_by_content_when_names_are_swapped(tmp_path, publish):
    root = tmp_path / "data"
    train = write_csv(unsw_frame(class_counts=counts(12), seed=1), root / "unsw-nb15" / TEST_NAME)
    test = write_csv(unsw_frame(class_counts=counts(6), seed=2), root / "unsw-nb15" / TRAIN_NAME)
    publish({"train": train, "test": test})

    data = prepare(DataConfig("unsw", split="official", data_dir=str(root)))
    paths = {f["role"]: Path(f["path"]).name for f in data.info["files"]}
    assert paths == {"train": TEST_NAME, "test": TRAIN_NAME}
    assert len(data.y_test) == 60 and len(data.y_train) + len(data.y_val) == 120


def test_missing_partition_names_the_file_size_and_checksum(tmp_path, publish):
    root = tmp_path / "data"
    test = write_csv(unsw_frame(class_counts=counts(6), seed=2), root / "unsw-nb15" / TEST_NAME)
    publish({"test": test})
    spec = manifest_mod.get_manifest("unsw").files["train"]  # the real training partition

    with pytest.raises(DataError) as err:
        prepare(DataConfig("unsw", split="official", data_dir=str(root)))
    msg = str(err.value)
    assert msg.startswith("dataset 'unsw', split 'official': the train partition ("
                          f"{TRAIN_NAME}, {spec.rows:,} rows, {spec.bytes:,} bytes, SHA-256 "
                          f"{spec.sha256}) was not found in {root}")
    assert f"Found: {TEST_NAME} (test, 60 rows)" in msg
    assert "'--split random' works on the partitions present" in msg

    data = prepare(DataConfig("unsw", split="random", data_dir=str(root)))
    assert len(data.y_test) == 12 and len(data.y_train) + len(data.y_val) == 48


# ------------------------------------------------------------------------- 8. bad options


def invoke(*args: str):
    return CliRunner().invoke(cli, ["run", *args])


@pytest.mark.parametrize("args, expected", [
    (["--models", "xgbost", "--dataset", "unsw"],
     "unknown model 'xgbost'; known models: "),
    (["--models", "stump", "--dataset", "unsw-nb51"],
     "unknown dataset 'unsw-nb51'; known datasets: toniot, unsw. Did you mean 'unsw'?"),
    (["--models", "stump", "--dataset", "unsw", "--seeds", "0,one"],
     "--seeds '0,one': 'one' is not an integer"),
    (["--models", "stump", "--dataset", "unsw", "--seeds", "1.5"],
     "--seeds '1.5': '1.5' is not an integer"),
    (["--models", "stump", "--dataset", "unsw", "--seeds", "4..1"],
     "--seeds '4..1': the range '4..1' is empty"),
    (["--models", "stump", "--dataset", "unsw", "--seeds", "-1"],
     "seeds must be non-negative integers, got -1"),
    (["--models", "stump", "--dataset", "unsw", "--max-train-rows", "0"],
     "Invalid value for '--max-train-rows': 0 is not in the range x>=1"),
    (["--models", "stump", "--dataset", "unsw", "--epochs", "0"],
     "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (["--models", "stump", "--dataset", "unsw", "--seeds", "4294967296"],
     "seeds must be at most 4294967295"),
    (["--models", "lstm", "--dataset", "unsw", "--lr", "nan"],
     "--lr nan: expected a finite number above 0"),
    (["--models", "lstm", "--dataset", "unsw", "--device", "tpu"],
     "--device 'tpu': expected 'auto', 'cpu' or 'cuda[:N]'"),
    (["--models", "stump", "--dataset", "unsw", "--split-seed", "-1"],
     "Invalid value for '--split-seed'"),
    (["--models", "lstm-resnet-cbam", "--dataset", "unsw", "--model-param", "attention=maybe"],
     "parameter 'attention' expects true or false (default True), got 'maybe'"),
    (["--models", "lstm", "--dataset", "unsw", "--model-param", "lstm:hidden=2.5"],
     "parameter 'hidden' expects an integer"),
    (["--models", "xgboost", "--dataset", "unsw", "--model-param", "max_depth=abc"],
     "model 'xgboost': parameter 'max_depth' expects a finite number (default 8), got 'abc'"),
])
def test_bad_option_exits_2_with_a_message(args, expected):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_unknown_model_lists_valid_ones_and_suggests_the_closest():
    result = invoke("--models", "xgbost", "--dataset", "unsw")
    assert result.exit_code == 2
    assert "stump" in result.output and "Did you mean 'xgboost'?" in result.output


def test_max_train_rows_below_the_number_of_classes(unsw_dir, tmp_path):
    result = invoke("--models", "stump", "--dataset", "unsw", "--data-dir", str(unsw_dir),
                    "--max-train-rows", "3", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2, result.output
    assert ("error: --max-train-rows 3 is smaller than the number of classes in the training "
            "rows (10: ") in result.output
    assert "use at least 10" in result.output


def test_output_path_that_is_a_file_or_unwritable(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    result = invoke("--models", "stump", "--dataset", "unsw", "--out", str(a_file))
    assert result.exit_code == 2
    assert f"error: --out {a_file}: exists and is a file; expected a directory" in result.output

    below_a_file = a_file / "runs"
    result = invoke("--models", "stump", "--dataset", "unsw", "--out", str(below_a_file))
    assert result.exit_code == 2
    assert f"error: --out {below_a_file}: cannot write there" in result.output


# ------------------------------------------------------------------------- 9. interruption


@pytest.fixture
def interrupting_model():
    """A model whose second fit raises KeyboardInterrupt while ``state['armed']``."""
    state = {"fits": 0, "armed": True}

    @register_model("test-interrupt", description="Ctrl-C on its second job")
    class Interrupting(BaseModel):
        def __init__(self, random_state=0):
            self.random_state = random_state

        def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
            state["fits"] += 1
            if state["armed"] and state["fits"] == 2:
                raise KeyboardInterrupt
            self.k_ = int(np.max(y)) + 1
            return self

        def predict_proba(self, X):
            return np.full((len(X), self.k_), 1.0 / self.k_)

    yield state
    unregister_model("test-interrupt")


def test_interrupted_run_keeps_records_and_resume_runs_only_the_rest(unsw_dir, tmp_path,
                                                                      interrupting_model, caplog):
    runs = tmp_path / "runs"
    with caplog.at_level(logging.WARNING, logger="idsbench"):
        result = invoke("--models", "test-interrupt", "--dataset", "unsw", "--seeds", "0,1,2",
                        "--data-dir", str(unsw_dir), "--out", str(runs))
    assert result.exit_code == 1 and "Aborted" in result.output  # click's answer to Ctrl-C
    (run_dir,) = runs.iterdir()
    assert "idsbench run --resume" in caplog.text and str(run_dir) in caplog.text

    records = run_dir / "records"
    (first,) = records.glob("*.json")
    assert first.name.endswith("-seed0.json")
    assert json.loads(first.read_text())["status"] == "ok"
    kept = first.read_text()
    # what a process killed while writing leaves behind: a partly written temporary file
    partial = records / f".{first.name.replace('seed0', 'seed1')}.4242.tmp"
    partial.write_text('{"job_id": "unsw-binary-official-test-interrupt-seed1", "status": "ok", "met')

    interrupting_model.update(fits=0, armed=False)
    # a setting beside --resume would be ignored: it is refused, and nothing runs
    refused = invoke("--resume", str(run_dir), "--device", "cpu", "--seeds", "7")
    assert refused.exit_code == 2
    assert "--seeds, --device cannot change a run" in refused.output or \
        "--device, --seeds cannot change a run" in refused.output, refused.output
    assert interrupting_model["fits"] == 0
    result = invoke("--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    assert interrupting_model["fits"] == 2  # seeds 1 and 2 only
    assert first.read_text() == kept
    seeds = sorted(json.loads(p.read_text())["seed"] for p in records.glob("*.json"))
    assert seeds == [0, 1, 2]
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["seed"] for line in lines) == [0, 1, 2]

    board = CliRunner().invoke(cli, ["leaderboard", str(run_dir)])
    assert board.exit_code == 0 and "| test-interrupt | 3 " in board.output


KILLABLE_MODEL = '''
import os, time
import numpy as np
from idsbench.models.base import BaseModel

class Slow(BaseModel):
    """Hangs on seed 1 while IDSBENCH_TEST_HANG is set (the test kills the process there)."""

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        if self.random_state == 1 and os.environ.get("IDSBENCH_TEST_HANG"):
            time.sleep(120)
        self.k_ = int(np.max(y)) + 1
        return self

    def predict_proba(self, X):
        return np.full((len(X), self.k_), 1.0 / self.k_)
'''


@pytest.mark.slow  # a fresh interpreter imports torch: seconds on a busy machine
def test_killed_process_leaves_finished_records_and_resumes(unsw_dir, tmp_path, monkeypatch):
    (tmp_path / "killable.py").write_text(KILLABLE_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    runs = tmp_path / "runs"
    manifests = json.dumps({f: dataclasses.asdict(s) for f, s in
                            manifest_mod.get_manifest("unsw").files.items()})
    # the child sees the same synthetic manifest as this test
    script = (
        "import dataclasses, json, sys\n"
        "from idsbench.data import manifest as mm\n"
        "real = mm._load_all()\n"
        "specs = {r: mm.FileSpec(**{**s, 'names': tuple(s['names']), "
        "'published_at': tuple(s['published_at'])}) for r, s in json.loads(sys.argv[1]).items()}\n"
        "mm._load_all = lambda: {**real, 'unsw': dataclasses.replace(real['unsw'], files=specs)}\n"
        "from idsbench.cli import cli\n"
        "cli(sys.argv[2:], prog_name='idsbench')\n")
    env = {**os.environ, "IDSBENCH_TEST_HANG": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[1])])}
    log_path = tmp_path / "child.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, manifests, "-q", "run", "--models", "killable:Slow",
             "--dataset", "unsw", "--seeds", "0,1", "--data-dir", str(unsw_dir), "--out",
             str(runs)], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            deadline = time.monotonic() + 90
            while not list(runs.glob("*/records/*.json")):
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the first job never finished"
                time.sleep(0.2)
            time.sleep(0.5)  # let the second job start
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    (run_dir,) = runs.iterdir()
    (first,) = (run_dir / "records").glob("*.json")
    assert json.loads(first.read_text())["seed"] == 0
    frame = run_benchmark("unsw", resume=run_dir)
    assert frame["seed"].tolist() == [1] and frame.attrs["skipped"] == 1
    assert sorted(json.loads(p.read_text())["seed"]
                  for p in (run_dir / "records").glob("*.json")) == [0, 1]


# ------------------------------------------------------------------- 10. failing models


@pytest.fixture
def failing_models():
    @register_model("test-raises", description="raises in fit")
    class Raises(BaseModel):
        def __init__(self, random_state=0):
            self.random_state = random_state

        def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
            raise RuntimeError("deliberate failure in fit")

    @register_model("test-nan-proba", description="returns NaN probabilities")
    class NanProba(BaseModel):
        def __init__(self, random_state=0):
            self.random_state = random_state

        def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
            self.k_ = int(np.max(y)) + 1
            return self

        def predict_proba(self, X):
            return np.full((len(X), self.k_), np.nan)

    yield ["test-raises", "test-nan-proba"]
    unregister_model("test-raises")
    unregister_model("test-nan-proba")


def test_failed_models_are_recorded_and_listed_under_failed(unsw_dir, tmp_path, failing_models):
    runs = tmp_path / "runs"
    result = invoke("--models", ",".join(["stump", *failing_models]), "--dataset", "unsw",
                    "--data-dir", str(unsw_dir), "--out", str(runs))
    assert result.exit_code == 1, result.output
    assert "2 job(s) failed" in result.output

    (run_dir,) = runs.iterdir()
    records = {r["model"]: r for r in map(json.loads, (run_dir / "records.jsonl").open())}
    assert records["stump"]["status"] == "ok" and "metrics" in records["stump"]
    assert records["test-raises"]["status"] == "failed"
    assert records["test-raises"]["error"] == "RuntimeError: deliberate failure in fit"
    assert records["test-nan-proba"]["status"] == "failed"
    assert records["test-nan-proba"]["error"].startswith(
        "ModelError: test-nan-proba: predict_proba returned NaN or infinite values in 60 of 60 rows")
    for name in failing_models:
        assert "metrics" not in records[name]

    board = (run_dir / "leaderboard.md").read_text()
    table, failed = board.split("### Failed")
    assert "| stump " in table
    assert not any(name in table for name in failing_models)  # never as a score
    assert "`test-raises` seed 0: RuntimeError: deliberate failure in fit" in failed
    assert "`test-nan-proba` seed 0: ModelError: " in failed


def test_yes_and_no_are_booleans_for_model_params():
    from idsbench.cli import parse_model_params

    out = parse_model_params(("attention=no", "lstm-resnet-cbam:lstm=On"), ["lstm-resnet-cbam"])
    assert out == {"lstm-resnet-cbam": {"attention": False, "lstm": True}}


def test_a_model_given_as_a_file_path_is_recorded_and_ranked(unsw_dir, tmp_path, monkeypatch):
    """dir/file.py:Factory must not turn the job id into nested folders (the record got lost)."""
    module = tmp_path / "code" / "my_detector.py"
    module.parent.mkdir()
    module.write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "from idsbench.models.base import sklearn_model\n"
        "forest = sklearn_model(lambda random_state=0: LogisticRegression(max_iter=200))\n")
    target = f"{module}:forest"
    out = tmp_path / "runs"
    result = invoke("--models", f"{target},stump", "--dataset", "unsw", "--data-dir",
                    str(unsw_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    run = next(out.iterdir())
    names = sorted(p.name for p in (run / "records").iterdir())
    assert len(names) == 2 and all("/" not in n for n in names), names
    lines = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    assert sorted(r["model"] for r in lines) == sorted([target, "stump"])
    assert f"| {target}" in (run / "leaderboard.md").read_text()


def test_per_model_training_options_are_applied_and_recorded(unsw_dir, tmp_path):
    frame = run_benchmark("unsw", models=["lstm", "cnn"], epochs=1, out=None,
                          data_dir=str(unsw_dir), model_params={"lstm": {"epochs": 3, "patience": 5}})
    rec = {r["model"]: r for r in frame.to_dict("records")}
    assert rec["lstm"]["status"] == "ok", rec["lstm"]["error"]
    assert rec["lstm"]["training"]["epochs"] == 3 and len(rec["lstm"]["history"]) == 3
    assert rec["cnn"]["training"]["epochs"] == 1 and len(rec["cnn"]["history"]) == 1


def test_a_file_with_one_class_is_an_error_before_any_split(tmp_path, isolated_cache):
    from idsbench.audit import audit_dataset

    frame = toniot_frame(class_counts={"normal": 60})
    write_csv(frame, tmp_path / "ton-iot" / "train_test_network.csv")
    for call in (lambda: prepare(DataConfig("toniot", data_dir=str(tmp_path),
                                            allow_checksum_mismatch=True)),
                 lambda: audit_dataset(DataConfig("toniot", data_dir=str(tmp_path),
                                                  allow_checksum_mismatch=True))):
        with pytest.raises(DataError, match=r"hold only normal rows \(column 'label'"):
            call()
    result = invoke("--models", "stump", "--dataset", "toniot", "--data-dir", str(tmp_path),
                    "--allow-checksum-mismatch", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2 and "hold only normal rows" in result.output
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_cap_exceeded_to_keep_every_class_is_said(unsw_dir, caplog):
    with caplog.at_level(logging.WARNING):
        data = prepare(DataConfig("unsw", data_dir=str(unsw_dir), max_train_rows=10))
    kept = len(data.y_train) + len(data.y_val)
    assert kept > 10
    assert f"--max-train-rows 10: kept {kept} rows" in caplog.text
    assert data.info["train_pool_rows_after_cap"] == kept
    caplog.clear()  # the second load comes from the cache, and says it again
    with caplog.at_level(logging.WARNING):
        prepare(DataConfig("unsw", data_dir=str(unsw_dir), max_train_rows=10))
    assert f"--max-train-rows 10: kept {kept} rows" in caplog.text


def test_verify_hashes_the_bytes_again(unsw_dir):
    """A file changed in place with its size and modification time kept is still caught."""
    ok = CliRunner().invoke(cli, ["datasets", "verify", "unsw", "--data-dir", str(unsw_dir)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("OK ") == 2
    path = unsw_dir / "unsw-nb15" / TEST_NAME
    st = path.stat()
    raw = bytearray(path.read_bytes())
    # one digit of the first data row's first column (its id) becomes another digit
    at = raw.index(b"\n") + 1
    assert raw[at:at + 1].isdigit(), raw[:at + 20]
    raw[at:at + 1] = b"7" if raw[at:at + 1] != b"7" else b"8"
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    bad = CliRunner().invoke(cli, ["datasets", "verify", "unsw", "--data-dir", str(unsw_dir)])
    assert bad.exit_code != 0
    assert bad.output.count("OK ") < 2, bad.output


def test_cuda_without_a_gpu_stops_a_local_run_before_any_job(unsw_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "runs"
    result = invoke("--models", "lstm,stump", "--dataset", "unsw", "--data-dir", str(unsw_dir),
                    "--device", "cuda", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "--device cuda was asked for, but torch sees no CUDA device" in result.output
    assert not out.exists() or not list(out.iterdir())  # no half-made run folder is left


def test_model_param_types_follow_defaults_and_annotations():
    from idsbench.errors import ConfigError
    from idsbench.models.registry import check_params, get_model_spec

    @register_model("test-typed", description="typed parameters")
    def make(random_state=0, C=1, depth: int = 3, flag=True):
        raise AssertionError("never built here")

    try:
        spec = get_model_spec("test-typed")
        check_params(spec, {"C": 0.5, "depth": 4, "flag": False})  # unannotated 1 takes 0.5
        for bad, expected in [({"depth": 2.5}, "an integer"), ({"C": "big"}, "a finite number"),
                              ({"C": float("nan")}, "a finite number"),
                              ({"flag": "no"}, "true or false")]:
            with pytest.raises(ConfigError, match=expected):
                check_params(spec, bad)
    finally:
        unregister_model("test-typed")
