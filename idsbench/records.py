"""Result records: one self-describing JSON document per (dataset, task, model, seed) job.

Each record is written as ``<run>/records/<job-id>.json`` by write-to-temporary-then-rename, so
a record on disk is always complete; ``<run>/records.jsonl`` is rebuilt from them (atomically)
after every job.  A killed run leaves every finished record intact.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from idsbench.errors import ConfigError, DataError

RECORD_VERSION = 1


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_bytes_npz(path: Path, **arrays: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _clean_json(obj: Any) -> Any:
    """NaN and infinity become null (JSON has neither); numpy scalars become Python ones."""
    if isinstance(obj, dict):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(_clean_json(obj), indent=indent, sort_keys=False, allow_nan=False)


@lru_cache(maxsize=1)
def environment() -> dict:
    """Package versions, git commit (and whether the tree was dirty), machine."""
    from importlib import metadata

    versions = {}
    for dist in ("idsbench", "torch", "scikit-learn", "xgboost", "xgboost-cpu", "imbalanced-learn",
                 "pandas", "numpy", "pyarrow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    env = {
        "python": platform.python_version(),
        "packages": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "git": _git_state(),
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - an environment probe must never fail a run
        pass
    return env


def _git_state() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return {"commit": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """One run's folder: ``config.json``, ``records/``, ``records.jsonl``, ``predictions/``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def check_out(out: Path) -> None:
        """Refuse an ``--out`` that is a file or cannot be written, creating nothing inside it."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out}: exists and is a file; expected a directory")
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc

    @classmethod
    def create(cls, out: Path, run_id: str) -> "RunDir":
        cls.check_out(out)
        path = Path(out) / run_id
        try:
            (path / "records").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path}: not a run directory (no config.json)")
        return cls(path)

    def write_config(self, config: dict) -> None:
        atomic_write_text(self.path / "config.json", dumps(config, indent=2) + "\n")

    def read_config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    def write_record(self, record: dict, predictions: dict | None = None) -> None:
        job_id = record["job_id"]
        if predictions:
            atomic_write_bytes_npz(self.path / "predictions" / f"{job_id}.npz", **predictions)
        atomic_write_text(self.path / "records" / f"{job_id}.json", dumps(record, indent=1) + "\n")
        self.rebuild_jsonl()

    def records(self) -> list[dict]:
        return load_record_files(sorted((self.path / "records").glob("*.json")))

    def rebuild_jsonl(self) -> None:
        lines = [dumps(r) for r in self.records()]
        atomic_write_text(self.path / "records.jsonl", "\n".join(lines) + ("\n" if lines else ""))


def load_record_files(paths: Iterable[Path]) -> list[dict]:
    out = []
    for p in paths:
        if p.name.startswith("."):
            continue  # a temporary file from an interrupted write
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: unreadable record ({exc}); idsbench writes records "
                            "atomically, so this file was changed by hand or the disk failed: "
                            "delete it, and 'idsbench run --resume' runs that job again") from exc
    return out


def load_records(paths: Iterable[str | Path]) -> list[dict]:
    """Records from run directories, ``records.jsonl`` files or single record files.

    Each record loaded from a run directory (or its ``records.jsonl`` or ``records/*.json``)
    gets ``_run_dir``, the folder its predictions are in; it is never written back to disk.
    """
    out: list[dict] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and (p / "records").is_dir():
            out.extend(_with_run_dir(RunDir(p).records(), p))
        elif p.is_dir():
            runs = sorted(d for d in p.iterdir() if (d / "records").is_dir())
            if not runs:
                raise DataError(f"{p}: holds no run directories (folders with records/)")
            for d in runs:
                out.extend(_with_run_dir(RunDir(d).records(), d))
        elif p.suffix == ".jsonl" and p.is_file():
            found = []
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        found.append(json.loads(line))
                    except ValueError as exc:
                        raise DataError(f"{p}:{i}: not a JSON record ({exc})") from exc
            out.extend(_with_run_dir(found, p.parent))
        elif p.is_file():
            out.extend(_with_run_dir(load_record_files([p]), p.parent.parent
                                     if p.parent.name == "records" else p.parent))
        else:
            raise DataError(f"{p}: no such run directory or records file")
    return out


def _with_run_dir(records: list[dict], folder: Path) -> list[dict]:
    """Mark records with the run folder holding their ``predictions/`` (when there is one)."""
    if (Path(folder) / "predictions").is_dir():
        for r in records:
            r["_run_dir"] = str(folder)
    return records
