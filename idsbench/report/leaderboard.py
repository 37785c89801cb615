"""Markdown leaderboards rendered from stored records (never from live models).

Records are grouped by protocol (dataset, split, task and every data setting that changes the
rows or features); each group gets its protocol line, a table of models sorted by macro-F1 and
a list of failed jobs with their errors.  Failed jobs never appear as scores.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np
from tabulate import tabulate

from idsbench.records import atomic_write_text, load_records

#: (column title, metric key, binary only)
METRIC_COLUMNS = [
    ("Accuracy", "accuracy", False),
    ("Macro-F1", "f1_macro", False),
    ("Weighted-F1", "f1_weighted", False),
    ("Macro-P", "precision_macro", False),
    ("Macro-R", "recall_macro", False),
    ("Attack-F1", "f1", True),
    ("FPR", "fpr", True),
    ("ROC-AUC", "roc_auc", True),
]

PROTOCOL_KEYS = ("dataset", "split", "task", "split_seed", "test_size", "val_fraction",
                 "max_train_rows", "identity_columns", "dedup", "bad_values")


def protocol_key(record: dict) -> tuple:
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
        extras.append(f"rebalance={rb}")
    cw = (record.get("training") or {}).get("class_weight")
    if cw:
        extras.append(f"class_weight={cw}")
    return f"{label} [{'; '.join(extras)}]" if extras else label


def fmt_stat(values: list[float]) -> str:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}"


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval for the mean over seeds (None with fewer than two values)."""
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if len(vals) < 2:
        return None
    from scipy import stats

    half = stats.t.ppf(0.5 + level / 2, len(vals) - 1) * vals.std(ddof=1) / math.sqrt(len(vals))
    return float(vals.mean() - half), float(vals.mean() + half)


def _fmt_num(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def protocol_line(key: tuple, records: list[dict]) -> str:
    p = dict(key)
    r0 = records[0]
    split = p["split"]
    if split == "random":
        split_desc = (f"random stratified {1 - (p['test_size'] or 0.2):.0%}/{p['test_size'] or 0.2:.0%} "
                      f"split (split seed {p['split_seed']})")
    else:
        split_desc = f"{split} partitions"
    parts = [
        f"dataset **{p['dataset']}**", f"task **{p['task']}**", split_desc,
        f"validation {p['val_fraction']:.0%} of training rows" if p.get("val_fraction") else None,
        f"train/val/test rows {r0.get('n_train', '?'):,}/{r0.get('n_val', '?'):,}/{r0.get('n_test', '?'):,}"
        if isinstance(r0.get("n_train"), int) else None,
        f"features {r0.get('n_features')}" if r0.get("n_features") else None,
        f"identity columns {p['identity_columns']}", f"dedup {p['dedup']}",
        f"training rows capped at {p['max_train_rows']:,}" if p.get("max_train_rows") else None,
        f"bad values {p['bad_values']}",
    ]
    profiles = sorted({r.get("profile", "?") for r in records})
    parts.append(f"profile {', '.join(profiles)}")
    files = {(f["path"].split("/")[-1], f["sha256"][:12]) for r in records
             for f in (r.get("data") or {}).get("files", [])}
    if files:
        parts.append("files " + ", ".join(f"{n} (sha256 {s}…)" for n, s in sorted(files)))
    return "Protocol: " + "; ".join(x for x in parts if x) + "."


def render_group(key: tuple, records: list[dict]) -> str:
    task = dict(key)["task"]
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") != "ok"]
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        by_model[variant_label(r)].append(r)

    cols = [c for c in METRIC_COLUMNS if task == "binary" or not c[2]]
    headers = ["Model", "Seeds"] + [c[0] for c in cols] + \
        ["Unseen acc.", "Unseen macro-F1", "Fit s", "Predict rows/s", "Params"]
    rows = []
    for label, rs in by_model.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        row = [label, len(rs)]
        row += [fmt_stat([r["metrics"].get(k) for r in rs]) for _, k, _ in cols]
        unseen = [r.get("metrics_unseen") or {} for r in rs]
        row += [fmt_stat([u.get("accuracy") for u in unseen]),
                fmt_stat([u.get("f1_macro") for u in unseen])]
        row += [_fmt_num(float(np.mean([r["timing"]["fit_seconds"] for r in rs]))),
                _fmt_num(float(np.mean([r["timing"]["predict_rows_per_second"] or 0 for r in rs])), 0),
                _fmt_num(rs[0].get("n_params"), 0) if rs[0].get("n_params") else "–"]
        sort_key = float(np.mean([r["metrics"]["f1_macro"] for r in rs]))
        rows.append((sort_key, row))
    rows.sort(key=lambda t: (-t[0], t[1][0]))

    title = f"## {dict(key)['dataset']} · {task} · {dict(key)['split']}"
    lines = [title, "", protocol_line(key, records), ""]
    if rows:
        lines.append(tabulate([r for _, r in rows], headers=headers, tablefmt="github",
                              disable_numparse=True))
        n_unseen = {(r.get("metrics_unseen") or {}).get("n") for r in ok}
        if n_unseen:
            n = sorted(x for x in n_unseen if x is not None)
            lines += ["", f"Unseen: scored on the {n[0] if n else 0:,} test rows whose feature vector "
                      "does not occur among the training rows (the full test set is scored too; "
                      "no row is dropped from it)."]
        seeds = {len(v) for v in by_model.values()}
        if max(seeds) > 1:
            lines += ["", "With several seeds: mean ± sample standard deviation over seeds."]
    else:
        lines.append("_No model finished._")
    if failed:
        lines += ["", "### Failed", ""]
        for r in sorted(failed, key=lambda r: (r["model"], r["seed"])):
            lines.append(f"- `{variant_label(r)}` seed {r['seed']}: {r.get('error')}")
    return "\n".join(lines)


def render_leaderboard(records: Iterable[dict], title: str = "idsbench leaderboard") -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[protocol_key(r)].append(r)
    parts = [f"# {title}", ""]
    for key in sorted(groups, key=lambda k: json.dumps(k)):
        parts += [render_group(key, groups[key]), ""]
    return "\n".join(parts).rstrip() + "\n"


def write_leaderboard(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render ``run_dir``'s records to ``run_dir/leaderboard.md`` (or ``out``)."""
    run_dir = Path(run_dir)
    target = Path(out) if out else run_dir / "leaderboard.md"
    atomic_write_text(target, render_leaderboard(load_records([run_dir])))
    return target
