"""Hyperparameter sweeps: a grid of training settings, run as ordinary benchmark jobs.

Each grid point (learning rate x batch size) of each model and seed is one
:class:`~idsbench.runner.JobSpec` whose ``sweep`` field names the setting, so it has its own job
id (``...-seed0-lr0.001-bs512``) and its own record.  The jobs go through the same executors as
``idsbench run``: one after another here, or as Ray tasks on a cluster (``--executor ray``), with
the same atomic records, failed-job records and ``--resume``.

Why not Ray Tune: a full grid needs neither a search algorithm nor a trial scheduler, which is
what Tune adds.  Running the grid through Tune would give a second way of running jobs beside
the executors (results reported through Tune's own result files, its own restore instead of
``--resume``, predictions passed around outside the records) and would need Ray even for a
local sweep.  As plain jobs, a sweep's records are the records ``idsbench run`` writes.

The results table follows the layout of the seed paper's Table I: rows are learning rate x
metric (Accuracy, Precision, Recall, F1-score), columns are batch sizes, and the best setting is
in bold.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from idsbench.data.prepare import DataConfig
from idsbench.errors import ConfigError
from idsbench.models.registry import get_model_spec
from idsbench.profiles import get_profile
from idsbench.records import RunDir, atomic_write_text, now_iso
from idsbench.runner import (JobSpec, _execute, build_jobs, new_run_id, resolve_models,
                             run_benchmark)

log = logging.getLogger(__name__)

#: the grid of the seed paper's Table I
PAPER_LRS = (0.01, 0.001, 0.0001)
PAPER_BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024)
#: how the best setting is chosen: the paper's way (test F1-score) or on validation rows
SELECTIONS = ("test-f1", "val-loss")


def table_metrics(task: str) -> list[tuple[str, str]]:
    """(row title, metric key) of each table row: attack-class scores (binary) or macro ones."""
    if task == "binary":
        return [("Accuracy", "accuracy"), ("Precision", "precision"), ("Recall", "recall"),
                ("F1-score", "f1")]
    return [("Accuracy", "accuracy"), ("Precision", "precision_macro"),
            ("Recall", "recall_macro"), ("F1-score", "f1_macro")]


# -------------------------------------------------------------------------------- the grid


def parse_grid(option: str, text: str, kind: type) -> list:
    """A comma list of positive numbers (``--lr 0.01,0.001``); repeats are dropped."""
    values: list = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            value = kind(part)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise ConfigError(f"{option} {text!r}: {part!r} is not {expected}; expected a comma "
                              f"list such as {'256,512,1024' if kind is int else '0.01,0.001'}"
                              ) from None
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{option} {text!r}: {part!r} must be greater than 0")
        if value not in values:
            values.append(value)
    if not values:
        raise ConfigError(f"{option} is empty; expected a comma list of values")
    return values


def build_sweep_jobs(data: DataConfig, models: list[str], seeds: list[int],
                     lrs: Iterable[float], batch_sizes: Iterable[int], profile: str = "paper",
                     epochs: int | None = None, device: str | None = None) -> list[JobSpec]:
    """One job per learning rate x batch size x model x seed.

    Raises
    ------
    ConfigError
        When a model is not a network: learning rate and batch size only reach networks.
    """
    for name in models:
        spec = get_model_spec(name)
        if spec.kind != "torch":
            from idsbench.runner import default_models

            nets = [m for m in default_models() if get_model_spec(m).kind == "torch"]
            raise ConfigError(f"idsbench sweep --models: {name!r} is not a network (kind "
                              f"{spec.kind!r}); --lr and --batch-size only reach networks: "
                              f"{', '.join(nets)}")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")

    jobs = []
    for lr in lrs:
        for batch_size in batch_sizes:
            training = {"epochs": epochs, "lr": float(lr), "batch_size": int(batch_size),
                        "device": device}
            for job in build_jobs(data, models, seeds, profile, training):
                jobs.append(replace(job, sweep={"lr": float(lr), "batch_size": int(batch_size)}))
    return jobs


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns."""

    records: list[dict]          # every record of the sweep (earlier ones too after --resume)
    markdown: str                # the tables, as written to ``sweep.md``
    best: list["BestSetting"]    # one per model
    run_dir: Path | None
    n_run: int                   # jobs run by this call
    n_failed: int                # failed records among ``records``


def run_sweep(dataset: str = "", models: str | Iterable[str] = "cnn", task: str = "binary",
              split: str | None = None, lrs: Iterable[float] = PAPER_LRS,
              batch_sizes: Iterable[int] = PAPER_BATCH_SIZES, epochs: int | None = None,
              seeds: Iterable[int] = (0,), profile: str = "paper",
              max_train_rows: int | None = None, device: str | None = None,
              data_dir: str | None = None, out: str | Path | None = "results",
              executor: str = "local", executor_options: dict | None = None,
              select: str = "test-f1", progress: bool = False, run_id: str | None = None,
              resume: str | Path | None = None) -> SweepResult:
    """Run a learning-rate x batch-size grid and write ``sweep.md`` in the paper's layout.

    ``resume`` finishes an interrupted sweep (only jobs without a finished record run) and
    rewrites its table from all its records.  The profile defaults to ``paper`` (no early
    stopping), so every grid point trains for the same number of epochs, as in Table I.
    """
    if select not in SELECTIONS:
        raise ConfigError(f"--select {select!r}: expected one of {', '.join(SELECTIONS)}")

    if resume:
        frame = run_benchmark("", resume=resume, executor=executor,
                              executor_options=executor_options, progress=progress)
        run_dir = RunDir.open(Path(resume))
        if "sweep" not in run_dir.read_config():
            raise ConfigError(f"--resume {resume}: not a sweep run (its config.json has no "
                              "'sweep' grid); finish it with 'idsbench run --resume'")
    else:
        if not dataset:
            raise ConfigError("--dataset is required (see 'idsbench datasets list')")
        cap = max_train_rows if max_train_rows is not None else get_profile(profile).get(
            "max_train_rows")
        data_cfg = DataConfig(dataset=dataset, task=task, split=split, max_train_rows=cap,
                              data_dir=str(data_dir) if data_dir else None).resolved()
        names = resolve_models(models)
        seeds = [int(s) for s in seeds]
        lrs, batch_sizes = [float(v) for v in lrs], [int(v) for v in batch_sizes]
        jobs = build_sweep_jobs(data_cfg, names, seeds, lrs, batch_sizes, profile, epochs, device)
        log.info("sweep: %d job(s) = %d learning rate(s) x %d batch size(s) x %d model(s) x "
                 "%d seed(s), %s epochs each", len(jobs), len(lrs), len(batch_sizes), len(names),
                 len(seeds), jobs[0].training.get("epochs"))
        run_dir = None
        if out is not None:
            run_dir = RunDir.create(Path(out), run_id or new_run_id(data_cfg) + "-sweep")
            run_dir.write_config({
                "kind": "sweep", "data": data_cfg.to_dict(), "models": names, "seeds": seeds,
                "profile": profile, "sweep": {"lr": lrs, "batch_size": batch_sizes},
                "training": {k: v for k, v in jobs[0].training.items()
                             if k not in ("lr", "batch_size")},
                "select": select, "executor": executor, "jobs": [j.to_dict() for j in jobs],
                "created_at": now_iso()})
        frame = _execute(jobs, run_dir, executor, executor_options, progress)

    records = run_dir.records() if run_dir is not None else frame.to_dict("records")
    markdown, best = render_sweep(records, select)
    if run_dir is not None:
        atomic_write_text(run_dir.path / "sweep.md", markdown)
    n_failed = sum(r.get("status") != "ok" for r in records)
    return SweepResult(records, markdown, best, run_dir.path if run_dir else None, len(frame),
                       n_failed)


# -------------------------------------------------------------------------------- the table


@dataclass
class BestSetting:
    """The chosen grid point of one model, with its mean test scores."""

    model: str
    lr: float
    batch_size: int
    scores: dict[str, float]     # row title -> mean over seeds
    n_seeds: int
    select: str
    val_loss: float | None = None

    def describe(self) -> str:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in self.scores.items())
        by = ("validation loss " + f"{self.val_loss:.4f}, " if self.select == "val-loss"
              and self.val_loss is not None else "")
        return (f"best {self.model}: lr {self.lr:g}, batch size {self.batch_size} "
                f"({by}{scores}; {self.select}, mean of {self.n_seeds} seed(s))")


def _val_loss(record: dict) -> float | None:
    """Validation loss of the network that made the predictions (best epoch if early-stopped)."""
    history = record.get("history")
    losses = [h["val_loss"] for h in (history if isinstance(history, list) else [])
              if isinstance(h.get("val_loss"), (int, float)) and math.isfinite(h["val_loss"])]
    if not losses:
        return None
    training = record.get("training")
    early = isinstance(training, dict) and training.get("early_stopping")
    return min(losses) if early else losses[-1]


def _mean(values: list) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def render_sweep(records: list[dict], select: str = "test-f1") -> tuple[str, list[BestSetting]]:
    """Markdown tables in the paper's layout (one per model) and the best setting of each."""
    records = [r for r in records if isinstance(r.get("sweep"), dict)]
    if not records:
        raise ConfigError("no sweep records to tabulate (records without a 'sweep' setting)")
    task = records[0]["task"]
    metrics = table_metrics(task)
    parts = [f"# Sweep: {records[0]['dataset']} · {task} · {records[0]['split']}", ""]
    best_all = []
    for model in dict.fromkeys(r["model"] for r in records):
        text, best = _render_model(model, [r for r in records if r["model"] == model], metrics,
                                   select, task)
        parts += [text, ""]
        if best is not None:
            best_all.append(best)

    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        parts += ["### Failed", ""]
        parts += [f"- `{r['job_id']}`: {r.get('error')}" for r in failed]
        parts.append("")
    return "\n".join(parts), best_all


def _render_model(model: str, records: list[dict], metrics: list[tuple[str, str]], select: str,
                  task: str) -> tuple[str, BestSetting | None]:
    from tabulate import tabulate

    lrs = sorted({float(r["sweep"]["lr"]) for r in records}, reverse=True)
    sizes = sorted({int(r["sweep"]["batch_size"]) for r in records})
    cells: dict[tuple[float, int], dict] = {}
    for lr in lrs:
        for bs in sizes:
            rs = [r for r in records
                  if float(r["sweep"]["lr"]) == lr and int(r["sweep"]["batch_size"]) == bs]
            ok = [r for r in rs if r.get("status") == "ok" and isinstance(r.get("metrics"), dict)]
            cells[(lr, bs)] = {
                "n": len(rs), "n_ok": len(ok),
                "scores": {title: _mean([r["metrics"].get(key) for r in ok])
                           for title, key in metrics},
                "val_loss": _mean([_val_loss(r) for r in ok]),
            }

    best_key = _choose(cells, select)
    rows = []
    for lr in lrs:
        for i, (title, _) in enumerate(metrics):
            row = [f"{lr:g}" if i == 0 else "", title]
            for bs in sizes:
                cell = cells[(lr, bs)]
                value = cell["scores"][title]
                if cell["n"] == 0:
                    text = "–"
                elif value is None:
                    text = "failed"
                else:
                    text = f"{value:.4f}"
                    text = f"**{text}**" if (lr, bs) == best_key else text
                row.append(text)
            rows.append(row)
    table = tabulate(rows, headers=["LR", "Metric"] + [str(bs) for bs in sizes],
                     tablefmt="github", disable_numparse=True)

    seeds = sorted({r["seed"] for r in records})
    # (records from a DataFrame hold NaN where a failed job has no value)
    training = next((r["training"] for r in records if isinstance(r.get("training"), dict)), {})
    cap = next((r["protocol"].get("max_train_rows") for r in records
                if isinstance(r.get("protocol"), dict)), None)
    positive = ("attack class as positive" if task == "binary" else "macro averages over classes")
    lines = [f"## {model}", "",
             f"Rows: learning rate × metric; columns: batch size. Test-set scores ({positive}), "
             f"mean of {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
             f"{training.get('epochs', '?')} epoch(s), profile {records[0].get('profile')}, "
             f"early stopping {'on' if training.get('early_stopping') else 'off'}"
             + (f", training rows capped at {cap:,}" if cap else "") + "."]
    best = None
    if best_key is None:
        lines.append("No grid point finished; nothing is marked.")
    else:
        cell = cells[best_key]
        best = BestSetting(model, best_key[0], best_key[1], dict(cell["scores"]), cell["n_ok"],
                           select, cell["val_loss"])
        if select == "test-f1":
            rule = ("**Bold**: the best setting by test F1-score, as in the paper. It is chosen "
                    "on the test rows, so its scores are optimistic; `--select val-loss` chooses "
                    "on the validation rows instead.")
        else:
            rule = ("**Bold**: the setting with the lowest validation loss (chosen without the "
                    "test rows).")
        lines.append(rule)
    return "\n".join(lines + ["", table]), best


def _choose(cells: dict[tuple[float, int], dict], select: str) -> tuple[float, int] | None:
    if select == "val-loss":
        scored = [(c["val_loss"], key) for key, c in cells.items() if c["val_loss"] is not None]
        return min(scored)[1] if scored else None
    scored = [((c["scores"]["F1-score"], c["scores"]["Accuracy"] or 0.0), key)
              for key, c in cells.items() if c["scores"]["F1-score"] is not None]
    return max(scored, key=lambda s: s[0])[1] if scored else None
