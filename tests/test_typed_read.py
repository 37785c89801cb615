"""The fast (typed) reading path against the general one (issue 8).

``load_table`` parses a well-formed file straight into its types and gives up on anything
unusual, leaving it to ``parse_csv`` + ``clean_table``.  Whatever path a file takes, the
table and the quality report must be the ones the general path gives: these tests build files
that should take each path and compare the two results.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from idsbench.data import io as dio
from idsbench.data import typed
from idsbench.data.manifest import get_manifest
from idsbench.errors import ConfigError, DataError

from .synth import toniot_frame, unsw_frame, write_csv


def general_path(path: Path, manifest, policy: str = "impute"):
    """The table and report of the general path alone (the fast path never tried)."""
    data = dio.read_bytes(path)
    report = dio.QualityReport(file=str(path), bad_value_policy=policy)
    df = dio.parse_csv(path, data, dio.text_columns(manifest))
    report.rows_read = len(df)
    df = dio.clean_table(df, manifest, path, policy, report,
                         lines=dio.row_lines(data, len(df)))
    return df, report


def assert_same_as_general(path: Path, manifest, policy: str = "impute") -> pd.DataFrame:
    expected, expected_report = general_path(path, manifest, policy)
    table, report, _ = dio.load_table(path, manifest, policy=policy, use_cache=False)
    pd.testing.assert_frame_equal(table, expected)
    assert report.to_dict() == expected_report.to_dict()
    assert list(report.placeholders) == list(expected_report.placeholders)  # same order too
    return table


def takes_fast_path(path: Path, manifest) -> bool:
    return typed.read_typed(path, dio.read_bytes(path), manifest) is not None


# ------------------------------------------------------------------------- well-formed files


@pytest.mark.parametrize("dataset", ["toniot", "unsw"])
@pytest.mark.parametrize("bom,crlf", [(True, True), (False, False)])
def test_well_formed_synthetic_files_take_the_fast_path(tmp_path, dataset, bom, crlf):
    m = get_manifest(dataset)
    frame = toniot_frame(600, seed=3) if dataset == "toniot" else unsw_frame(600, seed=3)
    path = write_csv(frame, tmp_path / "f.csv.gz", bom=bom, crlf=crlf)
    assert takes_fast_path(path, m)
    table = assert_same_as_general(path, m)
    assert len(table) == 600


@pytest.mark.realdata
@pytest.mark.parametrize("dataset,name,rows", [
    ("toniot", "ton-iot/train_test_network.csv.gz", 211043),
    ("unsw", "unsw-nb15/UNSW_NB15_testing-set.csv.gz", 82332)])
def test_real_files_take_the_fast_path_and_match_the_general_one(real_data_dir, dataset, name,
                                                                 rows):
    m = get_manifest(dataset)
    path = real_data_dir / name
    assert takes_fast_path(path, m)
    table = assert_same_as_general(path, m)
    assert len(table) == rows


def test_class_name_variants_are_renamed_on_the_fast_path(tmp_path):
    m = get_manifest("toniot")
    frame = toniot_frame(300, seed=1)
    frame["type"] = frame["type"].replace({"ddos": "DDoS", "normal": "Normal"})
    path = write_csv(frame, tmp_path / "f.csv")
    assert takes_fast_path(path, m)
    table = assert_same_as_general(path, m)
    assert set(table["type"]) <= set(m.classes["multiclass"])


# ----------------------------------------------------------- unusual files: the general path


def _edit(frame: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


UNUSUAL = {
    # name: (change to a ToN_IoT-shaped frame, or a header edit)
    "text in a number column": lambda f: _edit(f, "src_bytes", 5, "12abc"),
    "blank number": lambda f: _edit(f, "duration", 7, ""),
    "NaN spelled out": lambda f: _edit(f, "dst_bytes", 3, "NaN"),
    "infinity": lambda f: _edit(f, "dst_pkts", 4, "inf"),
    "padded number": lambda f: _edit(f, "src_pkts", 2, " 7"),
    "padded placeholder": lambda f: _edit(f, "http_trans_depth", 2, " - "),
    "blank flag": lambda f: _edit(f, "dns_AA", 6, ""),
    "padded flag": lambda f: _edit(f, "dns_RD", 6, " T"),
    "flag that is not T/F": lambda f: _edit(f, "dns_RA", 1, "maybe"),
    "padded category": lambda f: _edit(f, "proto", 0, " tcp "),
    "blank category": lambda f: _edit(f, "service", 9, ""),
    "category padded by a no-break space": lambda f: _edit(f, "conn_state", 8, "S0\u00a0"),
    "padded class": lambda f: _edit(f, "type", 8, f"  {f['type'][8]} "),
    "placeholder in an inferred column": lambda f: f.assign(ts=["-"] + [1] * (len(f) - 1)),
}


@pytest.mark.parametrize("change", list(UNUSUAL))
@pytest.mark.parametrize("policy", ["impute", "drop"])
def test_unusual_files_are_read_as_the_general_path_reads_them(tmp_path, change, policy):
    m = get_manifest("toniot")
    path = write_csv(UNUSUAL[change](toniot_frame(300, seed=2)), tmp_path / "f.csv")
    assert_same_as_general(path, m, policy)


@pytest.mark.parametrize("change", ["text in a number column", "blank number", "NaN spelled out",
                                    "infinity", "blank flag", "flag that is not T/F",
                                    "placeholder in an inferred column"])
def test_files_the_fast_path_cannot_read_go_to_the_general_path(tmp_path, change):
    path = write_csv(UNUSUAL[change](toniot_frame(300, seed=2)), tmp_path / "f.csv")
    assert not takes_fast_path(path, get_manifest("toniot"))


@pytest.mark.parametrize("header", ["spaces", "index column", "blank name", "quoted"])
def test_headers_that_need_cleaning_go_to_the_general_path(tmp_path, header):
    m = get_manifest("unsw")
    frame = unsw_frame(200, seed=5)
    if header == "spaces":
        frame = frame.rename(columns={"sbytes": " sbytes "})
    elif header == "index column":
        frame.insert(0, "Unnamed: 0", np.arange(len(frame)))
    elif header == "blank name":
        frame.insert(0, "", np.arange(len(frame)))
    path = write_csv(frame, tmp_path / "f.csv")
    if header == "quoted":
        text = path.read_bytes().decode("utf-8-sig").replace("dur,", '"dur",', 1)
        path.write_bytes(text.encode("utf-8"))
    assert not takes_fast_path(path, m)
    assert_same_as_general(path, m)


@pytest.mark.parametrize("change,message", [
    (lambda f: _edit(f, "type", 3, "bruteforce"), "bruteforce"),
    (lambda f: _edit(f, "label", 3, 2), r"must hold 0 \(normal\) or 1"),
    (lambda f: f.assign(label=1 - f["label"]), "disagree"),
])
def test_errors_come_from_the_general_path_with_its_message(tmp_path, change, message):
    path = write_csv(change(toniot_frame(300, seed=2)), tmp_path / "f.csv")
    with pytest.raises(DataError, match=message):
        dio.load_table(path, get_manifest("toniot"), use_cache=False)


# ------------------------------------------------------------------------- the cache write


@pytest.mark.parametrize("change", [None, "text in a number column", "padded category"])
def test_the_cache_is_written_in_a_thread_and_read_back(tmp_path, isolated_cache, change):
    m = get_manifest("toniot")
    frame = toniot_frame(400, seed=6)
    path = write_csv(UNUSUAL[change](frame) if change else frame, tmp_path / "f.csv")
    first, report, sha = dio.load_table(path, m)
    dio.wait_for_cache_writes()
    assert not dio._PENDING_WRITES
    files = sorted(p.name for p in (isolated_cache / "tables").iterdir())
    assert [f for f in files if f.endswith(".arrow")] and not [f for f in files if "tmp" in f]
    again, report2, sha2 = dio.load_table(path, m)
    pd.testing.assert_frame_equal(again, first)
    assert report2.to_dict() == report.to_dict() and sha2 == sha


def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("IDSBENCH_CACHE_DIR", str(blocker))
    path = write_csv(toniot_frame(200, seed=7), tmp_path / "f.csv")
    with caplog.at_level(logging.WARNING, logger="idsbench.data.io"):
        table, _, _ = dio.load_table(path, get_manifest("toniot"))
        dio.wait_for_cache_writes()
    assert len(table) == 200
    assert any("could not write the cache" in r.getMessage() for r in caplog.records)


# ------------------------------------------------- found by a fresh-user trial (issue 8)


def test_categories_that_look_like_numbers_stay_as_written_on_both_paths(tmp_path):
    m = get_manifest("toniot")
    frame = toniot_frame(300, seed=2)
    frame["proto"] = ["06", "17", "1.10", "nan", "1e3"] * 60
    fast = write_csv(frame, tmp_path / "fast.csv")
    table = assert_same_as_general(fast, m)
    assert sorted(set(table["proto"])) == ["06", "1.10", "17", "1e3", "nan"]
    # the same column in a file that takes the general path (a bad number elsewhere)
    slow = write_csv(UNUSUAL["text in a number column"](frame), tmp_path / "slow.csv")
    assert not takes_fast_path(slow, m)
    slow_table, _, _ = dio.load_table(slow, m, use_cache=False)
    assert slow_table["proto"].tolist() == table["proto"].tolist()


def test_an_unknown_policy_is_refused_on_every_path(tmp_path):
    path = write_csv(toniot_frame(100, seed=1), tmp_path / "f.csv")
    with pytest.raises(ConfigError, match="--bad-values 'Drop'"):
        dio.load_table(path, get_manifest("toniot"), policy="Drop", use_cache=False)


def test_a_name_twice_in_the_header_is_an_error(tmp_path):
    frame = toniot_frame(100, seed=1)
    frame.insert(3, "extra", "zzz")
    path = write_csv(frame.rename(columns={"extra": "proto"}), tmp_path / "f.csv")
    with pytest.raises(DataError, match="'proto' more than once"):
        dio.load_table(path, get_manifest("toniot"), use_cache=False)


@pytest.mark.parametrize("column", ["proto", "src_bytes", "dns_query"])
def test_a_byte_that_is_not_utf8_in_a_cell_is_a_clear_error(tmp_path, column):
    frame = toniot_frame(100, seed=1)
    frame[column] = frame[column].astype(object)
    frame.loc[5, column] = "MARK"
    path = write_csv(frame, tmp_path / "f.csv")
    path.write_bytes(path.read_bytes().replace(b"MARK", b"M\xe9K"))
    with pytest.raises(DataError, match=r"f\.csv.*(not UTF-8|UTF-8)"):
        dio.load_table(path, get_manifest("toniot"), use_cache=False)


def test_a_file_replaced_during_its_load_is_not_served_the_old_table(tmp_path, isolated_cache,
                                                                     monkeypatch):
    m = get_manifest("toniot")
    path = write_csv(toniot_frame(300, seed=1), tmp_path / "f.csv")
    real = typed.read_typed

    def replace_meanwhile(*args, **kwargs):
        out = real(*args, **kwargs)
        write_csv(toniot_frame(100, seed=2), path)  # new content, new size and mtime
        return out

    monkeypatch.setattr(dio, "read_typed", replace_meanwhile)
    first, _, _ = dio.load_table(path, m)
    monkeypatch.setattr(dio, "read_typed", real)
    dio.wait_for_cache_writes()
    assert len(first) == 300
    again, _, _ = dio.load_table(path, m)
    assert len(again) == 100
