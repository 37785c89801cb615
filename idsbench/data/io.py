"""Finding, verifying, reading and cleaning the dataset files.

Reading is strict about what it cannot fix and explicit about what it does fix: every change to
the data (a renamed header, a bad number set to missing, a row dropped, a class name normalised)
is counted in a :class:`QualityReport` that ends up in every result record.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import re
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from idsbench.data.manifest import FileSpec, Manifest
from idsbench.data.typed import (UNNAMED, header_names, kept_columns, numeric_columns, read_typed,
                                 string_columns)
from idsbench.errors import ChecksumError, ConfigError, DataError, closest

log = logging.getLogger(__name__)

ENV_DATA_DIR = "IDSBENCH_DATA_DIR"
ENV_CACHE_DIR = "IDSBENCH_CACHE_DIR"
#: bump when the cleaning rules change, so cached tables are rebuilt
CLEAN_VERSION = 5
BAD_VALUE_POLICIES = ("impute", "drop")

_TRUE = {"t", "true", "1", "yes", "y"}
_FALSE = {"f", "false", "0", "no", "n"}


# --------------------------------------------------------------------------------------------
# where files are looked for


def default_data_dir() -> Path:
    """The per-user data directory (used when neither --data-dir nor the variable is set)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("idsbench")) / "datasets"


def cache_dir() -> Path:
    """Where parsed tables and preprocessed arrays are cached (``$IDSBENCH_CACHE_DIR``)."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get(ENV_CACHE_DIR) or user_cache_dir("idsbench"))


def search_dirs(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data root and where it came from (``--data-dir``, the variable, or the default)."""
    if data_dir:
        return Path(data_dir).expanduser(), "--data-dir"
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser(), f"${ENV_DATA_DIR}"
    return default_data_dir(), "the per-user data directory"


def candidate_files(manifest: Manifest, root: Path) -> list[Path]:
    """Files under ``root`` (or ``root/<subdir>``) whose name is one the dataset uses."""
    names = {n.lower() for spec in manifest.files.values() for n in spec.names}
    found = []
    for folder in (root / manifest.subdir, root):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            base = path.name.lower()
            base = base[:-3] if base.endswith(".gz") else base
            if base in names and path.is_file() and path not in found:
                found.append(path)
    return found


# --------------------------------------------------------------------------------------------
# reading bytes and checksums


try:  # Intel's ISA-L inflates gzip in under half zlib's time (python-isal); same results
    from isal.igzip import decompress as _gunzip
    from isal.isal_zlib import error as _InflateError
except ImportError:  # pragma: no cover - isal is a dependency; an install without it still reads
    _gunzip, _InflateError = gzip.decompress, zlib.error


def read_bytes(path: Path) -> bytes:
    """The decompressed content of a plain or gzip-compressed file, with clear errors."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                data = _gunzip(fh.read())
            else:
                data = fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error, _InflateError) as exc:
        raise DataError(f"{path}: the gzip file is truncated or corrupt ({exc}); "
                        "download it again or decompress a good copy") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if not data or data.isspace():  # data.strip() would copy the whole file
        raise DataError(f"{path}: the file is empty (expected a CSV with a header row)")
    _refuse_non_csv(path, data)
    return data


#: leading bytes of things that are often saved under a CSV name by mistake
_NOT_CSV = (
    (b"PK\x03\x04", "a zip archive; unzip it and point idsbench at the CSV inside"),
    (b"version https://git-lfs", "a Git LFS pointer, not the data; run 'git lfs pull' or "
                                  "download the file itself"),
    (b"<!doctype html", "an HTML page (a failed or redirected download?); download it again"),
    (b"<html", "an HTML page (a failed or redirected download?); download it again"),
)


def _refuse_non_csv(path: Path, data: bytes) -> None:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for magic, what in _NOT_CSV:
        if head.startswith(magic.lower()):
            raise DataError(f"{path}: expected a CSV file, found {what}")


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _sha_index() -> tuple[Path, dict]:
    index_path = cache_dir() / "sha256-index.json"
    try:
        return index_path, json.loads(index_path.read_text())
    except (OSError, ValueError):
        return index_path, {}


def known_sha256(path: Path) -> str | None:
    """The remembered SHA-256 for this (path, size, mtime), or None."""
    return _sha_index()[1].get(_stat_key(path))


def forget_sha256(path: Path) -> None:
    """Drop the remembered SHA-256 of ``path``, so the next load hashes its bytes again."""
    index_path, index = _sha_index()
    key = f"{Path(path).resolve()}|"
    kept = {k: v for k, v in index.items() if not k.startswith(key)}
    if len(kept) != len(index):
        try:
            _atomic_write_text(index_path, json.dumps(kept))
        except OSError:
            pass


def remember_sha256(path: Path, digest: str, stat_key: str | None = None) -> None:
    """Remember ``digest`` as the SHA-256 of ``path`` at its size and mtime (``stat_key``,
    taken before its bytes were read; by default, now)."""
    index_path, index = _sha_index()
    index[stat_key or _stat_key(path)] = digest
    try:
        _atomic_write_text(index_path, json.dumps(index))
    except OSError:  # a read-only cache is not an error
        pass


def file_sha256(path: Path, data: bytes | None = None) -> str:
    """SHA-256 of the decompressed content, remembered per (path, size, mtime)."""
    known = known_sha256(path)
    if known is not None:
        return known
    stat_key = _stat_key(path)
    digest = hashlib.sha256(data if data is not None else read_bytes(path)).hexdigest()
    remember_sha256(path, digest, stat_key)
    return digest


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# the quality report


@dataclass
class QualityReport:
    """What cleaning changed in one file; stored in every record that used the file."""

    file: str
    rows_read: int = 0
    rows_kept: int = 0
    bad_value_policy: str = "impute"
    dropped_columns: list[str] = field(default_factory=list)
    renamed_columns: dict[str, str] = field(default_factory=dict)
    bad_values: dict[str, dict] = field(default_factory=dict)
    nonfinite: dict[str, int] = field(default_factory=dict)
    placeholders: dict[str, int] = field(default_factory=dict)
    class_renames: dict[str, str] = field(default_factory=dict)
    rows_with_bad_values: int = 0  # rows with any bad or non-finite numeric cell
    rows_dropped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        return cls(**d)


# --------------------------------------------------------------------------------------------
# parsing and cleaning


def text_columns(manifest: Manifest) -> tuple[str, ...]:
    """Columns parsed as text as written: categories, text, the class name."""
    return tuple(string_columns(manifest, list(manifest.text))
                 + [manifest.targets["multiclass"]])


def parse_csv(path: Path, data: bytes, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Parse CSV bytes; header variants (BOM, spaces, CRLF) are handled here.

    No text is turned into a missing value while parsing (``keep_default_na=False``): a blank
    cell, ``NaN``, ``NA`` or ``None`` stay as written, so cleaning can tell a blank count
    (a bad value) from a literal ``NaN`` (a non-finite value) and report each for what it is.
    ``text_columns`` (names after stripping spaces) are read as text, as written: a category
    spelled ``06`` stays ``06``, not the number 6.  A name that appears twice in the header is
    an error (the parser would rename the second copy and it would vanish unreported).
    """
    names = header_names(data)
    seen = [n.replace("\ufeff", "").strip() for n in names]
    twice = sorted({n for n in seen if seen.count(n) > 1 and not UNNAMED.match(n)})
    if twice:
        raise DataError(f"{path}: the header names column(s) {', '.join(map(repr, twice))} more "
                        "than once; expected each column once")
    wanted = set(text_columns)
    dtype = {raw: str for raw, clean in zip(names, seen) if clean in wanted} or None
    try:
        # "utf8" is pyarrow's own name: any other spelling adds a transcoding pass over the file
        df = pd.read_csv(io.BytesIO(data), engine="pyarrow", encoding="utf8",
                         keep_default_na=False, dtype=dtype)
    except Exception:  # noqa: BLE001 - pyarrow is strict; the C engine gives the readable error
        try:
            df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", low_memory=False,
                             keep_default_na=False, dtype=dtype)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "is this really a CSV file?") from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise DataError(f"{path}: cannot parse as CSV: {exc}") from exc
    return df


def normalise_header(df: pd.DataFrame, report: QualityReport) -> pd.DataFrame:
    """Strip BOMs and spaces from names; drop unnamed index columns."""
    renamed = {}
    for col in df.columns:
        clean = str(col).replace("\ufeff", "").strip()
        if clean != col:
            renamed[col] = clean
    if renamed:
        df = df.rename(columns=renamed)
        report.renamed_columns = {str(k): v for k, v in renamed.items()}
    drop = [c for c in df.columns if UNNAMED.match(str(c))]
    if drop:
        df = df.drop(columns=drop)
        report.dropped_columns = [str(c) for c in drop]
    if df.columns.duplicated().any():
        dups = sorted(set(df.columns[df.columns.duplicated()]))
        raise DataError(f"{report.file}: duplicate column names after cleaning the header: {dups}")
    return df


#: at most this many missing columns are listed by name in an error
_MAX_LISTED = 12


def check_columns(df: pd.DataFrame, manifest: Manifest, path: Path) -> None:
    """Every required column must be present; the error lists the closest names present.

    When the columns are those of another known dataset the error says which one: a ToN_IoT
    file saved under a UNSW-NB15 name is an easy mix-up.
    """
    present = [str(c) for c in df.columns]
    required = manifest.required_columns()
    missing = [c for c in required if c not in present]
    if not missing:
        return

    other = _other_dataset(present, manifest)
    if other is not None:
        raise DataError(
            f"{path}: expected a {manifest.title} file, found the columns of {other.title} "
            f"(dataset {other.name!r}): {len(missing)} of the {len(required)} columns "
            f"{manifest.name!r} needs are missing. Put the right file under this name, or "
            f"use --dataset {other.name} for this one")

    extra = [c for c in present if c not in required
             and c not in manifest.never_features and c not in manifest.text]
    hints = []
    for col in missing[:_MAX_LISTED]:
        guess = closest(col, extra or present, n=1)
        hints.append(f"{col!r}" + (f" (closest present: {guess[0]!r})" if guess else ""))
    more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    shown = ", ".join(present[:_MAX_LISTED]) + (", ..." if len(present) > _MAX_LISTED else "")
    raise DataError(
        f"{path}: {len(missing)} required column(s) of dataset {manifest.name!r} missing: "
        f"{', '.join(hints)}{more}. The file has {len(present)} columns ({shown}); is it the "
        f"right file for {manifest.title}?")


def _other_dataset(present: list[str], manifest: Manifest) -> Manifest | None:
    """Another known dataset whose required columns are (nearly) all present, or None."""
    from idsbench.data.manifest import get_manifest, list_datasets

    have = set(present)
    for name in list_datasets():
        other = get_manifest(name)
        if other.name == manifest.name:
            continue
        need = set(other.required_columns())
        if need and len(need & have) >= 0.9 * len(need):
            return other
    return None


def row_lines(data: bytes, n_rows: int | None = None) -> np.ndarray | None:
    """Line number of each data row when blank lines shift them, else None (row i: line i + 2).

    The parsers skip blank lines, so without this a reported line would be off by the number
    of blank lines above it.  (A quoted field spanning lines would still shift the count.)
    ``n_rows``, the parsed row count, allows a quick answer for the usual file.
    """
    # no more line breaks than data rows (not counting a final one): no blank line can hide
    # between them, and counting is ~4x cheaper than searching for one
    if n_rows is not None and data.count(b"\n") - data.endswith(b"\n") <= n_rows:
        return None
    body = data.rstrip(b"\r\n\t ")
    if b"\n\n" not in body and b"\n\r\n" not in body:
        return None
    lines = [i + 1 for i, line in enumerate(body.split(b"\n")) if line.strip()]
    return np.asarray(lines[1:], dtype=np.int64)  # lines[0] is the header


def _line_numbers(mask: np.ndarray, limit: int = 5, lines: np.ndarray | None = None) -> list[int]:
    # CSV line number: 1 is the header, so data row i (0-based) is on line i + 2
    rows = np.flatnonzero(mask)[:limit]
    if lines is not None and len(lines) >= len(mask):
        return [int(lines[i]) for i in rows]
    return [int(i) + 2 for i in rows]


#: how NaN may be spelled in a numeric column (infinity is recognised by the number parser)
_NAN_TOKENS = ("nan", "-nan", "+nan")


def _distinct(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's code into the column's distinct values, and those values (missing kept).

    Flags and placeholders repeat a handful of spellings over every row: parsing the distinct
    spellings once and spreading the result by code costs less than text operations on each
    row (half the time for a T/F column, a sixth for a number column with placeholders).
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=False)
    return codes, pd.Series(uniques)


def _clean_numeric(df: pd.DataFrame, col: str, placeholder: str, report: QualityReport,
                   lines: np.ndarray | None = None) -> np.ndarray:
    """Make ``col`` float64 with unusable cells set missing; returns the mask of those rows.

    Unusable: text or a blank where a number belongs (counted in ``report.bad_values`` with
    line numbers and examples) and ``NaN`` or infinity (counted in ``report.nonfinite``).
    The placeholder (``-``) means "absent": it becomes missing without counting as bad.
    """
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        # the parser keeps blanks as text, so a number column holds only numbers and NaN tokens
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.zeros(len(s), dtype=bool)
        is_placeholder = np.zeros(len(s), dtype=bool)
    else:
        codes, distinct = _distinct(s)
        text = distinct.astype("string").str.strip()
        is_placeholder = (text == placeholder).fillna(False).to_numpy()[codes]
        values = pd.to_numeric(text.mask(text == placeholder), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan)[codes]
        nan_token = text.str.lower().isin(_NAN_TOKENS).fillna(False).to_numpy()[codes]
        bad = np.isnan(values) & ~is_placeholder & ~nan_token
    nonfinite = ~np.isfinite(values) & ~bad & ~is_placeholder

    if is_placeholder.any():
        report.placeholders[col] = int(is_placeholder.sum())
    if bad.any():
        examples = ["(blank)" if pd.isna(v) or not str(v).strip() else str(v)
                    for v in s[bad].head(3).tolist()]
        report.bad_values[col] = {"count": int(bad.sum()), "lines": _line_numbers(bad, lines=lines),
                                  "examples": examples, "expected": "a number"}
        log.warning("%s: column %r has %d value(s) that are not numbers, first on lines %s "
                    "(e.g. %s)", report.file, col, int(bad.sum()),
                    report.bad_values[col]["lines"], examples)
    if nonfinite.any():
        report.nonfinite[col] = int(nonfinite.sum())
        log.warning("%s: column %r has %d NaN or infinite value(s), first on lines %s",
                    report.file, col, int(nonfinite.sum()), _line_numbers(nonfinite, lines=lines))
    df[col] = np.where(np.isfinite(values), values, np.nan)
    return bad | nonfinite


def _clean_boolean(df: pd.DataFrame, col: str, placeholder: str, report: QualityReport,
                   lines: np.ndarray | None = None) -> np.ndarray:
    codes, distinct = _distinct(df[col])
    text = distinct.astype("string").str.strip().str.lower()
    out = np.full(len(text), np.nan)
    out[text.isin(_TRUE).fillna(False).to_numpy()] = 1.0
    out[text.isin(_FALSE).fillna(False).to_numpy()] = 0.0
    # a blank flag means "not recorded", like the placeholder
    is_placeholder = ((text == placeholder) | (text == "")).fillna(True).to_numpy()
    out, is_placeholder = out[codes], is_placeholder[codes]
    bad = np.isnan(out) & ~is_placeholder
    if is_placeholder.any():
        report.placeholders[col] = int(is_placeholder.sum())
    if bad.any():
        report.bad_values[col] = {"count": int(bad.sum()), "lines": _line_numbers(bad, lines=lines),
                                  "examples": [str(v) for v in df[col][bad].head(3).tolist()],
                                  "expected": "T/F (or the placeholder '-')"}
        log.warning("%s: column %r has %d value(s) that are not T/F, first on lines %s (e.g. %s)",
                    report.file, col, int(bad.sum()), report.bad_values[col]["lines"],
                    report.bad_values[col]["examples"])
    df[col] = out
    return bad


def _clean_categorical(df: pd.DataFrame, col: str, placeholder: str) -> None:
    text = df[col].astype("string").str.strip()
    df[col] = text.fillna(placeholder).replace("", placeholder).astype(str)


def normalise_classes(values: pd.Series, canonical: list[str], aliases: dict[str, str],
                      path: Path, col: str, report: QualityReport,
                      lines: np.ndarray | None = None) -> pd.Series:
    """Map class names that differ only by spaces, case or a known alias to the canonical list.

    A name that is none of these is an error naming it, its row count, its first line and the
    closest canonical name; so is a blank class.
    """
    lookup = {c.lower(): c for c in canonical}
    lookup.update({k.lower(): v for k, v in aliases.items()})
    raw = values.astype("string")
    blank = (raw.isna() | (raw.str.strip() == "")).fillna(True).to_numpy()
    mapping, unknown = {}, []
    for u in raw[~blank].unique():
        key = re.sub(r"\s+", " ", str(u).strip()).lower()
        if key in lookup:
            mapping[u] = lookup[key]
            if lookup[key] != u:
                report.class_renames[str(u)] = lookup[key]
        else:
            unknown.append(str(u))
    if not unknown and not blank.any():
        return raw.map(mapping).astype(str)

    counts = raw[~blank].value_counts()
    parts = []
    for u in unknown:
        first = _line_numbers((raw == u).fillna(False).to_numpy(), 1, lines)[0]
        guess = closest(u, canonical, n=1)
        n = int(counts.get(u, 0))
        parts.append(f"{u!r} ({n} row{'s' * (n != 1)}, first on line {first}"
                     + (f"; did you mean {guess[0]!r}?" if guess else "") + ")")
    if blank.any():
        parts.append(f"a blank class ({int(blank.sum())} row(s), first on line "
                     f"{_line_numbers(blank, 1, lines)[0]})")
    raise DataError(f"{path}: column {col!r} has class name(s) not in the dataset's list: "
                    f"{'; '.join(parts)}. Expected one of: {', '.join(canonical)} (differences "
                    "of case or surrounding spaces, and known aliases, are corrected)")


def check_policy(policy: str) -> None:
    """Refuse a bad-value policy that is not one of :data:`BAD_VALUE_POLICIES`."""
    if policy not in BAD_VALUE_POLICIES:
        raise ConfigError(f"--bad-values {policy!r}: expected one of "
                          f"{', '.join(BAD_VALUE_POLICIES)}")


def clean_table(df: pd.DataFrame, manifest: Manifest, path: Path, policy: str,
                report: QualityReport, lines: np.ndarray | None = None) -> pd.DataFrame:
    """Type every column per the manifest; count every change in ``report``.

    ``policy`` decides what happens to a row with a bad or non-finite numeric value:
    ``"impute"`` sets the value missing (the preprocessor imputes the training median),
    ``"drop"`` drops the row.  ``lines`` maps data rows to CSV line numbers (see
    :func:`row_lines`) for the messages.
    """
    check_policy(policy)
    df = normalise_header(df, report)
    check_columns(df, manifest, path)
    df = df[kept_columns(manifest, list(df.columns))].copy()

    try:
        return _clean_columns(df, manifest, path, policy, report, lines)
    except UnicodeDecodeError as exc:  # a cell the parser left as bytes
        raise DataError(f"{path}: {_undecodable(df, lines)} is not UTF-8 text ({exc.reason}); "
                        "expected a UTF-8 CSV file: re-save it as UTF-8") from exc


def _undecodable(df: pd.DataFrame, lines: np.ndarray | None) -> str:
    """Where the first cell that is bytes, not text, is: column and line."""
    for col in df.columns:
        if pd.api.types.is_object_dtype(df[col]):
            is_bytes = df[col].map(lambda v: isinstance(v, bytes)).to_numpy(dtype=bool)
            if is_bytes.any():
                return f"column {col!r}, line {_line_numbers(is_bytes, 1, lines)[0]},"
    return "a cell"


def _clean_columns(df: pd.DataFrame, manifest: Manifest, path: Path, policy: str,
                   report: QualityReport, lines: np.ndarray | None) -> pd.DataFrame:
    ph = manifest.placeholder
    bad_rows = np.zeros(len(df), dtype=bool)
    for col in numeric_columns(manifest):
        bad_rows |= _clean_numeric(df, col, ph, report, lines)
    for col in manifest.boolean:
        bad_rows |= _clean_boolean(df, col, ph, report, lines)
    for col in string_columns(manifest, list(df.columns)):
        _clean_categorical(df, col, ph)

    # targets: binary 0/1, multiclass names normalised to the canonical list
    bin_col, multi_col = manifest.targets["binary"], manifest.targets["multiclass"]
    label = df[bin_col]
    if not pd.api.types.is_integer_dtype(label):  # text to parse (an integer column is ready)
        label = pd.to_numeric(label.astype("string").str.strip(), errors="coerce")
    bad = ~label.isin([0, 1]).to_numpy()
    if bad.any():
        raise DataError(f"{path}: column {bin_col!r} must hold 0 (normal) or 1 (attack); "
                        f"{int(bad.sum())} row(s) differ, first on line(s) "
                        f"{_line_numbers(bad, lines=lines)}: {df[bin_col][bad].head(3).tolist()}")
    df[bin_col] = label.astype(np.int64)
    df[multi_col] = normalise_classes(df[multi_col], manifest.classes["multiclass"],
                                      manifest.class_aliases, path, multi_col, report, lines)

    # the two targets must agree, or the binary and multiclass results describe other rows
    attack = (df[multi_col] != manifest.normal_class).to_numpy()
    clash = attack != (df[bin_col].to_numpy() == 1)
    if clash.any():
        first = np.flatnonzero(clash)[0]
        raise DataError(
            f"{path}: columns {bin_col!r} and {multi_col!r} disagree on {int(clash.sum())} row(s), "
            f"first on line(s) {_line_numbers(clash, lines=lines)}: expected {bin_col}=0 exactly "
            f"when {multi_col} is {manifest.normal_class!r}, found {bin_col}="
            f"{int(df[bin_col].iloc[first])} with {multi_col}={df[multi_col].iloc[first]!r}")

    report.rows_with_bad_values = int(bad_rows.sum())
    if bad_rows.any():
        what = ("dropped" if policy == "drop"
                else "kept, with those values set missing and imputed by the training median")
        log.warning("%s: %d row(s) have bad or non-finite numeric values; --bad-values %s: %s",
                    path, int(bad_rows.sum()), policy, what)
    if policy == "drop" and bad_rows.any():
        report.rows_dropped = int(bad_rows.sum())
        df = df.loc[~bad_rows].reset_index(drop=True)
        if len(df) == 0:
            raise DataError(f"{path}: every row has a bad or non-finite numeric value, so "
                            "--bad-values drop leaves nothing; use --bad-values impute or fix "
                            "the file (see the warnings above for columns and lines)")
    report.rows_kept = len(df)
    return df


def verify_checksum(path: Path, actual: str, spec: FileSpec | None, allow_mismatch: bool) -> None:
    """Refuse a file whose SHA-256 differs from the manifest unless the override is given."""
    if spec is None or actual == spec.sha256:
        return
    msg = (f"{path}: SHA-256 mismatch for {spec.official_name}: expected {spec.sha256}, "
           f"got {actual}. The file differs from the published one")
    if allow_mismatch:
        log.warning("%s; continuing because --allow-checksum-mismatch was given", msg)
        return
    raise ChecksumError(msg + "; pass --allow-checksum-mismatch to use it anyway "
                        "(the record will say so)")


def load_table(path: Path, manifest: Manifest, policy: str = "impute",
               use_cache: bool = True) -> tuple[pd.DataFrame, QualityReport, str]:
    """Read and clean one file; returns the table, its quality report and its SHA-256.

    A well-formed file is parsed straight into its types (:mod:`idsbench.data.typed`); any
    other goes through :func:`parse_csv` and :func:`clean_table`, which report what they fix.
    The SHA-256 of a file not seen before is computed in a thread (hashlib releases the GIL)
    while the parsed table is checked and converted, which leave a core idle.  The cleaned,
    typed table is cached as an uncompressed Arrow IPC (Feather) file keyed by the file's
    checksum, the cleaning rules' version and the bad-value policy: larger on disk than
    Parquet, but it writes in half the time and reads in a fifth.
    """
    check_policy(policy)
    path = Path(path)
    stat_key = _stat_key(path) if path.is_file() else None  # before the bytes: see below
    sha = known_sha256(path)
    if sha is not None and use_cache:
        cached = _read_cached_table(manifest, sha, policy)
        if cached is not None:
            return (*cached, sha)

    data = read_bytes(path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = []

        def start_hashing() -> None:
            if sha is None and not hashing:
                hashing.append(pool.submit(lambda: hashlib.sha256(data).hexdigest()))

        report = QualityReport(file=str(path), bad_value_policy=policy)
        cleaned = _parse_and_clean(path, data, manifest, policy, report, start_hashing)
        if sha is None:
            start_hashing()  # a file refused before its parse ended
            sha = hashing[0].result()
            # under the size and time seen before reading: a file replaced meanwhile is hashed
            # again next time, never served the old content's table
            remember_sha256(path, sha, stat_key)
    if use_cache:  # started first: the write goes on while the table becomes a data frame
        _write_cache_in_background(manifest, sha, policy, cleaned, report)
    df = cleaned.to_pandas() if isinstance(cleaned, pa.Table) else cleaned
    return df, report, sha


def _parse_and_clean(path: Path, data: bytes, manifest: Manifest, policy: str,
                     report: QualityReport, parsed: Callable[[], None]) -> pd.DataFrame | pa.Table:
    """The cleaned table: Arrow from the typed path, a data frame from the general one.

    ``parsed`` is called when a parse has ended, so work for an idle core (the checksum) can
    start then, not compete with the parse, which keeps every core busy.
    """
    typed = read_typed(path, data, manifest, parsed)
    if typed is not None:
        table, found = typed
        report.rows_read = report.rows_kept = table.num_rows
        report.placeholders = found["placeholders"]
        report.class_renames = found["class_renames"]
        return table
    df = parse_csv(path, data, text_columns(manifest))
    parsed()
    report.rows_read = len(df)
    if len(df) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    return clean_table(df, manifest, path, policy, report, lines=row_lines(data, len(df)))


def _cache_files(manifest: Manifest, sha: str, policy: str) -> tuple[Path, Path]:
    base = cache_dir() / "tables" / f"{manifest.name}-{sha[:16]}-v{CLEAN_VERSION}-{policy}"
    return base.with_suffix(".arrow"), base.with_suffix(".json")


def _read_cached_table(manifest: Manifest, sha: str,
                       policy: str) -> tuple[pd.DataFrame, QualityReport] | None:
    table_file, meta = _cache_files(manifest, sha, policy)
    _wait_for_write(table_file)
    if not (table_file.is_file() and meta.is_file()):
        return None
    try:
        return (pd.read_feather(table_file),
                QualityReport.from_dict(json.loads(meta.read_text())))
    except Exception as exc:  # noqa: BLE001 - a broken cache entry is rebuilt
        log.warning("ignoring unreadable cache entry %s: %s", table_file, exc)
        return None


#: cache writes still running, by table file (see :func:`_write_cache_in_background`)
_PENDING_WRITES: dict[Path, threading.Thread] = {}
_PENDING_LOCK = threading.Lock()


def wait_for_cache_writes() -> None:
    """Block until every table-cache write this process started has finished."""
    with _PENDING_LOCK:
        pending = list(_PENDING_WRITES.values())
    for thread in pending:
        thread.join()


def _wait_for_write(table_file: Path) -> None:
    with _PENDING_LOCK:
        thread = _PENDING_WRITES.get(table_file)
    if thread is not None:
        thread.join()


def _write_cache_in_background(manifest: Manifest, sha: str, policy: str,
                               table: pd.DataFrame | pa.Table, report: QualityReport) -> None:
    """Write the table cache in a thread, so the caller goes on with the table meanwhile.

    Writing ~70 MB of Arrow costs about half of a first load; the write releases the GIL and
    overlaps whatever comes next.  The thread is not a daemon, so the interpreter waits for it
    at exit; the file appears under its name only once complete (written aside, then renamed),
    and a read of the same entry in this process waits for it.  A failed write is a warning.
    """
    table_file, meta = _cache_files(manifest, sha, policy)
    if isinstance(table, pd.DataFrame):  # converted here: the caller may change the frame
        table = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
    meta_text = json.dumps(report.to_dict())

    def write() -> None:
        import pyarrow.feather as feather

        try:
            table_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = table_file.with_name(
                f".{table_file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            feather.write_feather(table, tmp, compression="uncompressed")
            os.replace(tmp, table_file)
            _atomic_write_text(meta, meta_text)
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is not an error
            log.warning("could not write the cache %s: %s", table_file, exc)
        finally:
            with _PENDING_LOCK:
                if _PENDING_WRITES.get(table_file) is threading.current_thread():
                    del _PENDING_WRITES[table_file]

    _wait_for_write(table_file)  # one writer per entry
    thread = threading.Thread(target=write, name=f"idsbench-cache-{table_file.stem}")
    with _PENDING_LOCK:
        _PENDING_WRITES[table_file] = thread
    thread.start()
