"""Data audit: what in a dataset's split can inflate, or cap, a benchmark's scores.

``audit_dataset(config)`` loads the cleaned tables, splits them exactly as :func:`prepare`
does (:func:`idsbench.data.prepare.split_frames`) and measures, over the raw cleaned feature
columns the default benchmark uses (identity columns excluded):

* duplicate rows and duplicate feature vectors within the training pool and the test rows;
* test rows whose feature vector also occurs among the training rows ("twins");
* feature vectors that carry more than one label, and the accuracy ceiling that implies;
* the best single-feature rule (a depth-1 tree per column, chosen on training rows);
* each identity column's standalone ROC-AUC (addresses target-encoded, ports as numbers);
* constant and near-constant columns;
* placeholder (``-``) and missing values per column.

"Training rows" here means the whole training pool: every non-test row, before the
benchmark's optional de-duplication, subsampling and validation split.  The result is a plain
dict (written as JSON); :func:`render_markdown` renders it, so a report can be re-rendered
from the stored JSON without touching the data.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idsbench.data.manifest import Manifest, get_manifest
from idsbench.data.prepare import DataConfig, load_frames, split_frames
from idsbench.errors import ConfigError

log = logging.getLogger(__name__)

#: a column whose most frequent value covers at least this share of training rows
NEAR_CONSTANT_SHARE = 0.999
#: how many single-feature rules the report lists
TOP_RULES = 5
#: leaf size of the one-feature tree that scores a numeric identity column (a port)
PORT_TREE_MIN_LEAF = 20
AUDIT_VERSION = 1
BINARY_NAMES = ("normal", "attack")


# --------------------------------------------------------------------------------------------
# entry points


def audit_dataset(cfg: DataConfig, near_constant: float = NEAR_CONSTANT_SHARE) -> dict[str, Any]:
    """Audit the split that ``cfg`` describes; returns a JSON-serialisable dict.

    Parameters
    ----------
    cfg : DataConfig
        Dataset, split, split seed, test size, task and data directory.  Settings that act
        after the split (``dedup``, ``max_train_rows``, ``identity_columns``) are ignored: the
        audit describes the data, not one benchmark configuration.
    near_constant : float
        Top-value share at or above which a column counts as near-constant.

    Returns
    -------
    dict
        See :func:`audit_tables`, plus the dataset, split and files audited.
    """
    cfg = cfg.resolved()
    manifest = get_manifest(cfg.dataset)
    frames, file_info = load_frames(cfg)
    pool, test = split_frames(cfg, manifest, frames)
    quality = [f["quality"] for f in file_info["files"]]
    log.info("auditing %s, split %s (seed %d): %d training and %d test rows", cfg.dataset,
             cfg.split, cfg.split_seed, len(pool), len(test))
    result = audit_tables(pool, test, manifest, task=cfg.task, quality=quality,
                          near_constant=near_constant)
    result["source"] = {
        "dataset": cfg.dataset, "title": manifest.title, "split": cfg.split,
        "split_seed": cfg.split_seed, "test_size": cfg.test_size if cfg.split == "random" else None,
        "task": cfg.task, "data_root": file_info["data_root"],
        "files": [{k: f[k] for k in ("role", "path", "sha256", "rows", "status")}
                  for f in file_info["files"]],
    }
    return result


def audit_tables(pool: pd.DataFrame, test: pd.DataFrame, manifest: Manifest,
                 task: str = "binary", quality: list[dict] | None = None,
                 near_constant: float = NEAR_CONSTANT_SHARE) -> dict[str, Any]:
    """Audit a training pool and test rows that are already cleaned and split.

    Parameters
    ----------
    pool, test : pandas.DataFrame
        Cleaned tables (as :func:`idsbench.data.io.load_table` returns them) holding the
        manifest's columns: training rows and test rows.
    manifest : Manifest
        Which columns are features, identity columns, targets and row indices.
    task : {"binary", "multiclass"}
        The target of the single-feature rule and of the majority-class rate.
    quality : list of dict, optional
        The files' quality reports; numeric placeholder and bad-value counts come from them
        (after cleaning, a numeric placeholder is indistinguishable from any other missing cell).
    near_constant : float
        Top-value share at or above which a column counts as near-constant.

    Returns
    -------
    dict
        One entry per finding (``duplicates``, ``twins``, ``label_conflicts``,
        ``single_feature_rule``, ``identity``, ``constant_columns``, ``placeholders``), each
        with a one-sentence ``meaning``, and ``findings``: the headline list.
    """
    if task not in ("binary", "multiclass"):
        raise ConfigError(f"audit task {task!r}: expected 'binary' or 'multiclass'")
    if not 0 < near_constant <= 1:
        raise ConfigError(f"near-constant share must lie in (0, 1], got {near_constant}")
    if len(pool) == 0 or len(test) == 0:
        raise ConfigError(f"the audit needs training and test rows; got {len(pool)} training "
                          f"and {len(test)} test rows")
    pool = pool.reset_index(drop=True)
    test = test.reset_index(drop=True)
    features = manifest.feature_columns(identity=False)

    # one integer per distinct feature vector, shared by both tables, so that every count
    # below (duplicates, twins, conflicting labels) compares the same vectors
    ids_pool, ids_test = _vector_ids(pool, test, features)

    result: dict[str, Any] = {
        "audit_version": AUDIT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task, "n_train": len(pool), "n_test": len(test),
        "feature_columns": features, "identity_columns": list(manifest.identity),
    }
    result["duplicates"] = _duplicates(pool, test, manifest, ids_pool, ids_test)
    result["twins"] = _twins(pool, test, manifest, ids_pool, ids_test)
    result["label_conflicts"] = _label_conflicts(pool, test, manifest, ids_pool, ids_test)
    result["single_feature_rule"] = _single_feature_rules(pool, test, manifest, task)
    result["identity"] = _identity(pool, test, manifest)
    result["constant_columns"] = _constant_columns(pool, manifest, near_constant)
    result["placeholders"] = _placeholders(pd.concat([pool, test], ignore_index=True),
                                           manifest, quality)
    result["findings"] = _headlines(result)
    return result


# --------------------------------------------------------------------------------------------
# the measurements


def _vector_ids(pool: pd.DataFrame, test: pd.DataFrame,
                columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    # groupby with dropna=False treats missing cells as equal, as duplicated() does
    both = pd.concat([pool[columns], test[columns]], ignore_index=True)
    ids = both.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    return ids[:len(pool)], ids[len(pool):]


def _row_columns(df: pd.DataFrame, manifest: Manifest) -> list[str]:
    """Every column except row indices (UNSW's ``id`` numbers rows, so no two rows share it)."""
    row_index = set(manifest.never_features) - set(manifest.targets.values())
    return [c for c in df.columns if c not in row_index]


def _repeats(ids: np.ndarray) -> int:
    """Rows that repeat an earlier row: rows minus distinct values."""
    return int(len(ids) - len(np.unique(ids)))


def _duplicates(pool, test, manifest, ids_pool, ids_test) -> dict:
    row_cols = _row_columns(pool, manifest)
    both = pd.concat([pool, test], ignore_index=True)
    scopes = {"train": (pool, ids_pool), "test": (test, ids_test),
              "all": (both, np.concatenate([ids_pool, ids_test]))}
    out: dict[str, Any] = {"row_columns": row_cols}
    for name, (df, ids) in scopes.items():
        out[name] = {
            "rows": len(df),
            "duplicate_rows": int(df[row_cols].duplicated().sum()),
            "duplicate_feature_vectors": _repeats(ids),
            "distinct_feature_vectors": int(len(np.unique(ids))),
        }
    if manifest.identity:
        # what --identity-columns keep --dedup train would drop from the training pool
        with_identity = manifest.feature_columns(identity=True)
        out["train"]["duplicate_feature_vectors_with_identity"] = int(
            pool[with_identity].duplicated().sum())
    train = out["train"]
    out["meaning"] = (
        f"{train['duplicate_feature_vectors']:,} of {train['rows']:,} training rows "
        f"({_share(train['duplicate_feature_vectors'], train['rows'])}) repeat a feature vector "
        "seen before, so those flows weigh several times in training (and in test scores); "
        "'--dedup train' keeps one copy of each.")
    return out


def _twins(pool, test, manifest, ids_pool, ids_test) -> dict:
    twin = np.isin(ids_test, ids_pool)
    names = test[manifest.targets["multiclass"]].to_numpy().astype(str)
    present = set(names)
    order = [c for c in manifest.classes["multiclass"] if c in present]
    per_class = {}
    for cls in order + sorted(present - set(order)):
        mask = names == cls
        per_class[cls] = {"rows": int(mask.sum()), "twins": int(twin[mask].sum()),
                          "share": float(twin[mask].mean())}
    out: dict[str, Any] = {
        "test_rows": int(len(twin)), "twins": int(twin.sum()), "share": float(twin.mean()),
        "unseen": int((~twin).sum()), "per_class": per_class,
    }
    if manifest.identity:
        with_identity = manifest.feature_columns(identity=True)
        ip, it = _vector_ids(pool, test, with_identity)
        both = np.isin(it, ip)
        out["with_identity"] = {"twins": int(both.sum()), "share": float(both.mean())}
    out["meaning"] = (
        f"{_share(out['twins'], out['test_rows'])} of test rows have an exact training twin, so "
        "a model can score them by memory; the leaderboard's 'Unseen' columns score only the "
        f"other {out['unseen']:,} rows.")
    return out


def _conflicts(ids: np.ndarray, labels: np.ndarray) -> dict:
    frame = pd.DataFrame({"v": ids, "y": labels})
    n_labels = frame.groupby("v")["y"].nunique()
    mixed = n_labels.index[n_labels > 1]
    # the best any function of the features can do: each vector gets its most common label
    best = frame.groupby(["v", "y"]).size().groupby(level="v").max().sum()
    return {"vectors": int(len(mixed)), "rows": int(frame["v"].isin(mixed).sum()),
            "accuracy_ceiling": float(best / len(frame)) if len(frame) else None}


def _label_conflicts(pool, test, manifest, ids_pool, ids_test) -> dict:
    ids_all = np.concatenate([ids_pool, ids_test])
    out: dict[str, Any] = {}
    for task in ("binary", "multiclass"):
        col = manifest.targets[task]
        y_pool, y_test = pool[col].to_numpy(), test[col].to_numpy()
        out[task] = {
            "target": col,
            "train": _conflicts(ids_pool, y_pool),
            "test": _conflicts(ids_test, y_test),
            "all": _conflicts(ids_all, np.concatenate([y_pool, y_test])),
        }
    b, m = out["binary"]["test"], out["multiclass"]["test"]
    out["meaning"] = (
        f"{out['binary']['all']['vectors']:,} feature vectors carry both labels and "
        f"{out['multiclass']['all']['vectors']:,} more than one class, so even a perfect model "
        f"on these features scores at most {b['accuracy_ceiling']:.2%} binary and "
        f"{m['accuracy_ceiling']:.2%} multiclass accuracy on the test rows.")
    return out


def _target(df: pd.DataFrame, manifest: Manifest, task: str) -> np.ndarray:
    if task == "binary":
        normal, attack = BINARY_NAMES
        return np.where(df[manifest.targets["binary"]].to_numpy() == 1, attack, normal)
    return df[manifest.targets["multiclass"]].to_numpy().astype(str)


def _one_column(pool: pd.DataFrame, test: pd.DataFrame, col: str, categorical: bool):
    """Training and test design matrices for one column, and a function naming a split."""
    from sklearn.preprocessing import OneHotEncoder

    if categorical:
        # one indicator per level: a depth-1 tree then picks "col == level" against the rest
        enc = OneHotEncoder(handle_unknown="ignore").fit(pool[[col]])
        levels = enc.categories_[0]
        return (enc.transform(pool[[col]]), enc.transform(test[[col]]),
                lambda feature, _t: ("==", str(levels[feature])))
    x_pool = pool[[col]].to_numpy(dtype=np.float64)
    x_test = test[[col]].to_numpy(dtype=np.float64)
    return x_pool, x_test, lambda _f, threshold: ("<=", f"{threshold:.6g}")


def _column_kind(col: str, manifest: Manifest) -> str:
    if col in manifest.identity:
        return "identity"
    for kind, members in (("numeric", manifest.numeric), ("flag", manifest.boolean),
                          ("category", manifest.categorical), ("text", manifest.text)):
        if col in members:
            return kind
    return "other"


def _describe_stump(tree, col: str, name_split, has_missing: bool) -> dict:
    t = tree.tree_
    classes = [str(c) for c in tree.classes_]
    if t.node_count == 1:  # the column never splits the training rows
        return {"column": col, "rule": f"always {classes[int(np.argmax(t.value[0]))]}"}
    left, right = t.children_left[0], t.children_right[0]
    label_left = classes[int(np.argmax(t.value[left]))]
    label_right = classes[int(np.argmax(t.value[right]))]
    op, value = name_split(int(t.feature[0]), float(t.threshold[0]))
    if op == "==":  # the indicator is 1 (above the threshold) on the level itself
        return {"column": col, "rule": f"{col} == {value!r} -> {label_right}, else {label_left}"}
    missing = ""
    if has_missing and getattr(t, "missing_go_to_left", None) is not None:
        missing = f"; missing -> {label_left if t.missing_go_to_left[0] else label_right}"
    return {"column": col, "rule": f"{col} <= {value} -> {label_left}, else {label_right}{missing}"}


def _single_feature_rules(pool, test, manifest, task) -> dict:
    from sklearn.tree import DecisionTreeClassifier

    y_pool, y_test = _target(pool, manifest, task), _target(test, manifest, task)
    rules = []
    for col in manifest.feature_columns(identity=False):
        x_pool, x_test, name_split = _one_column(pool, test, col, col in manifest.categorical)
        tree = DecisionTreeClassifier(max_depth=1, random_state=0).fit(x_pool, y_pool)
        has_missing = col not in manifest.categorical and bool(pool[col].isna().any())
        rules.append({**_describe_stump(tree, col, name_split, has_missing),
                      "train_accuracy": float(tree.score(x_pool, y_pool)),
                      "test_accuracy": float(tree.score(x_test, y_test))})

    # chosen on training rows only; the test accuracy is what the choice is worth
    rules.sort(key=lambda r: -r["train_accuracy"])
    labels, counts = np.unique(y_pool, return_counts=True)
    majority = str(labels[np.argmax(counts)])
    best = rules[0]
    out = {
        "target": manifest.targets[task], "best": best, "top": rules[:TOP_RULES],
        "majority_class": majority, "majority_rate": float(np.mean(y_test == majority)),
    }
    out["meaning"] = (
        f"One rule on `{best['column']}` reaches {best['test_accuracy']:.2%} test accuracy "
        f"against {out['majority_rate']:.2%} for always predicting '{majority}'; a model is "
        "worth what it adds above this line.")
    return out


def _identity(pool, test, manifest) -> dict:
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import TargetEncoder
    from sklearn.tree import DecisionTreeClassifier

    if not manifest.identity:
        return {"columns": {}, "meaning": "The manifest lists no identity columns (addresses, "
                                          "ports), so there is no such shortcut to measure."}
    col_y = manifest.targets["binary"]
    y_pool, y_test = pool[col_y].to_numpy(), test[col_y].to_numpy()
    out: dict[str, Any] = {"columns": {}}
    for col in manifest.identity:
        if col in manifest.identity_categorical:
            # the smoothed attack rate per address, learnt on training rows (unseen: the mean)
            model = TargetEncoder(target_type="binary", random_state=0).fit(pool[[col]], y_pool)
            score = model.transform(test[[col]])[:, 0]
            how = "target encoding fitted on training rows"
        else:
            x_pool = pool[[col]].to_numpy(dtype=np.float64)
            model = DecisionTreeClassifier(min_samples_leaf=PORT_TREE_MIN_LEAF, random_state=0)
            model.fit(x_pool, y_pool)
            score = model.predict_proba(test[[col]].to_numpy(dtype=np.float64))[:, 1]
            how = f"decision tree on the number (min {PORT_TREE_MIN_LEAF} rows per leaf)"
        seen = test[col].isin(pool[col].unique()).to_numpy()
        auc = float(roc_auc_score(y_test, score)) if len(np.unique(y_test)) == 2 else None
        out["columns"][col] = {"roc_auc": auc, "model": how,
                               "distinct_in_train": int(pool[col].nunique(dropna=False)),
                               "test_share_seen_in_train": float(seen.mean())}
    aucs = {c: v["roc_auc"] for c, v in out["columns"].items() if v["roc_auc"] is not None}
    if aucs:
        top = max(aucs, key=aucs.get)
        out["meaning"] = (
            f"`{top}` alone separates attacks from normal traffic with ROC-AUC {aucs[top]:.3f}: "
            "with '--identity-columns keep' a model can learn which hosts the capture attacked "
            "rather than how attacks behave, which does not carry over to another network.")
    else:
        out["meaning"] = "The test rows hold one class only, so no ROC-AUC can be computed."
    return out


def _constant_columns(pool, manifest, near_constant) -> dict:
    columns = manifest.feature_columns(identity=True)
    rows = []
    for col in columns:
        counts = pool[col].value_counts(dropna=False)
        share = float(counts.iloc[0] / len(pool))
        if share >= near_constant:
            top = counts.index[0]
            rows.append({"column": col, "top_value": None if pd.isna(top) else _plain(top),
                         "top_share": share, "distinct": int(len(counts)),
                         "constant": bool(len(counts) == 1)})
    n_const = sum(r["constant"] for r in rows)
    return {
        "threshold": near_constant, "columns": rows,
        "meaning": (f"{n_const} column(s) are constant and {len(rows) - n_const} near-constant "
                    f"(top value >= {near_constant:.1%}) in training rows; a constant column "
                    "carries nothing, and a near-constant one lets a model memorise its few "
                    "odd rows."),
    }


def _placeholders(both: pd.DataFrame, manifest: Manifest, quality: list[dict] | None) -> dict:
    ph = manifest.placeholder
    reported: dict[str, int] = {}
    bad: dict[str, int] = {}
    for q in quality or []:
        for col, n in q.get("placeholders", {}).items():
            reported[col] = reported.get(col, 0) + int(n)
        for col, info in q.get("bad_values", {}).items():
            bad[col] = bad.get(col, 0) + int(info["count"])

    numeric = set(manifest.numeric) | set(manifest.boolean) | \
        (set(manifest.identity) - set(manifest.identity_categorical))
    columns = manifest.feature_columns(identity=True) + [c for c in manifest.text if c in both]
    rows = []
    for col in columns:
        if col in numeric:
            # cleaning turned placeholders into missing values; the quality report counted them
            placeholders = reported.get(col, 0) if quality is not None else None
        else:
            # text columns keep the placeholder as a value (cleaning filled blanks with it)
            placeholders = int((both[col] == ph).sum())
        missing = int(both[col].isna().sum())
        if placeholders or missing or bad.get(col):
            share = max(placeholders or 0, missing) / len(both)
            rows.append({"column": col, "kind": _column_kind(col, manifest),
                         "placeholders": placeholders, "bad_values": bad.get(col, 0),
                         "missing": missing, "share": float(share)})
    return {
        "placeholder": ph, "rows": len(both), "columns": rows,
        "meaning": (f"'{ph}' marks a field that does not apply to the flow (no DNS, no HTTP): a "
                    "level of its own in text columns and a missing, imputed value in numeric "
                    "ones, so models learn from which fields are absent."),
    }


def _headlines(result: dict) -> list[dict]:
    lines = []
    d, t = result["duplicates"]["train"], result["twins"]
    lines.append({"finding": "duplicate feature vectors in training rows",
                  "figure": f"{d['duplicate_feature_vectors']:,} of {d['rows']:,}",
                  "meaning": result["duplicates"]["meaning"]})
    lines.append({"finding": "test rows with a training twin",
                  "figure": f"{t['twins']:,} of {t['test_rows']:,} ({t['share']:.1%})",
                  "meaning": t["meaning"]})
    lc = result["label_conflicts"]
    n_binary, n_multi = lc["binary"]["all"]["vectors"], lc["multiclass"]["all"]["vectors"]
    lines.append({"finding": "feature vectors with conflicting labels (binary / multiclass)",
                  "figure": f"{n_binary:,} / {n_multi:,}",
                  "meaning": lc["meaning"]})
    r = result["single_feature_rule"]
    lines.append({"finding": "best single-feature rule vs majority class (test accuracy)",
                  "figure": f"{r['best']['test_accuracy']:.2%} vs {r['majority_rate']:.2%}",
                  "meaning": r["meaning"]})
    ident = result["identity"]["columns"]
    if ident:
        best = max(ident, key=lambda c: ident[c]["roc_auc"] or 0)
        lines.append({"finding": "strongest identity column alone (ROC-AUC)",
                      "figure": f"{best} {ident[best]['roc_auc']:.3f}",
                      "meaning": result["identity"]["meaning"]})
    c = result["constant_columns"]["columns"]
    n_const = sum(x["constant"] for x in c)
    lines.append({"finding": "constant / near-constant columns",
                  "figure": f"{n_const} / {len(c) - n_const}",
                  "meaning": result["constant_columns"]["meaning"]})
    p = result["placeholders"]
    lines.append({"finding": f"columns with '{p['placeholder']}' or missing values",
                  "figure": f"{len(p['columns'])}", "meaning": p["meaning"]})
    return lines


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _plain(value):
    """A JSON-friendly scalar (numpy numbers become Python numbers)."""
    return value.item() if hasattr(value, "item") else value


# --------------------------------------------------------------------------------------------
# output


def render_markdown(audit: dict) -> str:
    """The audit as a markdown report (headline list first, then one section per finding)."""
    from tabulate import tabulate

    def table(rows, headers):
        return tabulate(rows, headers=headers, tablefmt="github", floatfmt=".4f")

    src = audit.get("source", {})
    title = f"Data audit: {src.get('dataset', 'tables')}"
    if src:
        title += f", split {src['split']} (seed {src['split_seed']}), task {src['task']}"
    out = [f"# {title}", ""]
    if src:
        out += [f"Files: " + "; ".join(f"{f['role']} {Path(f['path']).name} ({f['rows']:,} rows, "
                                      f"SHA-256 {f['sha256'][:12]}…, {f['status']})"
                                      for f in src["files"]), ""]
    out += [f"Training rows (the whole pool, before validation split, dedup or subsampling): "
            f"{audit['n_train']:,}; test rows: {audit['n_test']:,}; feature columns: "
            f"{len(audit['feature_columns'])} (identity columns excluded: "
            f"{', '.join(audit['identity_columns']) or 'none'}).", ""]

    out += ["## Headlines", ""]
    out += [table([(h["finding"], h["figure"], h["meaning"]) for h in audit["findings"]],
                  ["finding", "figure", "what it means"]), ""]

    d = audit["duplicates"]
    out += ["## Duplicates", "", d["meaning"], ""]
    rows = [(s, d[s]["rows"], d[s]["duplicate_rows"], d[s]["duplicate_feature_vectors"],
             d[s]["distinct_feature_vectors"]) for s in ("train", "test", "all")]
    out += [table(rows, ["rows", "count", "duplicate rows (all columns but row ids)",
                         "duplicate feature vectors", "distinct feature vectors"]), ""]
    if "duplicate_feature_vectors_with_identity" in d["train"]:
        n = d["train"]["duplicate_feature_vectors_with_identity"]
        out += [f"With identity columns as features, {n:,} training rows repeat a feature vector.",
                ""]

    t = audit["twins"]
    out += ["## Test rows with a training twin", "", t["meaning"], ""]
    rows = [(c, v["rows"], v["twins"], v["share"]) for c, v in t["per_class"].items()]
    rows.append(("all", t["test_rows"], t["twins"], t["share"]))
    out += [table(rows, ["class", "test rows", "with twin", "share"]), ""]
    if "with_identity" in t:
        out += [f"With identity columns as features: {t['with_identity']['twins']:,} twins "
                f"({t['with_identity']['share']:.1%}).", ""]

    lc = audit["label_conflicts"]
    out += ["## Feature vectors with more than one label", "", lc["meaning"], ""]
    rows = [(task, scope, lc[task][scope]["vectors"], lc[task][scope]["rows"],
             lc[task][scope]["accuracy_ceiling"])
            for task in ("binary", "multiclass") for scope in ("train", "test", "all")]
    out += [table(rows, ["target", "rows", "vectors with >1 label", "rows in them",
                         "accuracy ceiling"]), ""]

    r = audit["single_feature_rule"]
    out += ["## Best single-feature rule", "", r["meaning"], "",
            f"A depth-1 tree per column, chosen by training accuracy; target `{r['target']}`; "
            f"majority class '{r['majority_class']}' makes up {r['majority_rate']:.2%} of test "
            "rows.", ""]
    rules = [(x["column"], x["rule"], x["train_accuracy"], x["test_accuracy"]) for x in r["top"]]
    out += [table(rules, ["column", "rule", "train accuracy", "test accuracy"]), ""]

    ident = audit["identity"]
    out += ["## Identity columns alone", "", ident["meaning"], ""]
    if ident["columns"]:
        out += [table([(c, v["roc_auc"], v["distinct_in_train"], v["test_share_seen_in_train"],
                        v["model"]) for c, v in ident["columns"].items()],
                      ["column", "test ROC-AUC", "distinct in train", "test values seen in train",
                       "one-feature model"]), ""]

    cc = audit["constant_columns"]
    out += ["## Constant and near-constant columns", "", cc["meaning"], ""]
    if cc["columns"]:
        out += [table([(x["column"], x["top_value"], x["top_share"], x["distinct"],
                        "yes" if x["constant"] else "") for x in cc["columns"]],
                      ["column", "top value", "top share", "distinct", "constant"]), ""]

    p = audit["placeholders"]
    out += [f"## Placeholder ('{p['placeholder']}') and missing values", "", p["meaning"], ""]
    if p["columns"]:
        out += [table([(x["column"], x["kind"], x["placeholders"], x["bad_values"], x["missing"],
                        x["share"]) for x in p["columns"]],
                      ["column", "kind", "placeholders", "bad values", "missing after cleaning",
                       f"share of {p['rows']:,} rows"]), ""]
    return "\n".join(out)


def audit_stem(audit: dict) -> str:
    """File name stem: ``<dataset>-<split>`` (plus the task and seed when not the defaults)."""
    src = audit.get("source") or {}
    stem = f"{src.get('dataset', 'tables')}-{src.get('split', 'custom')}"
    if audit.get("task", "binary") != "binary":
        stem += f"-{audit['task']}"
    if src.get("split_seed"):
        stem += f"-seed{src['split_seed']}"
    return stem


def write_audit(audit: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<stem>.md`` and ``.json``; returns both paths."""
    from idsbench.records import atomic_write_text

    out_dir = Path(out_dir)
    stem = audit_stem(audit)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    atomic_write_text(js, json.dumps(audit, indent=2, allow_nan=True) + "\n")
    atomic_write_text(md, render_markdown(audit) + "\n")
    return md, js
