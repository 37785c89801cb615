"""One dataset interface: from a :class:`DataConfig` to model-ready arrays.

``prepare(config)`` finds the files, identifies each by content, reads and cleans them, splits
(test rows first, then validation rows carved from training rows only), optionally
de-duplicates and subsamples the training rows, fits the encoders on training rows only and
returns a :class:`PreparedData`.  Results are cached by file checksums and settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idsbench.data import io as dio
from idsbench.data.manifest import FileSpec, Manifest, get_manifest
from idsbench.data.preprocess import PREP_VERSION, build_preprocessor, transform_checked
from idsbench.data.splits import stratified_split, stratified_subsample
from idsbench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TASKS = ("binary", "multiclass")
IDENTITY_POLICIES = ("drop", "keep")
DEDUP_POLICIES = ("none", "train")


@dataclass(frozen=True)
class DataConfig:
    """Everything that decides which rows and features a model sees.  Serializable."""

    dataset: str
    task: str = "binary"
    split: str | None = None  # None: the dataset's default
    split_seed: int = 0
    test_size: float = 0.2
    val_fraction: float = 0.1
    max_train_rows: int | None = None
    identity_columns: str = "drop"
    bad_values: str = "impute"
    dedup: str = "none"
    allow_checksum_mismatch: bool = False
    data_dir: str | None = None

    def resolved(self) -> "DataConfig":
        m = get_manifest(self.dataset)
        split = self.split or m.default_split
        if self.task not in TASKS:
            raise ConfigError(f"--task {self.task!r}: expected one of {', '.join(TASKS)}")
        if split not in m.splits:
            raise ConfigError(f"--split {split!r} is not defined for dataset {m.name!r}; "
                              f"choose one of: {', '.join(m.splits)}")
        if self.identity_columns not in IDENTITY_POLICIES:
            raise ConfigError(f"--identity-columns {self.identity_columns!r}: expected "
                              f"{' or '.join(IDENTITY_POLICIES)}")
        if self.dedup not in DEDUP_POLICIES:
            raise ConfigError(f"--dedup {self.dedup!r}: expected {' or '.join(DEDUP_POLICIES)}")
        if self.bad_values not in dio.BAD_VALUE_POLICIES:
            raise ConfigError(f"--bad-values {self.bad_values!r}: expected "
                              f"{' or '.join(dio.BAD_VALUE_POLICIES)}")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise ConfigError(f"--max-train-rows must be a positive integer, got {self.max_train_rows}")
        return DataConfig(**{**asdict(self), "dataset": m.name, "split": split})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreparedData:
    """Model-ready arrays plus everything needed to describe how they were made."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    feature_names: list[str]
    test_has_train_twin: np.ndarray  # the test row's raw feature vector occurs in training rows
    categorical_groups: dict[str, list[int]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


# --------------------------------------------------------------------------------------------
# finding and identifying files


@dataclass
class FoundFile:
    path: Path
    role: str | None
    sha256: str
    rows: int
    status: str  # "verified", "counts match, checksum differs", "unrecognised"


def _class_counts(df: pd.DataFrame, manifest: Manifest) -> dict[str, int]:
    counts = df[manifest.targets["multiclass"]].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def identify(path: Path, manifest: Manifest, bad_values: str = "impute",
             table: tuple | None = None) -> tuple[FoundFile, pd.DataFrame, dio.QualityReport]:
    """Load ``path`` and decide which of the manifest's files it is, by content."""
    df, report, sha = table or dio.load_table(path, manifest, bad_values)
    by_sha = [s for s in manifest.files.values() if s.sha256 == sha]
    if by_sha:
        return FoundFile(path, by_sha[0].role, sha, len(df), "verified"), df, report
    counts = _class_counts(df, manifest)
    for spec in manifest.files.values():
        if report.rows_read == spec.rows and counts == spec.class_counts:
            return FoundFile(path, spec.role, sha, len(df), "counts match, checksum differs"), df, report
    return FoundFile(path, None, sha, len(df), "unrecognised"), df, report


def locate(manifest: Manifest, data_dir: str | None = None,
           bad_values: str = "impute") -> tuple[Path, str, list[tuple[FoundFile, Any, Any]]]:
    root, origin = dio.search_dirs(data_dir)
    found = [identify(p, manifest, bad_values) for p in dio.candidate_files(manifest, root)]
    return root, origin, found


def _missing_file_error(manifest: Manifest, spec: FileSpec, root: Path, origin: str,
                        split: str, found: list) -> DataError:
    names = " or ".join(sorted({spec.official_name, *spec.names}))
    where = "; ".join(spec.published_at) or manifest.homepage
    have = ", ".join(f"{f.path.name} ({f.role or 'unrecognised'}, {f.rows} rows"
                     + (f", SHA-256 {f.sha256}" if f.role is None else "") + ")"
                     for f, _, _ in found)
    size = f"{spec.bytes:,} bytes, " if spec.bytes else ""
    if not root.is_dir():
        origin += ", a folder that does not exist"
    msg = (f"dataset {manifest.name!r}, split {split!r}: the {spec.role} partition "
           f"({spec.official_name}, {spec.rows:,} rows, {size}SHA-256 "
           f"{spec.sha256}) was not found in {root} (from {origin}; also looked in "
           f"{root / manifest.subdir}). Looked for {names} (.csv or .csv.gz). Found: {have or 'nothing'}. "
           f"It is published at: {where}.")
    if split != "random" and "random" in manifest.splits and found:
        msg += " '--split random' works on the partitions present."
    if any(f.status == "unrecognised" for f, _, _ in found):
        msg += (" A file with the right name but other content is ignored unless "
                "--allow-checksum-mismatch is given.")
    return DataError(msg)


def _role_by_name(manifest: Manifest, path: Path) -> str | None:
    """The role whose official name is this file's name (one-file datasets: that file)."""
    base = path.name.lower().removesuffix(".gz")
    roles = [r for r, s in manifest.files.items() if s.official_name.lower() == base]
    if not roles and len(manifest.files) == 1:
        roles = list(manifest.files)
    return roles[0] if len(roles) == 1 else None


def load_frames(cfg: DataConfig) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The cleaned tables per role needed by ``cfg.split``, and a description of the files."""
    manifest = get_manifest(cfg.dataset)
    root, origin, found = locate(manifest, cfg.data_dir, cfg.bad_values)
    by_role: dict[str, tuple] = {}
    for f, df, rep in found:
        if f.status == "unrecognised":
            role = _role_by_name(manifest, f.path)
            if not (cfg.allow_checksum_mismatch and role):
                log.warning("%s: content matches no %s file (rows %d, SHA-256 %s); ignored "
                            "(--allow-checksum-mismatch uses it by its name)",
                            f.path, manifest.name, f.rows, f.sha256)
                continue
            log.warning("%s: content matches no published %s file (rows %d, SHA-256 %s); used as "
                        "the %s partition by its name because --allow-checksum-mismatch was given",
                        f.path, manifest.name, f.rows, f.sha256, role)
            f.role, f.status = role, "checksum differs, used by name"
        if f.status == "counts match, checksum differs":
            spec = manifest.files[f.role]
            dio.verify_checksum(f.path, f.sha256, spec, cfg.allow_checksum_mismatch)
        if f.role in by_role:
            log.warning("%s and %s are both the %s partition; using the first",
                        by_role[f.role][0].path, f.path, f.role)
            continue
        if f.path.name.lower().removesuffix(".gz") != manifest.files[f.role].official_name.lower():
            log.info("%s holds the %s partition (identified by content; the name says otherwise)",
                     f.path, f.role)
        by_role[f.role] = (f, df, rep)

    split_def = manifest.splits[cfg.split]
    if cfg.split == "random":
        roles = [r for r in manifest.files if r in by_role]
        if not roles:
            spec = next(iter(manifest.files.values()))
            raise _missing_file_error(manifest, spec, root, origin, cfg.split, found)
    else:
        roles = list(split_def.values())
        for role in roles:
            if role not in by_role:
                raise _missing_file_error(manifest, manifest.files[role], root, origin, cfg.split, found)
    frames = {role: by_role[role][1] for role in roles}
    files = [{"role": role, "path": str(by_role[role][0].path), "sha256": by_role[role][0].sha256,
              "rows": by_role[role][0].rows, "status": by_role[role][0].status,
              "quality": by_role[role][2].to_dict()} for role in roles]
    return frames, {"data_root": str(root), "data_root_from": origin, "files": files}


# --------------------------------------------------------------------------------------------
# preparing arrays


def _row_hashes(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(df[columns], index=False).to_numpy()


def _cache_key(cfg: DataConfig, files: list[dict]) -> str:
    payload = {k: v for k, v in cfg.to_dict().items() if k != "data_dir"}
    payload.update(files=[f["sha256"] for f in files], clean=dio.CLEAN_VERSION, prep=PREP_VERSION)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def prepare(cfg: DataConfig, use_cache: bool = True) -> PreparedData:
    """Build model-ready arrays for ``cfg``; see the module docstring for the order of steps."""
    cfg = cfg.resolved()
    manifest = get_manifest(cfg.dataset)
    frames, file_info = load_frames(cfg)
    key = _cache_key(cfg, file_info["files"])
    cache_file = dio.cache_dir() / "prepared" / f"{cfg.dataset}-{key}.npz"
    data = None
    if use_cache and cache_file.is_file():
        try:
            data = _load_prepared(cache_file, file_info)
        except Exception as exc:  # noqa: BLE001 - rebuild a broken cache entry
            log.warning("ignoring unreadable cache entry %s: %s", cache_file, exc)
    if data is None:
        data = _prepare_arrays(cfg, manifest, frames, file_info)
        if use_cache:
            _save_prepared(cache_file, data)

    # said on every load, cached or not
    kept = data.info.get("train_pool_rows_after_cap")
    if cfg.max_train_rows is not None and kept and kept > cfg.max_train_rows:
        log.warning("--max-train-rows %d: kept %d rows, because every class keeps at least two "
                    "(one can go to validation)", cfg.max_train_rows, kept)
    return data


def _encode_labels(df: pd.DataFrame, cfg: DataConfig, manifest: Manifest) -> tuple[np.ndarray, list[str]]:
    if cfg.task == "binary":
        return df[manifest.targets["binary"]].to_numpy(np.int64), ["normal", "attack"]
    names = df[manifest.targets["multiclass"]].to_numpy()
    present = set(np.unique(names))
    classes = [c for c in manifest.classes["multiclass"] if c in present]
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[n] for n in names], dtype=np.int64), classes


def _require_two_classes(cfg: DataConfig, manifest: Manifest,
                         frames: dict[str, pd.DataFrame]) -> None:
    """A benchmark needs normal and attack rows: a file holding one class is refused up front."""
    label = manifest.targets["binary"]
    values = set()
    for frame in frames.values():
        values |= set(pd.unique(frame[label]).tolist())
    if len(values) < 2:
        only = "normal" if values == {0} else "attack" if values == {1} else "no"
        raise DataError(
            f"dataset {cfg.dataset!r}: the data files ({', '.join(sorted(frames))}) hold only "
            f"{only} rows (column {label!r} is {sorted(values) or 'empty'} on every row); a "
            "detector needs both normal (0) and attack (1) rows to be trained and scored")


def split_frames(cfg: DataConfig, manifest: Manifest,
                 frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training pool and the test rows of ``cfg.split``, as cleaned tables.

    The pool is every non-test row, before de-duplication, subsampling and the validation
    split; :func:`prepare` and the data audit both start from it, so they see the same rows.
    """
    _require_two_classes(cfg, manifest, frames)
    if cfg.split != "random":
        roles = manifest.splits[cfg.split]
        return frames[roles["train"]], frames[roles["test"]]
    table = pd.concat(list(frames.values()), ignore_index=True)
    strat = table[manifest.targets["multiclass"]].to_numpy()  # same rows for both tasks
    pool_idx, test_idx = stratified_split(strat, cfg.test_size, cfg.split_seed, "test")
    return table.iloc[pool_idx], table.iloc[test_idx]


def _prepare_arrays(cfg: DataConfig, manifest: Manifest, frames: dict[str, pd.DataFrame],
                    file_info: dict) -> PreparedData:
    identity = cfg.identity_columns == "keep"
    features = manifest.feature_columns(identity=identity)

    # 1. test rows: the official partition, or a stratified random split of all rows
    pool_df, test_df = split_frames(cfg, manifest, frames)
    _, classes = _encode_labels(pd.concat([pool_df, test_df], ignore_index=True), cfg, manifest)
    lookup = {c: i for i, c in enumerate(classes)}

    def codes(df):
        if cfg.task == "binary":
            return df[manifest.targets["binary"]].to_numpy(np.int64)
        return df[manifest.targets["multiclass"]].map(lookup).to_numpy(np.int64)

    info: dict[str, Any] = {"protocol": cfg.to_dict(), **file_info}

    # 2. optional de-duplication of training feature vectors (never of test rows)
    if cfg.dedup == "train":
        dup = pd.Series(_row_hashes(pool_df, features)).duplicated().to_numpy()
        info["dedup_train_dropped"] = int(dup.sum())
        pool_df = pool_df.loc[~dup]

    # 3. optional stratified subsample of the training rows, then the validation split
    strat_pool = pool_df[manifest.targets["multiclass"]].to_numpy()
    if cfg.max_train_rows is not None:
        # binary runs keep every attack category too, so both tasks see the same rows
        pick = stratified_subsample(codes(pool_df) if cfg.task == "multiclass" else strat_pool,
                                    cfg.max_train_rows, cfg.split_seed,
                                    class_names=classes if cfg.task == "multiclass" else None)
        pool_df, strat_pool = pool_df.iloc[pick], strat_pool[pick]
        info["max_train_rows"] = cfg.max_train_rows
        info["train_pool_rows_after_cap"] = int(len(pick))
    train_pos, val_pos = stratified_split(strat_pool, cfg.val_fraction, cfg.split_seed + 1,
                                          "validation", held_may_miss_classes=True)
    train_df, val_df = pool_df.iloc[train_pos], pool_df.iloc[val_pos]

    # 4. every class has training rows: models get codes 0..K-1 and must be able to learn each
    y_train, y_val, y_test = codes(train_df), codes(val_df), codes(test_df)
    missing = sorted(set(range(len(classes))) - set(np.unique(y_train).tolist()))
    if missing:
        raise _class_without_training_rows(cfg, classes, missing, y_test, file_info)

    # 5. encoders and scalers see training rows only
    pre = build_preprocessor(manifest, identity=identity)
    try:
        pre.fit(train_df[features])
        X_train, nf_train = transform_checked(pre, train_df[features])
        X_val, nf_val = transform_checked(pre, val_df[features])
        X_test, nf_test = transform_checked(pre, test_df[features])
    except ValueError as exc:  # scikit-learn refuses infinity inside the pipeline
        raise DataError(f"dataset {cfg.dataset!r}: the feature transforms failed ({exc}). The "
                        "cleaned tables hold only finite numbers, so this is a bug in idsbench's "
                        "preprocessing; please report it with this message") from exc
    names = [str(n) for n in pre.get_feature_names_out()]

    # 6. which test rows have an exact twin (same raw features) among the training rows
    train_hashes = _row_hashes(pd.concat([train_df, val_df]), features)
    twin = np.isin(_row_hashes(test_df, features), train_hashes)

    nonfinite = nf_train + nf_val + nf_test
    if nonfinite:
        log.warning("the feature transforms produced %d NaN or infinite value(s); set to 0 "
                    "(counted in the record as nonfinite_after_transform)", nonfinite)
    info.update(
        n_train=len(y_train), n_val=len(y_val), n_test=len(y_test), n_features=X_train.shape[1],
        feature_columns=features, classes=classes,
        train_class_counts=_count(y_train, classes), test_class_counts=_count(y_test, classes),
        nonfinite_after_transform=nonfinite,
        test_rows_with_train_twin=int(twin.sum()),
    )
    # positions of each categorical column's one-hot block (rebalancing keeps them valid)
    cat_columns = next((cols for name, _, cols in pre.transformers_ if name == "cat"), [])
    groups = {col: [i for i, n in enumerate(names) if n.startswith(f"cat__{col}_")]
              for col in cat_columns}
    return PreparedData(X_train, y_train, X_val, y_val, X_test, y_test, classes, names, twin,
                        groups, info)


def _class_without_training_rows(cfg: DataConfig, classes: list[str], missing: list[int],
                                  y_test: np.ndarray, file_info: dict) -> DataError:
    """The error for classes that have no training rows (so no model could learn them)."""
    desc = ", ".join(f"{classes[c]!r} ({int((y_test == c).sum())} test rows)" for c in missing)
    train_files = [f["path"] for f in file_info.get("files", []) if f.get("role") != "test"]
    if cfg.split == "random":
        source = "after the split"
    else:
        source = f"in {', '.join(train_files) or 'the training partition'}"
    hint = (f"raise --max-train-rows (now {cfg.max_train_rows}), "
            if cfg.max_train_rows is not None else "")
    return DataError(
        f"dataset {cfg.dataset!r}, task {cfg.task!r}, split {cfg.split!r}: class(es) {desc} "
        f"have no training rows {source}; a model cannot learn a class it never sees. Expected "
        f"every class of the test rows among the training rows. To fix: {hint}add training "
        "rows of those classes, remove them from the test file, or use '--split random' "
        "(which puts every class on both sides)")


def _count(y: np.ndarray, classes: list[str]) -> dict[str, int]:
    return {c: int(n) for c, n in zip(classes, np.bincount(y, minlength=len(classes)))}


def _save_prepared(path: Path, d: PreparedData) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        meta = {"classes": d.classes, "feature_names": d.feature_names,
                "categorical_groups": d.categorical_groups, "info": d.info}
        np.savez(tmp, X_train=d.X_train, y_train=d.y_train, X_val=d.X_val, y_val=d.y_val,
                 X_test=d.X_test, y_test=d.y_test, twin=d.test_has_train_twin,
                 meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write the cache %s: %s", path, exc)


def _load_prepared(path: Path, file_info: dict) -> PreparedData:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        info = {**meta["info"], **file_info}
        return PreparedData(z["X_train"], z["y_train"], z["X_val"], z["y_val"], z["X_test"],
                            z["y_test"], meta["classes"], meta["feature_names"], z["twin"],
                            meta["categorical_groups"], info)
