"""Jobs are data: a :class:`JobSpec` describes one (dataset, task, model, seed) run completely,
:func:`run_job` turns it into a record, and an executor decides where jobs run.

The local executor runs jobs one after another in this process; others (a Ray cluster) only need
``run_job`` and the data preparation, both importable and free of global state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from idsbench.data.prepare import DataConfig, PreparedData, prepare
from idsbench.errors import MAX_SEED, ConfigError, IdsbenchError
from idsbench.evaluation.metrics import check_probabilities, classification_metrics
from idsbench.models.registry import check_params, get_model_spec, list_models
from idsbench.profiles import get_profile
from idsbench.records import RECORD_VERSION, RunDir, environment, now_iso

log = logging.getLogger(__name__)

#: training options a profile or the CLI may set for networks
TRAIN_KEYS = ("epochs", "batch_size", "lr", "patience", "early_stopping", "device")
#: short forms of swept training options in job ids (``...-seed0-lr0.001-bs512``)
SWEEP_ID_KEYS = {"lr": "lr", "batch_size": "bs", "epochs": "ep"}


@dataclass(frozen=True)
class JobSpec:
    """One job, completely described (and JSON-serializable)."""

    data: DataConfig
    model: str
    seed: int = 0
    model_params: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # profile values after CLI overrides
    profile: str = "default"
    rebalance: dict = field(default_factory=lambda: {"method": "none"})
    class_weight: str | None = None
    sweep: dict = field(default_factory=dict)  # the training options a sweep varies (idsbench sweep)

    @property
    def job_id(self) -> str:
        d = self.data
        # a model given as a file path (dir/my_model.py:Factory) must not nest folders
        model = re.sub(r"[^A-Za-z0-9_.+-]+", ".", self.model).strip(".")
        base = f"{d.dataset}-{d.task}-{d.split}-{model}-seed{self.seed}"
        # each grid point of a sweep is its own job: its varied options are part of the id
        base += "".join(f"-{SWEEP_ID_KEYS.get(k, k)}{v:g}" if isinstance(v, float)
                        else f"-{SWEEP_ID_KEYS.get(k, k)}{v}" for k, v in self.sweep.items())
        variant = {"model_params": self.model_params, "rebalance": self.rebalance,
                   "class_weight": self.class_weight}
        if self.model_params or self.rebalance.get("method", "none") != "none" or self.class_weight:
            base += "-" + hashlib.sha1(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:8]
        return base

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "JobSpec":
        return cls(**{**d, "data": DataConfig(**d["data"])})


def model_kwargs(spec: JobSpec) -> dict:
    """Keyword arguments for the model factory: training options for networks, params for all."""
    mspec = get_model_spec(spec.model)
    kwargs = dict(spec.model_params)
    if mspec.kind == "torch":
        # the profile's training options, unless this model's own --model-param sets one
        kwargs = {**{k: v for k, v in spec.training.items() if k in TRAIN_KEYS and v is not None},
                  **kwargs}
        if spec.class_weight:
            kwargs["class_weight"] = spec.class_weight
    else:
        if spec.class_weight:
            kwargs["class_weight"] = spec.class_weight
        if "device" in spec.training and spec.training["device"] not in (None, "auto"):
            kwargs.setdefault("device", spec.training["device"])
        # non-network models ignore training options they do not take
        from idsbench.models.registry import accepted_params

        known = accepted_params(mspec)
        if known is not None:
            kwargs = {k: v for k, v in kwargs.items() if k in known or k in spec.model_params}
    return kwargs


def new_record(spec: JobSpec) -> dict[str, Any]:
    """The identity fields every record starts with (an executor that loses a job uses it too)."""
    record: dict[str, Any] = {
        "record_version": RECORD_VERSION, "job_id": spec.job_id, "dataset": spec.data.dataset,
        "split": spec.data.split, "task": spec.data.task, "model": spec.model, "seed": spec.seed,
        "profile": spec.profile, "model_params": dict(spec.model_params), "status": "running",
        "error": None, "started_at": now_iso(),
    }
    if spec.sweep:
        record["sweep"] = dict(spec.sweep)
    return record


def run_job(spec: JobSpec, data: PreparedData | None = None) -> tuple[dict, dict | None]:
    """Run one job; returns ``(record, predictions)``.  Never raises for a model's failure.

    A model that raises, or returns probabilities that break the contract, gives a record with
    ``status: "failed"`` and its error; the record then holds no metrics.
    """
    record = new_record(spec)
    predictions = None
    try:
        if data is None:
            data = prepare(spec.data)
        _describe_data(record, data)
        predictions = _fit_and_score(spec, data, record)
        record["status"] = "ok"
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed model is recorded, and the run goes on
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=12)
        record.pop("metrics", None)
        record.pop("metrics_unseen", None)
        predictions = None
        log.error("%s failed: %s", spec.job_id, record["error"])
    record["finished_at"] = now_iso()
    record["environment"] = environment()
    return record, predictions


def _describe_data(record: dict, data: PreparedData) -> None:
    info = data.info
    record.update(
        n_train=int(len(data.y_train)), n_val=int(len(data.y_val)), n_test=int(len(data.y_test)),
        n_features=int(data.X_train.shape[1]), classes=list(data.classes),
        protocol=info.get("protocol"),
        data={"files": [{k: f[k] for k in ("role", "path", "sha256", "rows", "status")}
                        for f in info.get("files", [])],
              "quality": [f["quality"] for f in info.get("files", [])],
              "train_class_counts": info.get("train_class_counts"),
              "test_class_counts": info.get("test_class_counts"),
              "nonfinite_after_transform": info.get("nonfinite_after_transform", 0),
              "dedup_train_dropped": info.get("dedup_train_dropped"),
              "test_rows_with_train_twin": info.get("test_rows_with_train_twin")},
    )


def _fit_and_score(spec: JobSpec, data: PreparedData, record: dict) -> dict:
    from idsbench.models.registry import create_model

    mspec = get_model_spec(spec.model)
    record["model_source"] = mspec.source
    own = {k: v for k, v in spec.model_params.items() if k in TRAIN_KEYS}  # per-model overrides
    record["training"] = {**spec.training, **own, "class_weight": spec.class_weight} \
        if mspec.kind == "torch" else {"class_weight": spec.class_weight}
    kwargs = model_kwargs(spec)
    model = create_model(spec.model, random_state=spec.seed, **kwargs)

    X_train, y_train = data.X_train, data.y_train
    rebalance = spec.rebalance or {"method": "none"}
    record["rebalance"] = {"method": rebalance.get("method", "none")}
    if rebalance.get("method", "none") != "none":
        from idsbench.rebalance import rebalance_training

        X_train, y_train, rb_info = rebalance_training(
            X_train, y_train, data.categorical_groups, data.classes, seed=spec.seed, **rebalance)
        record["rebalance"] = rb_info

    t0 = time.perf_counter()
    model.fit(X_train, y_train, data.X_val, data.y_val)
    fit_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    proba = model.predict_proba(data.X_test)
    predict_seconds = time.perf_counter() - t0
    proba = check_probabilities(proba, len(data.y_test), data.n_classes, spec.model)
    y_pred = proba.argmax(axis=1)

    record["params"] = model.get_params() if hasattr(model, "get_params") else {}
    record["n_params"] = getattr(model, "n_params_", None)
    epochs = getattr(model, "epochs_run_", None)
    record["timing"] = {
        "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
        "predict_rows_per_second": len(y_pred) / predict_seconds if predict_seconds > 0 else None,
        "epochs_run": epochs,
        "seconds_per_epoch": fit_seconds / epochs if epochs else None,
    }
    if hasattr(model, "history_"):
        record["history"] = model.history_
    if callable(getattr(model, "describe", None)):
        # optional hook: what the fitted model learned, in words (the stump's rule)
        record["fitted"] = model.describe(list(data.feature_names))

    task = spec.data.task
    record["metrics"] = classification_metrics(data.y_test, y_pred, proba, data.classes, task)
    unseen = ~np.asarray(data.test_has_train_twin, dtype=bool)
    record["metrics_unseen"] = (
        classification_metrics(data.y_test[unseen], y_pred[unseen], proba[unseen], data.classes, task)
        if unseen.any() else {"n": 0})
    score = proba[:, 1] if task == "binary" else proba.max(axis=1)
    return {"y_true": data.y_test.astype(np.int16), "y_pred": y_pred.astype(np.int16),
            "score": score.astype(np.float32), "twin": data.test_has_train_twin.astype(bool)}


# --------------------------------------------------------------------------------------------
# a whole benchmark


def resolve_models(models: str | Iterable[str]) -> list[str]:
    """``all``, a comma list or an iterable of names (or ``module:Factory``), checked."""
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    names = [n for n in names if n]
    if not names:
        raise ConfigError("--models is empty; give 'all' or a comma-separated list of model names")
    out: list[str] = []
    for n in names:
        expanded = default_models() if n == "all" else [n]
        for m in expanded:
            get_model_spec(m)  # raises with the known names and the closest match
            if m not in out:
                out.append(m)
    return out


def default_models() -> list[str]:
    """What ``--models all`` means: every registered model except ablation variants."""
    return [n for n in list_models() if not get_model_spec(n).variant_of]


def build_jobs(data: DataConfig, models: list[str], seeds: list[int], profile: str = "default",
               training: dict | None = None, model_params: dict | None = None,
               rebalance: dict | None = None, class_weight: str | None = None) -> list[JobSpec]:
    """The job grid for one data configuration; ``model_params`` maps model -> params."""
    train = get_profile(profile)
    train.pop("max_train_rows", None)
    train.update({k: v for k, v in (training or {}).items() if v is not None})
    if rebalance:  # an unknown method or parameter stops the run before any job starts
        from idsbench.rebalance import check_rebalance

        check_rebalance(rebalance)
    _check_training(train)
    bad_seeds = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer))
                 or not 0 <= s <= MAX_SEED]
    if bad_seeds:
        raise ConfigError(f"seed {bad_seeds[0]!r}: seeds are integers from 0 to {MAX_SEED}")
    jobs = []
    params = {m: dict((model_params or {}).get(m, {})) for m in models}
    for model in models:
        check_params(get_model_spec(model), params[model])
    # seed-major: an interrupted run still has every model for the first seeds
    for seed in seeds:
        for model in models:
            jobs.append(JobSpec(data, model, int(seed), params[model], train, profile,
                                rebalance or {"method": "none"}, class_weight))
    return jobs


def _check_training(train: dict) -> None:
    """Training options that would only fail inside a job are refused before any job starts."""
    lr = train.get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"--lr {lr!r}: expected a finite number above 0, e.g. 0.001")
    device = train.get("device")
    if device not in (None, "auto", "cpu") and not str(device).startswith("cuda"):
        raise ConfigError(f"--device {device!r}: expected 'auto', 'cpu' or 'cuda[:N]'")
    # whether a GPU exists is the executor's question: a cluster's workers may have one


def new_run_id(data: DataConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{data.dataset}-{data.task}-{data.split}"


class LocalExecutor:
    """Runs jobs one by one in this process, sharing one prepared dataset."""

    name = "local"

    def run(self, jobs: list[JobSpec], data: PreparedData,
            on_result: Callable[[dict, dict | None], None], progress: bool = False) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(jobs, desc="jobs", unit="job", disable=not progress, leave=False)
        for job in bar:
            bar.set_postfix_str(f"{job.model} seed {job.seed}")
            record, preds = run_job(job, data)
            on_result(record, preds)


def get_executor(name: str, **options):
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from idsbench.executors.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ConfigError(f"--executor {name!r}: expected 'local' or 'ray'")


def run_benchmark(dataset: str, models: str | Iterable[str] = "all", task: str = "binary",
                  split: str | None = None, seeds: Iterable[int] = (0,), profile: str = "default",
                  out: str | Path | None = "results", data_dir: str | None = None,
                  max_train_rows: int | None = None, epochs: int | None = None,
                  batch_size: int | None = None, lr: float | None = None, device: str | None = None,
                  model_params: dict | None = None, rebalance: dict | None = None,
                  class_weight: str | None = None, identity_columns: str = "drop",
                  dedup: str = "none", bad_values: str = "impute", split_seed: int = 0,
                  allow_checksum_mismatch: bool = False, executor: str = "local",
                  executor_options: dict | None = None, resume: str | Path | None = None,
                  progress: bool = False, run_id: str | None = None):
    """Run a benchmark and return its records as a pandas DataFrame (one row per job).

    This is what ``idsbench run`` calls.  Records are also written under ``out/<run-id>/``
    unless ``out`` is None.  The DataFrame has the attribute ``attrs["run_dir"]``.
    """
    import pandas as pd

    if resume:
        return _resume(Path(resume), executor, executor_options, progress)

    prof = get_profile(profile)
    cap = max_train_rows if max_train_rows is not None else prof.get("max_train_rows")
    data_cfg = DataConfig(dataset=dataset, task=task, split=split, split_seed=split_seed,
                          max_train_rows=cap, identity_columns=identity_columns,
                          bad_values=bad_values, dedup=dedup,
                          allow_checksum_mismatch=allow_checksum_mismatch,
                          data_dir=str(data_dir) if data_dir else None).resolved()
    names = resolve_models(models)
    seeds = [int(s) for s in seeds]
    training = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device}
    jobs = build_jobs(data_cfg, names, seeds, profile, training, model_params, rebalance,
                      class_weight)
    config = {"data": data_cfg.to_dict(), "models": names, "seeds": seeds, "profile": profile,
              "training": jobs[0].training if jobs else {}, "model_params": model_params or {},
              "rebalance": rebalance or {"method": "none"}, "class_weight": class_weight,
              "executor": executor, "jobs": [j.to_dict() for j in jobs], "created_at": now_iso()}
    # output, data and device problems stop the run before a run folder exists
    if out is not None:
        RunDir.check_out(Path(out))
    data = prepare(data_cfg) if jobs else None
    if executor == "local":
        _check_local_devices(jobs)
    run_dir = None
    if out is not None:
        run_dir = RunDir.create(Path(out), run_id or new_run_id(data_cfg))
        run_dir.write_config(config)
    return _execute(jobs, run_dir, executor, executor_options, progress, data)


def _check_local_devices(jobs: list[JobSpec]) -> None:
    from idsbench.models.torch_base import resolve_device

    for device in {j.training.get("device") for j in jobs} - {None, "auto"}:
        resolve_device(device)  # cuda without a GPU on this machine is a ConfigError


def _execute(jobs: list[JobSpec], run_dir: RunDir | None, executor: str,
             executor_options: dict | None, progress: bool, data: PreparedData | None = None):
    import pandas as pd

    if data is None and jobs:
        data = prepare(jobs[0].data)
    results: list[dict] = []

    def on_result(record: dict, preds: dict | None) -> None:
        record["run_id"] = run_dir.path.name if run_dir else None
        if run_dir is not None:
            run_dir.write_record(record, preds)
            from idsbench.report.leaderboard import write_leaderboard

            write_leaderboard(run_dir.path)
        results.append(record)
        # one line per finished job, as it finishes (the summary at the end repeats them)
        what = " ".join([f"{len(results)}/{len(jobs)}", record["model"], f"seed {record['seed']}",
                         *(f"{k} {v}" for k, v in (record.get("sweep") or {}).items())])
        if record["status"] == "ok":
            m, t = record["metrics"], record["timing"]
            log.info("job %s: accuracy %.4f, macro-F1 %.4f, fit %.1fs", what, m["accuracy"],
                     m["f1_macro"], t["fit_seconds"])
        else:
            log.info("job %s: failed", what)

    try:
        get_executor(executor, **(executor_options or {})).run(jobs, data, on_result, progress)
    except KeyboardInterrupt:
        if run_dir is not None:  # every finished record is on disk; say how to finish the run
            log.warning("interrupted after %d of %d job(s); the finished records are kept. "
                        "Run the rest with: idsbench run --resume %s", len(results), len(jobs),
                        run_dir.path)
        raise
    if run_dir is not None:  # figures once per run: they take seconds, a table takes none
        from idsbench.report.leaderboard import write_leaderboard

        write_leaderboard(run_dir.path, plots=True)
    frame = pd.DataFrame(results)
    frame.attrs["run_dir"] = str(run_dir.path) if run_dir else None
    return frame


def _resume(path: Path, executor: str, executor_options: dict | None, progress: bool):
    run_dir = RunDir.open(path)
    config = run_dir.read_config()
    jobs = [JobSpec.from_dict(j) for j in config["jobs"]]
    done = {r["job_id"] for r in run_dir.records() if r.get("status") == "ok"}
    todo = [j for j in jobs if j.job_id not in done]
    log.info("resuming %s: %d of %d jobs left", path, len(todo), len(jobs))
    if executor == "local":
        _check_local_devices(todo)
    frame = _execute(todo, run_dir, executor, executor_options, progress)
    frame.attrs["skipped"] = len(jobs) - len(todo)
    return frame
