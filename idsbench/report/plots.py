"""PNG figures for a leaderboard, drawn from stored records (never by running a model).

For each protocol group: metric bars per model, macro-F1 against training time, recall per
class as a heatmap, and one confusion matrix per model.  Figures are drawn with matplotlib's
object API on the Agg canvas, so nothing global (pyplot state, the backend) is touched.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from idsbench.report.groups import Group, Variant, metric_values

log = logging.getLogger(__name__)

#: (label, metric key, binary only) drawn in the metric bars
BAR_METRICS = [
    ("Accuracy", "accuracy", False),
    ("Macro-F1", "f1_macro", False),
    ("Weighted-F1", "f1_weighted", False),
    ("Macro-precision", "precision_macro", False),
    ("Macro-recall", "recall_macro", False),
    ("Attack-F1", "f1", True),
]
LOW_SUPPORT_ROWS = 100
LOW_SUPPORT_SHARE = 0.01
DPI = 110


def _short(label: str, width: int = 40) -> str:
    """A model label cut to fit an axis (a file-path model name can be very long)."""
    return label if len(label) <= width else "…" + label[-(width - 1):]


def plot_files(group: Group, plots_dir: str | Path) -> dict:
    """Where each of ``group``'s figures is written: ``{"metrics": path, ..., "confusion":
    {variant label: path}}``."""
    base = Path(plots_dir) / group.slug
    return {
        "metrics": base / "metrics.png",
        "f1_vs_time": base / "macro-f1-vs-fit-time.png",
        "recall_per_class": base / "recall-per-class.png",
        "confusion": {v.label: base / f"confusion-{v.slug()}.png" for v in group.variants},
    }


def low_support(support: int, total: int) -> bool:
    """Whether a class has too few test rows for its figures to be read with confidence."""
    return support < LOW_SUPPORT_ROWS or (total > 0 and support / total < LOW_SUPPORT_SHARE)


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, path: Path) -> None:
    # write then rename, so a reader never sees half a PNG
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)


def _subtitle(group: Group) -> str:
    p = group.protocol
    return f"{p['dataset']} · {p['task']} · {p['split']} split"


def plot_metric_bars(group: Group, path: str | Path) -> Path:
    """Horizontal bars of the main metrics per model (mean over seeds, whiskers: sd)."""
    metrics = [m for m in BAR_METRICS if group.task == "binary" or not m[2]]
    variants = group.variants
    n = len(variants)
    height = 1.4 + n * (0.16 * len(metrics) + 0.25)
    fig = _new_figure(8.0, height)
    ax = fig.add_subplot()
    colors = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f"]
    bar_h = 0.8 / len(metrics)

    # best model on top: matplotlib counts y upwards, so place variants in reverse
    for j, (name, key, _) in enumerate(metrics):
        ys, means, sds = [], [], []
        for i, v in enumerate(variants):
            vals = metric_values(v.records, key)
            ys.append((n - 1 - i) + 0.4 - (j + 0.5) * bar_h)
            means.append(np.mean(vals) if vals else 0.0)
            sds.append(np.std(vals, ddof=1) if len(vals) > 1 else 0.0)
        ax.barh(ys, means, height=bar_h * 0.92, xerr=sds, color=colors[j % len(colors)],
                label=name, error_kw={"elinewidth": 0.8, "capsize": 1.5})

    ax.set_yticks(range(n), [_short(v.label) for v in reversed(variants)])
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("score (mean over seeds; whiskers: standard deviation)")
    ax.grid(axis="x", alpha=0.3)
    shortcut = group.shortcut
    if shortcut is not None:
        ax.axvline(shortcut.mean("f1_macro"), color="grey", linestyle="--", linewidth=1,
                   label="macro-F1 of the one-feature rule (stump)")
    ax.set_title(f"Metrics by model — {_subtitle(group)}", fontsize=10)
    fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    _save(fig, Path(path))
    return Path(path)


def plot_f1_vs_fit_time(group: Group, path: str | Path) -> Path:
    """Macro-F1 against training time (log scale), one point per model."""
    fig = _new_figure(7.0, 4.6)
    ax = fig.add_subplot()
    points = []
    for v in group.variants:
        secs = [max(s, 1e-3) for s in metric_values(v.records, "fit_seconds", "timing")]
        f1s = metric_values(v.records, "f1_macro")
        if not secs or not f1s:
            continue
        x, y = float(np.mean(secs)), float(np.mean(f1s))
        xerr = [[x - min(secs)], [max(secs) - x]]
        yerr = float(np.std(f1s, ddof=1)) if len(f1s) > 1 else 0.0
        marker = "D" if v.is_shortcut else "o"
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, markersize=6, capsize=2,
                    color="grey" if v.is_shortcut else "#1b6ca8")
        points.append((_short(v.label), x, y))
    # labels of points that sit close together are stacked one line apart instead of overlapping
    span = (max(p[2] for p in points) - min(p[2] for p in points)) if points else 0.0
    placed: list[tuple[float, float]] = []
    for label, x, y in sorted(points, key=lambda p: -p[2]):
        near = sum(abs(np.log10(x) - np.log10(px)) < 0.4 and abs(y - py) <= 0.03 * (span or 1.0)
                   for px, py in placed)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4 - 11 * near),
                    fontsize=8)
        placed.append((x, y))
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.12)  # room for the labels beside the outermost points
    ax.set_xlabel("training time per run, seconds (log scale; whiskers: min–max over seeds)")
    ax.set_ylabel("macro-F1 (mean; whiskers: sd)")
    ax.grid(alpha=0.3, which="both")
    if group.shortcut is not None:
        ax.axhline(group.shortcut.mean("f1_macro"), color="grey", linestyle="--", linewidth=1,
                   label="one-feature rule (stump)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Macro-F1 against training time — {_subtitle(group)}", fontsize=10)
    _save(fig, Path(path))
    return Path(path)


def _class_support(group: Group) -> tuple[list[str], list[int]]:
    classes = group.classes
    per_class = (group.best.records[0]["metrics"].get("per_class") or {}) if group.best else {}
    return classes, [int((per_class.get(c) or {}).get("support", 0)) for c in classes]


def _mean_per_class(variant: Variant, classes: list[str], key: str) -> list[float]:
    out = []
    for c in classes:
        vals = [r["metrics"]["per_class"][c][key] for r in variant.records
                if c in (r["metrics"].get("per_class") or {})]
        out.append(float(np.mean(vals)) if vals else float("nan"))
    return out


def plot_recall_heatmap(group: Group, path: str | Path) -> Path:
    """Recall of every class (columns) for every model (rows); low-support classes in red."""
    classes, support = _class_support(group)
    total = sum(support)
    grid = np.array([_mean_per_class(v, classes, "recall") for v in group.variants])
    width = max(5.0, 1.6 + 0.75 * len(classes))
    fig = _new_figure(width, 1.6 + 0.45 * len(group.variants))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not math.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if grid[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(classes)), [f"{c}\nn={s:,}" for c, s in zip(classes, support)],
                  fontsize=7, rotation=45 if len(classes) > 6 else 0, ha="right"
                  if len(classes) > 6 else "center")
    for tick, s in zip(ax.get_xticklabels(), support):
        if low_support(s, total):
            tick.set_color("#c0392b")
    ax.set_yticks(range(len(group.variants)), [_short(v.label) for v in group.variants], fontsize=8)
    fig.colorbar(image, ax=ax, label="recall (mean over seeds)", shrink=0.9)
    ax.set_title(f"Recall per class — {_subtitle(group)}\n(red: fewer than {LOW_SUPPORT_ROWS} "
                 f"test rows or under {LOW_SUPPORT_SHARE:.0%} of them)", fontsize=9)
    _save(fig, Path(path))
    return Path(path)


def plot_confusion(group: Group, variant: Variant, path: str | Path) -> Path:
    """Confusion matrix summed over seeds, each row normalised to the true class's rows."""
    classes = group.classes
    mats = [np.asarray(r["metrics"]["confusion_matrix"], dtype=float) for r in variant.records
            if r["metrics"].get("confusion_matrix")]
    counts = np.sum(mats, axis=0)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(classes)
    size = max(4.2, 1.8 + 0.55 * k)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if counts[i, j] > 0:
                pct = f"{share[i, j]:.0%}" if share[i, j] >= 0.005 else "<1%"
                ax.text(j, i, pct if k > 4 else f"{share[i, j]:.1%}\n{int(counts[i, j]):,}",
                        ha="center", va="center", fontsize=7 if k > 4 else 9,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), classes, rotation=45 if k > 4 else 0,
                  ha="right" if k > 4 else "center", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="share of the true class's test rows", shrink=0.85)
    seeds = len(mats)
    ax.set_title(f"{_short(variant.label)} — {_subtitle(group)}\n"
                 f"{'1 seed' if seeds == 1 else f'{seeds} seeds summed'}; "
                 f"{int(counts.sum()):,} predictions", fontsize=9)
    _save(fig, Path(path))
    return Path(path)


def render_plots(groups: list[Group], plots_dir: str | Path) -> dict[str, dict]:
    """Draw every figure of every group under ``plots_dir``; returns ``{slug: files}``.

    A figure that fails is logged and left out (a finished benchmark is never lost to a
    drawing problem); the returned files hold only the figures that were written.
    """
    out: dict[str, dict] = {}
    for group in groups:
        if not group.variants:
            continue
        files = plot_files(group, plots_dir)
        written: dict = {"confusion": {}}
        jobs: list[tuple[str, str | None, Callable[[], Path]]] = [
            ("metrics", None, lambda g=group, f=files: plot_metric_bars(g, f["metrics"])),
            ("f1_vs_time", None, lambda g=group, f=files: plot_f1_vs_fit_time(g, f["f1_vs_time"])),
            ("recall_per_class", None,
             lambda g=group, f=files: plot_recall_heatmap(g, f["recall_per_class"])),
        ]
        for v in group.variants:
            jobs.append(("confusion", v.label, lambda g=group, v=v, f=files:
                         plot_confusion(g, v, f["confusion"][v.label])))
        for name, label, draw in jobs:
            try:
                path = draw()
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.warning("plot %s%s for %s failed: %s: %s", name, f" ({label})" if label else "",
                            group.slug, type(exc).__name__, exc)
                continue
            if label is None:
                written[name] = path
            else:
                written["confusion"][label] = path
        out[group.slug] = written
    return out


def existing_plots(groups: list[Group], plots_dir: str | Path) -> dict[str, dict]:
    """The figures already on disk under ``plots_dir`` for ``groups`` (same shape as
    :func:`render_plots`)."""
    out: dict[str, dict] = {}
    for group in groups:
        files = plot_files(group, plots_dir)
        found = {k: p for k, p in files.items() if k != "confusion" and p.is_file()}
        found["confusion"] = {k: p for k, p in files["confusion"].items() if p.is_file()}
        if len(found) > 1 or found["confusion"]:
            out[group.slug] = found
    return out
