"""Records grouped the way a leaderboard compares them.

Only records scored under the same protocol (dataset, split, task and every data setting that
changes the rows or the features) are compared with one another.  Inside a group, records of
the same model *variant* (model plus the parameters, resampling and class weights that set it
apart) are the seeds of one leaderboard row.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

log = logging.getLogger(__name__)

PROTOCOL_KEYS = ("dataset", "split", "task", "split_seed", "test_size", "val_fraction",
                 "max_train_rows", "identity_columns", "dedup", "bad_values")

#: the one-feature baseline every leaderboard measures models against
SHORTCUT_MODEL = "stump"


def protocol_key(record: dict) -> tuple:
    """The settings two records must share to be compared (hashable)."""
    proto = record.get("protocol") or {}
    base = {"dataset": record.get("dataset"), "split": record.get("split"),
            "task": record.get("task")}
    return tuple((k, proto.get(k, base.get(k))) for k in PROTOCOL_KEYS)


def variant_label(record: dict) -> str:
    """Model name plus what sets this row apart (ablation params, rebalancing, class weights)."""
    label = record["model"]
    extras = []
    params = record.get("model_params") or {}
    if params:
        extras.append(",".join(f"{k}={v}" for k, v in sorted(params.items())))
    rb = (record.get("rebalance") or {}).get("method", "none")
    if rb != "none":
        asked = (record.get("rebalance") or {}).get("requested") or {}  # k=3 and k=5 differ
        extras.append(f"rebalance={rb}" + (
            "(" + ",".join(f"{k}={v}" for k, v in sorted(asked.items())) + ")" if asked else ""))
    cw = (record.get("training") or {}).get("class_weight")
    if cw:
        extras.append(f"class_weight={cw}")
    if record.get("sweep"):  # each grid point of an idsbench sweep is its own row
        extras.append(",".join(f"{k}={v}" for k, v in record["sweep"].items()))
    return f"{label} [{'; '.join(extras)}]" if extras else label


def slugify(text: str) -> str:
    """A file-name-safe form of ``text`` (lower case, dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def metric_values(records: list[dict], key: str, block: str = "metrics") -> list[float]:
    """``record[block][key]`` of each record, skipping missing and non-finite values."""
    out = []
    for r in records:
        v = (r.get(block) or {}).get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out.append(float(v))
    return out


@dataclass
class Variant:
    """One leaderboard row: a model variant and its records, one per seed."""

    label: str
    records: list[dict]

    @property
    def model(self) -> str:
        return self.records[0]["model"]

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.records]

    @property
    def is_shortcut(self) -> bool:
        return self.label == SHORTCUT_MODEL

    def mean(self, key: str, block: str = "metrics") -> float:
        vals = metric_values(self.records, key, block)
        return float(np.mean(vals)) if vals else float("nan")

    def slug(self) -> str:
        return slugify(self.label)


@dataclass
class Group:
    """Records of one protocol: the ranked variants, the failures, and where plots go."""

    key: tuple
    records: list[dict]
    variants: list[Variant] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    duplicates: int = 0
    slug: str = ""

    @property
    def protocol(self) -> dict:
        return dict(self.key)

    @property
    def task(self) -> str:
        return self.protocol["task"]

    @property
    def classes(self) -> list[str]:
        for v in self.variants:
            if v.records[0].get("classes"):
                return list(v.records[0]["classes"])
        return []

    @property
    def best(self) -> Variant | None:
        return self.variants[0] if self.variants else None

    @property
    def shortcut(self) -> Variant | None:
        return next((v for v in self.variants if v.is_shortcut), None)

    @property
    def dataset_rows(self) -> int | None:
        """Rows of the data files this group's records read (None when not recorded)."""
        for r in self.records:
            files = (r.get("data") or {}).get("files") or []
            if files and all(isinstance(f.get("rows"), int) for f in files):
                return int(sum(f["rows"] for f in files))
        return None


def _latest_per_seed(records: list[dict]) -> tuple[list[dict], int]:
    """One record per seed; a seed recorded twice (merged runs, re-runs) keeps the latest."""
    by_seed: dict[int, dict] = {}
    for r in records:
        old = by_seed.get(r["seed"])
        if old is None or str(r.get("finished_at") or "") >= str(old.get("finished_at") or ""):
            by_seed[r["seed"]] = r
    return [by_seed[s] for s in sorted(by_seed)], len(records) - len(by_seed)


def group_records(records: Iterable[dict]) -> list[Group]:
    """Records grouped by protocol, each group's variants ranked by mean macro-F1.

    Groups come in a fixed order (by protocol), so rendering the same records twice gives the
    same text.  Each group gets a ``slug`` that names its plot folder, unique among the groups.
    """
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        by_key[protocol_key(r)].append(r)

    groups = []
    used_slugs: dict[str, int] = {}
    for key in sorted(by_key, key=lambda k: json.dumps(k)):
        recs = by_key[key]
        group = Group(key=key, records=recs)
        by_label: dict[str, list[dict]] = defaultdict(list)
        for r in recs:
            if r.get("status") == "ok":
                by_label[variant_label(r)].append(r)
            else:
                group.failed.append(r)
        for label, rs in by_label.items():
            kept, dropped = _latest_per_seed(rs)
            group.duplicates += dropped
            group.variants.append(Variant(label, kept))

        # best first; the label breaks ties so the order never depends on file order
        group.variants.sort(key=lambda v: (-_nan_low(v.mean("f1_macro")), v.label))
        group.failed.sort(key=lambda r: (variant_label(r), r["seed"]))

        p = group.protocol
        base = slugify(f"{p['dataset']}-{p['task']}-{p['split']}")
        used_slugs[base] = used_slugs.get(base, 0) + 1
        group.slug = base if used_slugs[base] == 1 else f"{base}-{used_slugs[base]}"
        groups.append(group)
    return groups


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def load_predictions(record: dict) -> dict | None:
    """The stored per-row predictions of a record (``y_true``, ``y_pred``), or None.

    Predictions live beside the records, in ``<run>/predictions/<job-id>.npz``; records loaded
    by :func:`idsbench.records.load_records` carry ``_run_dir`` to find them.
    """
    run_dir = record.get("_run_dir")
    if not run_dir or not record.get("job_id"):
        return None
    path = Path(run_dir) / "predictions" / f"{record['job_id']}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as npz:
            return {"y_true": npz["y_true"].astype(np.int64),
                    "y_pred": npz["y_pred"].astype(np.int64)}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: unreadable predictions (%s); paired tests skip this record", path, exc)
        return None
