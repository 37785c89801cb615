"""Small synthetic tables with the real datasets' schemas (random values, never real rows).

The class of each row leaves a learnable trace in a few numeric columns so that models can be
checked for learning; everything else is noise.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from idsbench.data.manifest import get_manifest


def _frame(name: str, n: int, seed: int, class_counts: dict[str, int] | None) -> pd.DataFrame:
    m = get_manifest(name)
    rng = np.random.default_rng(seed)
    classes = m.classes["multiclass"]
    if class_counts is None:
        cats = rng.choice(classes, size=n)
    else:
        cats = np.concatenate([[c] * k for c, k in class_counts.items()])
        rng.shuffle(cats)
        n = len(cats)
    code = np.array([classes.index(c) for c in cats])
    df = pd.DataFrame(index=range(n))
    for i, col in enumerate(m.numeric):
        signal = code * (i % 3) if i < 6 else 0
        df[col] = rng.integers(0, 50, size=n) + signal * 10
    for col in m.boolean:
        df[col] = rng.choice(["T", "F", "-"], size=n)
    levels = {"proto": ["tcp", "udp", "icmp"], "service": ["-", "http", "dns", "ftp"],
              "state": ["FIN", "INT", "CON"], "conn_state": ["S0", "SF", "REJ"]}
    for col in m.categorical:
        df[col] = rng.choice(levels.get(col, ["-", "a", "b"]), size=n)
    for col in m.identity:
        df[col] = (rng.choice(["192.0.2.1", "192.0.2.2", "198.51.100.3"], size=n)
                   if col in m.identity_categorical else rng.integers(1, 65535, size=n))
    for col in m.text:
        df[col] = rng.choice(["-", "example.com", "www.example.org"], size=n)
    df[m.targets["multiclass"]] = cats
    df[m.targets["binary"]] = (cats != m.normal_class).astype(int)
    if "id" in m.never_features:
        df.insert(0, "id", np.arange(1, n + 1))
    return df


def unsw_frame(n: int = 400, seed: int = 0, class_counts=None) -> pd.DataFrame:
    """A UNSW-NB15-shaped table (45 columns, the canonical class names)."""
    return _frame("unsw", n, seed, class_counts)


def toniot_frame(n: int = 400, seed: int = 0, class_counts=None) -> pd.DataFrame:
    """A ToN_IoT-shaped table (the canonical columns, '-' placeholders, T/F/- flags)."""
    return _frame("toniot", n, seed, class_counts)


def write_csv(df: pd.DataFrame, path: Path, bom: bool = True, crlf: bool = True,
              compress: bool | None = None) -> Path:
    """Write like the published files: a UTF-8 BOM and CRLF line ends (gzip if ``.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = df.to_csv(index=False, lineterminator="\r\n" if crlf else "\n")
    data = (("\ufeff" if bom else "") + text).encode("utf-8")
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
