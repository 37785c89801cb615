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
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from idsbench.data.manifest import FileSpec, Manifest
from idsbench.errors import ChecksumError, ConfigError, DataError, closest

log = logging.getLogger(__name__)

ENV_DATA_DIR = "IDSBENCH_DATA_DIR"
ENV_CACHE_DIR = "IDSBENCH_CACHE_DIR"
#: bump when the cleaning rules change, so cached tables are rebuilt
CLEAN_VERSION = 3
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


def read_bytes(path: Path) -> bytes:
    """The decompressed content of a plain or gzip-compressed file, with clear errors."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                data = gzip.decompress(fh.read())
            else:
                data = fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: the gzip file is truncated or corrupt ({exc}); "
                        "download it again or decompress a good copy") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if not data.strip():
        raise DataError(f"{path}: the file is empty (expected a CSV with a header row)")
    return data


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


def file_sha256(path: Path, data: bytes | None = None) -> str:
    """SHA-256 of the decompressed content, remembered per (path, size, mtime)."""
    index_path, index = _sha_index()
    key = _stat_key(path)
    if key in index:
        return index[key]
    digest = hashlib.sha256(data if data is not None else read_bytes(path)).hexdigest()
    index[key] = digest
    try:
        _atomic_write_text(index_path, json.dumps(index))
    except OSError:  # a read-only cache is not an error
        pass
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
    rows_dropped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        return cls(**d)


# --------------------------------------------------------------------------------------------
# parsing and cleaning


_UNNAMED = re.compile(r"^(unnamed: ?\d+|index|)$", re.IGNORECASE)


def parse_csv(path: Path, data: bytes) -> pd.DataFrame:
    """Parse CSV bytes; header variants (BOM, spaces, CRLF) are handled here."""
    try:
        df = pd.read_csv(io.BytesIO(data), engine="pyarrow", encoding="utf-8")
    except Exception:  # noqa: BLE001 - pyarrow is strict; the C engine gives the readable error
        try:
            df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", low_memory=False)
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
    drop = [c for c in df.columns if _UNNAMED.match(str(c))]
    if drop:
        df = df.drop(columns=drop)
        report.dropped_columns = [str(c) for c in drop]
    if df.columns.duplicated().any():
        dups = sorted(set(df.columns[df.columns.duplicated()]))
        raise DataError(f"{report.file}: duplicate column names after cleaning the header: {dups}")
    return df


def check_columns(df: pd.DataFrame, manifest: Manifest, path: Path) -> None:
    """Every required column must be present; the error lists the closest names present."""
    present = list(df.columns)
    missing = [c for c in manifest.required_columns() if c not in present]
    if not missing:
        return
    extra = [c for c in present if c not in manifest.required_columns()
             and c not in manifest.never_features and c not in manifest.text]
    hints = []
    for col in missing:
        guess = closest(col, extra or present, n=1)
        hints.append(f"{col!r}" + (f" (closest present: {guess[0]!r})" if guess else ""))
    raise DataError(
        f"{path}: {len(missing)} required column(s) of dataset {manifest.name!r} missing: "
        f"{', '.join(hints)}. The file has {len(present)} columns; is it the right file "
        f"for {manifest.title}?"
    )


def _line_numbers(mask: np.ndarray, limit: int = 5) -> list[int]:
    # CSV line number: 1 is the header, so data row i (0-based) is on line i + 2
    return [int(i) + 2 for i in np.flatnonzero(mask)[:limit]]


def _clean_numeric(df: pd.DataFrame, col: str, placeholder: str, report: QualityReport) -> np.ndarray:
    """Make ``col`` float64; returns the mask of bad cells (text or blank where a number belongs).

    The placeholder (``-``) means "absent" and becomes missing without counting as bad.
    """
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(values)  # the parser saw an empty cell
        is_placeholder = np.zeros(len(s), dtype=bool)
    else:
        text = s.astype("string").str.strip()
        is_placeholder = (text == placeholder).fillna(False).to_numpy()
        values = pd.to_numeric(text.mask(text == placeholder), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan)
        bad = np.isnan(values) & ~is_placeholder
    if is_placeholder.any():
        report.placeholders[col] = int(is_placeholder.sum())
    if bad.any():
        examples = ["(blank)" if pd.isna(v) or not str(v).strip() else str(v)
                    for v in s[bad].head(3).tolist()]
        report.bad_values[col] = {"count": int(bad.sum()), "lines": _line_numbers(bad),
                                  "examples": examples, "expected": "a number"}
    inf = np.isinf(values)
    if inf.any():
        report.nonfinite[col] = int(inf.sum())
        values = np.where(inf, np.nan, values)
    df[col] = values
    return bad


def _clean_boolean(df: pd.DataFrame, col: str, placeholder: str, report: QualityReport) -> np.ndarray:
    text = df[col].astype("string").str.strip().str.lower()
    out = np.full(len(text), np.nan)
    out[text.isin(_TRUE).fillna(False).to_numpy()] = 1.0
    out[text.isin(_FALSE).fillna(False).to_numpy()] = 0.0
    is_placeholder = ((text == placeholder) | text.isna()).fillna(True).to_numpy()
    bad = np.isnan(out) & ~is_placeholder
    if is_placeholder.any():
        report.placeholders[col] = int(is_placeholder.sum())
    if bad.any():
        report.bad_values[col] = {"count": int(bad.sum()), "lines": _line_numbers(bad),
                                  "examples": [str(v) for v in df[col][bad].head(3).tolist()],
                                  "expected": "T/F (or the placeholder '-')"}
    df[col] = out
    return bad


def _clean_categorical(df: pd.DataFrame, col: str, placeholder: str) -> None:
    text = df[col].astype("string").str.strip()
    df[col] = text.fillna(placeholder).replace("", placeholder).astype(str)


def normalise_classes(values: pd.Series, canonical: list[str], aliases: dict[str, str],
                      path: Path, col: str, report: QualityReport) -> pd.Series:
    """Map class names that differ only by spaces, case or a known alias to the canonical list."""
    lookup = {c.lower(): c for c in canonical}
    lookup.update({k.lower(): v for k, v in aliases.items()})
    raw = values.astype("string").str.strip()
    uniques = raw.dropna().unique()
    mapping, unknown = {}, []
    for u in uniques:
        key = re.sub(r"\s+", " ", str(u)).lower()
        if key in lookup:
            mapping[u] = lookup[key]
            if lookup[key] != u:
                report.class_renames[str(u)] = lookup[key]
        else:
            unknown.append(str(u))
    if unknown or raw.isna().any():
        counts = raw.value_counts()
        desc = ", ".join(f"{u!r} ({int(counts.get(u, 0))} rows)" for u in unknown)
        if raw.isna().any():
            desc += (", " if desc else "") + f"blank ({int(raw.isna().sum())} rows, first on line "\
                f"{_line_numbers(raw.isna().to_numpy(), 1)[0]})"
        raise DataError(f"{path}: column {col!r} has class name(s) not in the dataset's list: "
                        f"{desc}. Expected one of: {', '.join(canonical)}")
    return raw.map(mapping).astype(str)


def clean_table(df: pd.DataFrame, manifest: Manifest, path: Path, policy: str,
                report: QualityReport) -> pd.DataFrame:
    """Type every column per the manifest; count every change in ``report``."""
    if policy not in BAD_VALUE_POLICIES:
        raise ConfigError(f"--bad-values {policy!r}: expected one of {', '.join(BAD_VALUE_POLICIES)}")
    df = normalise_header(df, report)
    check_columns(df, manifest, path)
    keep = manifest.required_columns() + [c for c in manifest.text if c in df.columns] + \
        [c for c in manifest.never_features if c in df.columns and c not in manifest.targets.values()]
    df = df[list(dict.fromkeys(keep))].copy()
    ph = manifest.placeholder

    bad_rows = np.zeros(len(df), dtype=bool)
    for col in list(manifest.numeric) + [c for c in manifest.identity
                                         if c not in manifest.identity_categorical]:
        bad_rows |= _clean_numeric(df, col, ph, report)
    for col in manifest.boolean:
        bad_rows |= _clean_boolean(df, col, ph, report)
    for col in list(manifest.categorical) + list(manifest.identity_categorical) + \
            [c for c in manifest.text if c in df.columns]:
        _clean_categorical(df, col, ph)

    # targets: binary 0/1, multiclass names normalised to the canonical list
    bin_col, multi_col = manifest.targets["binary"], manifest.targets["multiclass"]
    label = pd.to_numeric(df[bin_col], errors="coerce")
    bad = ~label.isin([0, 1]).to_numpy()
    if bad.any():
        raise DataError(f"{path}: column {bin_col!r} must hold 0 (normal) or 1 (attack); "
                        f"{int(bad.sum())} row(s) differ, first on line(s) {_line_numbers(bad)}: "
                        f"{df[bin_col][bad].head(3).tolist()}")
    df[bin_col] = label.astype(np.int64)
    df[multi_col] = normalise_classes(df[multi_col], manifest.classes["multiclass"],
                                      manifest.class_aliases, path, multi_col, report)

    if policy == "drop" and bad_rows.any():
        report.rows_dropped = int(bad_rows.sum())
        df = df.loc[~bad_rows].reset_index(drop=True)
    report.rows_kept = len(df)
    for col, info in report.bad_values.items():
        log.warning("%s: column %r has %d value(s) that are not numbers (first on lines %s, e.g. "
                    "%s); policy %r", path, col, info["count"], info["lines"], info["examples"],
                    policy)
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

    The cleaned, typed table is cached as Parquet keyed by the file's checksum, the cleaning
    rules' version and the bad-value policy.
    """
    path = Path(path)
    data = None
    sha = known_sha256(path)
    if sha is None:
        data = read_bytes(path)
        sha = file_sha256(path, data)
    cache_base = cache_dir() / "tables" / f"{manifest.name}-{sha[:16]}-v{CLEAN_VERSION}-{policy}"
    parquet, meta = cache_base.with_suffix(".parquet"), cache_base.with_suffix(".json")
    if use_cache and parquet.is_file() and meta.is_file():
        try:
            df = pd.read_parquet(parquet)
            report = QualityReport.from_dict(json.loads(meta.read_text()))
            return df, report, sha
        except Exception as exc:  # noqa: BLE001 - a broken cache entry is rebuilt
            log.warning("ignoring unreadable cache entry %s: %s", parquet, exc)

    if data is None:
        data = read_bytes(path)
    report = QualityReport(file=str(path), bad_value_policy=policy)
    df = parse_csv(path, data)
    report.rows_read = len(df)
    if len(df) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    df = clean_table(df, manifest, path, policy, report)
    if use_cache:
        try:
            parquet.parent.mkdir(parents=True, exist_ok=True)
            tmp = parquet.with_name(f".{parquet.name}.{os.getpid()}.tmp")
            df.to_parquet(tmp, index=False)
            os.replace(tmp, parquet)
            _atomic_write_text(meta, json.dumps(report.to_dict()))
        except OSError as exc:
            log.warning("could not write the cache %s: %s", parquet, exc)
    return df, report, sha
