"""Markdown leaderboards rendered from stored records (never from live models).

Records are grouped by protocol (dataset, split, task and every data setting that changes the
rows or features).  Each group gets:

* its protocol line and a table of models ranked by macro-F1 (mean ± sd over seeds), with the
  difference from the best model and whether it is significant on the shared test rows;
* the one-feature ``stump`` as the shortcut reference;
* published results for the same dataset and task beside the reproduced ones, with the
  protocol differences spelled out;
* 95% intervals over seeds, paired tests against the best model, a per-class table that flags
  classes with few test rows, links to the plots, and the failed jobs with their errors.

Failed jobs never appear as scores.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from tabulate import tabulate

from idsbench.records import atomic_write_text, load_records
from idsbench.report.baselines import (PublishedResult, applicable, load_published,
                                       protocol_differences)
from idsbench.report.groups import (Group, Variant, group_records, load_predictions,
                                    metric_values, protocol_key, variant_label)
from idsbench.report.plots import low_support
from idsbench.report.significance import Comparison, compare_with_best, t_interval

log = logging.getLogger(__name__)

__all__ = ["render_leaderboard", "write_leaderboard", "write_report", "run_plot_links",
           "protocol_key", "variant_label", "confidence_interval", "fmt_stat"]

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
#: metrics given a 95% interval over seeds
INTERVAL_COLUMNS = [("Accuracy", "accuracy", False), ("Macro-F1", "f1_macro", False),
                    ("Weighted-F1", "f1_weighted", False), ("Attack-F1", "f1", True),
                    ("ROC-AUC", "roc_auc", True)]
N_BOOT = 1000

#: kept for callers of the earlier module
confidence_interval = t_interval


# ------------------------------------------------------------------------------ formatting


def fmt_stat(values: list[float | None]) -> str:
    """One value as is; several as mean ± sample standard deviation."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}"


def _fmt_num(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table(rows: list[list], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _label(v: Variant) -> str:
    return f"{v.label} (one-feature rule)" if v.is_shortcut else v.label


# ------------------------------------------------------------------------------ sections


def protocol_line(group: Group) -> str:
    """One sentence with every setting that decides which rows and features were scored."""
    p = group.protocol
    ok = [r for v in group.variants for r in v.records]
    r0 = ok[0] if ok else group.records[0]
    split = p["split"]
    if split == "random":
        ts = p["test_size"] or 0.2
        split_desc = f"random stratified {1 - ts:.0%}/{ts:.0%} split (split seed {p['split_seed']})"
    else:
        split_desc = f"{split} partitions"
    sizes = None
    if isinstance(r0.get("n_train"), int):
        sizes = (f"train/val/test rows {r0['n_train']:,}/{r0.get('n_val', 0):,}/"
                 f"{r0.get('n_test', 0):,}")
    parts = [
        f"dataset **{p['dataset']}**", f"task **{p['task']}**", split_desc,
        f"validation {p['val_fraction']:.0%} of training rows" if p.get("val_fraction") else None,
        sizes,
        f"features {r0.get('n_features')}" if r0.get("n_features") else None,
        f"identity columns {p['identity_columns']}", f"dedup {p['dedup']}",
        f"training rows capped at {p['max_train_rows']:,}" if p.get("max_train_rows") else None,
        f"bad values {p['bad_values']}",
    ]
    profiles = sorted({str(r.get("profile", "?")) for r in group.records})
    parts.append(f"profile {', '.join(profiles)}")
    files = {(f["path"].split("/")[-1], f["sha256"][:12]) for r in group.records
             for f in (r.get("data") or {}).get("files", [])}
    if files:
        parts.append("files " + ", ".join(f"{n} (sha256 {s}…)" for n, s in sorted(files)))
    runs = sorted({r["run_id"] for r in group.records if r.get("run_id")})
    if len(runs) > 1:
        parts.append(f"merged from {len(runs)} runs ({', '.join(runs)})")
    return "Protocol: " + "; ".join(x for x in parts if x) + "."


def _comparisons(group: Group, n_boot: int) -> tuple[dict[str, Comparison], dict[str, str]]:
    """Paired tests of every variant against the best; and why a variant could not be tested."""
    best = group.best
    done: dict[str, Comparison] = {}
    why: dict[str, str] = {}
    if best is None or len(group.variants) < 2:
        return done, why

    def preds_of(v: Variant) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        y, out = None, {}
        for r in v.records:
            p = load_predictions(r)
            if p is None:
                continue
            if y is None:
                y = p["y_true"]
            elif not np.array_equal(y, p["y_true"]):
                continue  # seeds of one variant always share rows; skip a stray file
            out[r["seed"]] = p["y_pred"]
        return y, out

    y_best, p_best = preds_of(best)
    n_classes = len(group.classes) or None
    for v in group.variants[1:]:
        y, p = preds_of(v)
        if not p_best or not p:
            why[v.label] = "no stored predictions"
        elif not np.array_equal(y, y_best):
            why[v.label] = "different test rows"
        else:
            done[v.label] = compare_with_best(y_best, p_best, p, n_classes or
                                              int(max(y.max(), 1)) + 1, n_boot=n_boot)
    return done, why


def _main_table(group: Group, comps: dict[str, Comparison], why: dict[str, str]) -> str:
    cols = [c for c in METRIC_COLUMNS if group.task == "binary" or not c[2]]
    headers = (["Model", "Seeds"] + [c[0] for c in cols[:2]] + ["vs best (macro-F1)"]
               + [c[0] for c in cols[2:]]
               + ["Unseen acc.", "Unseen macro-F1", "Fit s", "Predict rows/s", "Params"])
    best = group.best
    rows = []
    for v in group.variants:
        stats = [fmt_stat(metric_values(v.records, k)) for _, k, _ in cols]
        if v is best:
            vs = "best"
        else:
            vs = f"{v.mean('f1_macro') - best.mean('f1_macro'):+.4f}"
            comp = comps.get(v.label)
            if comp is None:
                vs += f" ({why.get(v.label, 'untested')})"
            elif not comp.significant:
                vs += " n.s."
        fit = metric_values(v.records, "fit_seconds", "timing")
        speed = metric_values(v.records, "predict_rows_per_second", "timing")
        n_params = v.records[0].get("n_params")
        rows.append([_label(v), len(v.records)] + stats[:2] + [vs] + stats[2:] + [
            fmt_stat(metric_values(v.records, "accuracy", "metrics_unseen")),
            fmt_stat(metric_values(v.records, "f1_macro", "metrics_unseen")),
            _fmt_num(float(np.mean(fit)) if fit else None),
            _fmt_num(float(np.mean(speed)) if speed else None, 0),
            _fmt_num(n_params, 0) if n_params else "–",
        ])
    return _table(rows, headers)


def _table_notes(group: Group) -> list[str]:
    notes = []
    n_unseen = sorted({(r.get("metrics_unseen") or {}).get("n") for v in group.variants
                       for r in v.records} - {None})
    if n_unseen:
        notes.append(f"Unseen: scored on the {n_unseen[0]:,} test rows whose feature vector does "
                     "not occur among the training rows (the full test set is scored too; no "
                     "row is dropped from it).")
    if max(len(v.records) for v in group.variants) > 1:
        notes.append("With several seeds: mean ± sample standard deviation over seeds; 95% "
                     "intervals are under 'Spread over seeds'.")
    if len(group.variants) > 1:
        notes.append("vs best: this model's mean macro-F1 minus the best model's. **n.s.** marks "
                     "a difference that is not significant on the shared test rows (its 95% "
                     "paired bootstrap interval includes zero): those models cannot be told "
                     "apart from the best on this test set.")
    if group.duplicates:
        notes.append(f"{group.duplicates} record(s) repeated a model and seed already present "
                     "(merged or repeated runs): the latest of each is shown.")
    return notes


def _shortcut_note(group: Group, comps: dict[str, Comparison]) -> str:
    stump = group.shortcut
    if stump is None:
        return ("No one-feature baseline in this group: add `stump` to `--models` to see how far "
                "a single-feature rule gets under this protocol.")
    acc, f1 = stump.mean("accuracy"), stump.mean("f1_macro")
    text = (f"**Shortcut reference:** a single-feature rule (`stump`, one threshold on one "
            f"feature chosen on the training rows) reaches accuracy {acc:.4f} and macro-F1 "
            f"{f1:.4f} here.")
    described = [r for r in stump.records if (r.get("fitted") or {}).get("rule")]
    if described:  # records written before the rule was recorded have none
        text += (f" Its rule (seed {described[0]['seed']}, encoded features): "
                 f"`{described[0]['fitted']['rule']}`.")
    best = group.best
    if best is not stump:
        text += (f" The best model, `{best.label}`, adds {best.mean('accuracy') - acc:+.4f} "
                 f"accuracy and {best.mean('f1_macro') - f1:+.4f} macro-F1.")
        comp = comps.get(stump.label)
        if comp is not None and not comp.significant:
            text += (" On these test rows that margin is **not significant**: the best model "
                     "cannot be told apart from the rule.")
    below = [v.label for v in group.variants
             if v is not stump and v.mean("f1_macro") <= f1]
    if below:
        text += f" At or below the rule's macro-F1: {', '.join(f'`{b}`' for b in below)}."
    return text


def _training_of(variant: Variant | None) -> dict | None:
    if variant is None:
        return None
    t = dict(variant.records[0].get("training") or {})
    return t if any(k in t for k in ("lr", "batch_size", "epochs")) else None


def _published_section(group: Group, published: list[PublishedResult]) -> list[str]:
    p = group.protocol
    same, other = applicable(published, p["dataset"], p["task"])
    if not same and not other:
        return []
    plain = {v.label: v for v in group.variants}  # variants without extras carry the bare name

    # entries that are not a source's headline appear only when a run matches their settings
    shown, hidden = [], []
    for pub in same:
        train = _training_of(plain.get(pub.model)) if pub.model else None
        pt = pub.protocol.get("training") or {}
        matches = bool(train) and all(
            pt.get(k) is None or (train.get(k) is not None and float(train[k]) == float(pt[k]))
            for k in ("lr", "batch_size"))
        (shown if pub.headline or matches else hidden).append(pub)

    lines = ["### Published results", ""]
    if shown:
        lines += ["As reported by their sources, beside what this group reproduced (mean over "
                  "seeds of the same idsbench model). Δ: reproduced minus reported accuracy, in "
                  "percentage points. Published precision, recall and F1 are shown as printed; "
                  "their averaging is not stated, so they are not compared with ours.", ""]
        rows = []
        for pub in shown:
            m = pub.metrics
            prf = " / ".join(f"{m[k]:.4f}" if k in m else "–"
                             for k in ("precision", "recall", "f1"))
            variant = plain.get(pub.model) if pub.model else None
            if pub.model is None:
                target, repro, delta = f"{pub.paper_model} → (no idsbench model)", "–", "–"
            else:
                target = f"{pub.paper_model} → `{pub.model}`"
                if variant is None:
                    repro, delta = "not run", "–"
                else:
                    acc = variant.mean("accuracy")
                    n = len(variant.records)
                    repro = f"{acc:.4f} ({n} seed{'s' if n != 1 else ''})"
                    delta = (f"{(acc - m['accuracy']) * 100:+.2f}" if "accuracy" in m else "–")
            diffs = protocol_differences(pub, p, group.dataset_rows, _training_of(variant))
            cell = "differs: " + "; ".join(diffs) if diffs else "nothing stated differs"
            training = pub.protocol.get("training") or {}
            setting = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in training.items()
                                if k in ("lr", "batch_size") and v is not None)
            where = pub.where + (f" ({setting})" if setting else "")
            rows.append([pub.source, where, target,
                         f"{m['accuracy']:.4f}" if "accuracy" in m else "–", prf, repro, delta,
                         cell])
        lines.append(_table(rows, ["Source", "Where", "Model there → here", "Reported acc.",
                                   "Reported P / R / F1", "Reproduced acc.", "Δ acc. (pts)",
                                   "Protocol"]))

    # per table, once: what the source leaves unstated, and its caveats
    notes, seen_tables = [], set()
    for pub in shown:
        if (pub.source, pub.table) not in seen_tables and pub.unknown:
            seen_tables.add((pub.source, pub.table))
            notes.append(f"- Not stated by {pub.source}, {pub.table} (so not compared): "
                         + "; ".join(pub.unknown) + ".")
    seen_notes = set()
    for pub in shown:
        for scope, n in pub.notes:
            if (scope, n) not in seen_notes:
                seen_notes.add((scope, n))
                notes.append(f"- Note ({scope}): {n}.")
    by_table: dict[tuple, list[PublishedResult]] = {}
    for pub in hidden:
        by_table.setdefault((pub.source, pub.table, pub.file), []).append(pub)
    for (source, table, file), pubs in sorted(by_table.items()):
        accs = [x.metrics["accuracy"] for x in pubs if "accuracy" in x.metrics]
        span = f" (accuracy {min(accs):.4f}–{max(accs):.4f})" if accs else ""
        notes.append(f"- {source}, {table}: {len(pubs)} more setting(s) not shown{span}; each "
                     "appears when a run uses its learning rate and batch size. All figures: "
                     f"`baselines/{file}`.")
    if other:
        names = sorted({f"{o.source} {o.paper_model} ({o.task})" for o in other})
        notes.append(f"- Published for another task on {p['dataset']} (shown under that task): "
                     + "; ".join(names) + ".")
    if notes:
        lines += ["", *notes]
    return lines


def _spread_section(group: Group) -> list[str]:
    if max(len(v.records) for v in group.variants) < 2:
        return []
    cols = [c for c in INTERVAL_COLUMNS if group.task == "binary" or not c[2]]
    rows = []
    for v in group.variants:
        row = [_label(v), len(v.records)]
        for _, key, _ in cols:
            vals = metric_values(v.records, key)
            ci = t_interval(vals)
            if not vals:
                row.append("n/a")
            elif ci is None:
                row.append(f"{vals[0]:.4f} (1 seed)")
            else:
                row.append(f"{np.mean(vals):.4f} [{ci[0]:.4f}, {ci[1]:.4f}]")
        rows.append(row)
    return ["### Spread over seeds", "",
            "Mean over seeds with a 95% Student-t interval (n − 1 degrees of freedom). It shows "
            "how much training randomness moves a score, not test-set sampling; with two or "
            "three seeds it is wide.", "",
            _table(rows, ["Model", "Seeds"] + [f"{c[0]} mean [95% CI]" for c in cols])]


def _paired_section(group: Group, comps: dict[str, Comparison], why: dict[str, str],
                    n_boot: int) -> list[str]:
    if len(group.variants) < 2:
        return []
    best = group.best
    n_rows = best.records[0].get("n_test")
    rows = []
    for v in group.variants[1:]:
        comp = comps.get(v.label)
        if comp is None:
            rows.append([_label(v)] + ["–"] * 5 + [why.get(v.label, "untested")])
            continue
        only_best = sum(m.only_a for m in comp.mcnemar)
        only_this = sum(m.only_b for m in comp.mcnemar)
        pairs = len(comp.mcnemar)
        f1 = comp.f1_macro
        rows.append([
            _label(v), str(pairs),
            f"{comp.accuracy.difference:+.4f}",
            f"{f1.difference:+.4f} [{f1.low:+.4f}, {f1.high:+.4f}]",
            f"{only_best:,} / {only_this:,}",
            _fmt_p(comp.mcnemar_max_p) + (f" (largest of {pairs})" if pairs > 1 else ""),
            ("worse" if f1.difference < 0 else "better") if comp.significant
            else "not significant (n.s.)",
        ])
    rows_text = (f"the same {n_rows:,} test rows" if isinstance(n_rows, int)
                 else "the same test rows")
    return ["### Paired tests against the best model", "",
            f"Each model against `{best.label}` on {rows_text}. Δ: this model minus the best. "
            f"The macro-F1 interval is a 95% paired bootstrap ({n_boot:,} resamples of the test "
            "rows, the same rows for both models, each model averaged over its seeds); the "
            "verdict follows it. McNemar: test rows only the best model gets right / only this "
            "model gets right (summed over seed pairs) and the exact two-sided p-value on "
            "accuracy, per seed pair (the largest is shown). No correction for testing several "
            "models is applied.", "",
            _table(rows, ["Model", "Seed pairs", "Δ accuracy", "Δ macro-F1 [95% CI]",
                          "Only best right / only this right", "McNemar p", "Verdict"])]


def _per_class_section(group: Group) -> list[str]:
    classes = group.classes
    best = group.best
    if not classes or best is None:
        return []
    per_best = best.records[0]["metrics"].get("per_class") or {}
    support = [int((per_best.get(c) or {}).get("support", 0)) for c in classes]
    total = sum(support)
    train_counts = (best.records[0].get("data") or {}).get("train_class_counts") or {}
    rows, flagged = [], []
    for c, s in zip(classes, support):
        flag = low_support(s, total)
        if flag:
            flagged.append(f"{c} ({s:,} test rows, {s / total:.2%})" if total else c)
        row = [f"{c} ⚠" if flag else c, f"{s:,}",
               f"{train_counts[c]:,}" if isinstance(train_counts.get(c), int) else "?"]
        for v in group.variants:
            cells = []
            for key in ("precision", "recall", "f1"):
                vals = [r["metrics"]["per_class"][c][key] for r in v.records
                        if c in (r["metrics"].get("per_class") or {})]
                cells.append(f"{np.mean(vals):.3f}" if vals else "n/a")
            row.append(" / ".join(cells))
        rows.append(row)
    lines = ["### Per class", "",
             "Precision / recall / F1 of each class on the test rows (mean over seeds). ⚠: fewer "
             "than 100 test rows or under 1% of the test set; one row more or less moves these "
             "figures visibly.", "",
             _table(rows, ["Class", "Test rows", "Train rows"]
                    + [_label(v) for v in group.variants])]
    if flagged:
        lines += ["", "Low support: " + "; ".join(flagged) + "."]
    return lines


def _plots_section(files: dict | None, base_dir: Path | None) -> list[str]:
    if not files or base_dir is None:
        return []

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, base_dir)).as_posix()

    names = [("metrics", "Metrics by model"), ("f1_vs_time", "Macro-F1 against training time"),
             ("recall_per_class", "Recall per class (heatmap)")]
    lines = ["### Plots", ""]
    lines += [f"- [{title}]({link(files[key])})" for key, title in names if key in files]
    confusion = files.get("confusion") or {}
    if confusion:
        lines.append("- Confusion matrices: " + ", ".join(
            f"[{label}]({link(path)})" for label, path in confusion.items()))
    return lines if len(lines) > 2 else []


def render_group(group: Group, published: list[PublishedResult] | None = None,
                 plot_files: dict | None = None, base_dir: Path | None = None,
                 n_boot: int = N_BOOT) -> str:
    """The markdown of one protocol group."""
    p = group.protocol
    lines = [f"## {p['dataset']} · {p['task']} · {p['split']}", "", protocol_line(group), ""]
    if group.variants:
        comps, why = _comparisons(group, n_boot)
        lines.append(_main_table(group, comps, why))
        for note in _table_notes(group):
            lines += ["", note]
        lines += ["", _shortcut_note(group, comps)]
        for section in (_published_section(group, published or []), _spread_section(group),
                        _paired_section(group, comps, why, n_boot), _per_class_section(group),
                        _plots_section(plot_files, base_dir)):
            if section:
                lines += ["", *section]
    else:
        lines.append("_No model finished._")
    if group.failed:
        lines += ["", "### Failed", ""]
        for r in group.failed:
            lines.append(f"- `{variant_label(r)}` seed {r['seed']}: {r.get('error')}")
    return "\n".join(lines)


def render_leaderboard(records: Iterable[dict], title: str = "idsbench leaderboard", *,
                       baselines: bool = True, published: list[PublishedResult] | None = None,
                       plots: dict[str, dict] | None = None, base_dir: str | Path | None = None,
                       n_boot: int = N_BOOT) -> str:
    """The whole leaderboard as markdown.

    Parameters
    ----------
    records
        Records from any number of runs (see :func:`idsbench.records.load_records`); records
        that carry ``_run_dir`` have their stored predictions used for the paired tests.
    title
        First heading.
    baselines
        Show published results beside the reproduced ones.
    published
        The published results to use (default: the repository's ``baselines/`` folder).
    plots, base_dir
        Figures per group slug (from :func:`idsbench.report.plots.render_plots`) and the
        folder the markdown will live in, which the links are made relative to.
    n_boot
        Bootstrap resamples for the paired tests.
    """
    if baselines and published is None:
        published = load_published()
    parts = [f"# {title}", ""]
    for group in group_records(records):
        files = (plots or {}).get(group.slug)
        parts += [render_group(group, published if baselines else None, files,
                               Path(base_dir) if base_dir else None, n_boot), ""]
    return "\n".join(parts).rstrip() + "\n"


def write_report(records: list[dict], out: str | Path, title: str = "idsbench leaderboard", *,
                 plots: bool = False, baselines: bool = True) -> Path:
    """Write the leaderboard of ``records`` to ``out``, plots (when asked) to ``out``'s folder.

    Parameters
    ----------
    plots
        Draw the figures into ``<folder of out>/plots/`` and link them (a few seconds).
        Without it, figures already there are still linked when that folder is a run
        directory, so a run's leaderboard keeps the links its final rendering made.
    """
    from idsbench.report.plots import existing_plots, render_plots

    target = Path(out)
    plots_dir = target.parent / "plots"
    groups = group_records(records)
    if plots:
        files = render_plots(groups, plots_dir)
    elif (target.parent / "records").is_dir() and plots_dir.is_dir():
        files = existing_plots(groups, plots_dir)
    else:
        files = None
    text = render_leaderboard(records, title, baselines=baselines, plots=files,
                              base_dir=target.parent)
    atomic_write_text(target, text)
    return target


def run_plot_links(paths: Iterable[str | Path], records: list[dict]) -> dict:
    """For a leaderboard printed from one run directory: that run's figures, linked relative to
    it (so the text matches the run's own ``leaderboard.md``).  Empty otherwise."""
    from idsbench.report.plots import existing_plots

    paths = [Path(p) for p in paths]
    if len(paths) != 1 or not (paths[0] / "records").is_dir() or not (paths[0] / "plots").is_dir():
        return {}
    return {"plots": existing_plots(group_records(records), paths[0] / "plots"),
            "base_dir": paths[0]}


def write_leaderboard(run_dir: str | Path, out: str | Path | None = None, *, plots: bool = False,
                      baselines: bool = True) -> Path:
    """Render ``run_dir``'s records to ``run_dir/leaderboard.md`` (or ``out``).

    The runner calls this after every job (cheap: no plots) and once with ``plots=True`` when
    the run ends.  Figures already drawn into ``run_dir/plots/`` stay linked.
    """
    run_dir = Path(run_dir)
    target = Path(out) if out else run_dir / "leaderboard.md"
    return write_report(load_records([run_dir]), target, plots=plots, baselines=baselines)
