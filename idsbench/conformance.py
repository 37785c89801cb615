"""Conformance checks: does a model keep the contract of :mod:`idsbench.models.base`?

``idsbench models check NAME`` and the test suite (``tests/test_model_contract.py``, over every
registered model) run the same checks.  Each fits the model on a small sample, synthetic by
default (:func:`synthetic_data`) or cut from a real dataset (:func:`real_sample`):

==============  ===========================================================================
construct       the factory builds an unfitted model from ``random_state`` and parameters
binary          ``fit`` with a validation split; ``predict_proba`` is (n, 2), finite,
                non-negative, rows sum to 1; ``predict`` is its arg-max; inputs read-only
multiclass      the same with 4 classes and no validation split (``X_val=None``)
repeatable      a second model with the same seed on the same data gives the same probabilities
row-order       shuffling or splitting the rows at prediction time changes no row's output
global-rng      the global generators of ``random``, NumPy and torch are left as they were
params          ``get_params()`` can be written into a JSON run record
evaluator       :func:`idsbench.runner.run_job` scores the model on a tiny binary and a
                multiclass :class:`~idsbench.data.prepare.PreparedData`
==============  ===========================================================================

A failed check does not stop the others, except that nothing can be checked on a model that
cannot be built.  Networks are trained briefly (``epochs=1`` by default): the checks are about
the contract, not about accuracy, which is only reported.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from idsbench.data.prepare import DataConfig, PreparedData
from idsbench.errors import ConfigError, IdsbenchError
from idsbench.evaluation.metrics import check_probabilities

log = logging.getLogger(__name__)

#: Class names of the synthetic data: the first is the "normal" class, as in the real datasets.
SYNTHETIC_CLASSES = ("normal", "attack_a", "attack_b", "attack_c", "attack_d", "attack_e")

_CATEGORY_LEVELS = 4


@dataclass
class CheckResult:
    """One line of a conformance report; ``status`` is pass, fail, skip or info."""

    name: str
    status: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.status.upper():<5} {self.name:<15} {self.detail}"


@dataclass
class ConformanceReport:
    """Every check's result for one model, and what it was run on."""

    model: str
    source: str = ""
    kind: str = ""
    setting: str = ""
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures

    def format(self) -> str:
        """The report as text: a header, one line per check and a summary."""
        counted = [r for r in self.results if r.status in ("pass", "fail")]
        head = f"model {self.model!r} ({self.source}, kind {self.kind}) on {self.setting}"
        tail = f"{len(counted) - len(self.failures)} of {len(counted)} checks passed"
        if self.failures:
            tail += f"; failed: {', '.join(r.name for r in self.failures)}"
        return "\n".join([head, *(r.line() for r in self.results), tail])


# --------------------------------------------------------------------------------------------
# data


def synthetic_data(rows: int = 400, n_classes: int = 2, n_features: int = 40,
                   seed: int = 0) -> PreparedData:
    """A small, learnable :class:`PreparedData` shaped like the real ones.

    Parameters
    ----------
    rows : int
        Training rows; the validation split gets ``rows // 4`` and the test split
        ``rows // 2`` (each at least two rows per class).
    n_classes : int
        2 (normal / attack) to 6.  Class frequencies fall off like the real datasets': half
        the rows are normal, the rarest class is the smallest.
    n_features : int
        Encoded width: standard-normal numeric columns, a few of them shifted by class, plus
        one one-hot categorical group of 4 levels (the last 4 columns).
    seed : int
        Everything is drawn from this seed.

    Returns
    -------
    PreparedData
        float32 features and int64 labels, as read-only arrays (the data cache hands models
        read-only memory maps too).
    """
    if not 2 <= n_classes <= len(SYNTHETIC_CLASSES):
        raise ConfigError(f"synthetic_data: n_classes must be 2..{len(SYNTHETIC_CLASSES)}, "
                          f"got {n_classes}")
    if n_features < _CATEGORY_LEVELS + 2:
        raise ConfigError(f"synthetic_data: n_features must be at least {_CATEGORY_LEVELS + 2}, "
                          f"got {n_features}")
    if rows < 4 * n_classes:
        raise ConfigError(f"synthetic_data: rows must be at least {4 * n_classes} for "
                          f"{n_classes} classes, got {rows}")
    rng = np.random.default_rng(seed)

    # half normal, attacks falling off as 1/i, so the multiclass case has a rare class
    attack = 1.0 / np.arange(1, n_classes)
    share = np.concatenate([[0.5], 0.5 * attack / attack.sum()])
    n_numeric = n_features - _CATEGORY_LEVELS
    n_signal = min(6, n_numeric)
    centres = rng.normal(scale=1.5, size=(n_classes, n_signal))

    def split(n: int):
        counts = np.maximum(2, np.round(share * n).astype(int))
        y = rng.permutation(np.repeat(np.arange(n_classes), counts))
        X = rng.normal(size=(len(y), n_numeric))
        X[:, :n_signal] += centres[y]
        # the categorical column follows the class most of the time, like a protocol does
        level = np.where(rng.random(len(y)) < 0.7, y % _CATEGORY_LEVELS,
                         rng.integers(0, _CATEGORY_LEVELS, len(y)))
        onehot = np.eye(_CATEGORY_LEVELS)[level]
        X = np.hstack([X, onehot]).astype(np.float32)
        return _read_only(X), _read_only(y.astype(np.int64))

    X_train, y_train = split(rows)
    X_val, y_val = split(max(rows // 4, 2 * n_classes))
    X_test, y_test = split(max(rows // 2, 2 * n_classes))
    names = [f"num_{i}" for i in range(n_numeric)] + [f"cat_{i}" for i in range(_CATEGORY_LEVELS)]
    return PreparedData(
        X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
        classes=list(SYNTHETIC_CLASSES[:n_classes]), feature_names=names,
        test_has_train_twin=_read_only(np.zeros(len(y_test), dtype=bool)),
        categorical_groups={"cat": list(range(n_numeric, n_features))},
        info={"protocol": f"synthetic: {rows} training rows, {n_classes} classes, seed {seed}"},
    )


def real_sample(dataset: str, task: str, rows: int, data_dir: str | None = None,
                split: str = "random", seed: int = 0) -> PreparedData:
    """A real dataset, prepared as ``idsbench run`` would, cut to a few rows per split.

    Training rows are a stratified subsample of about ``rows`` (``--max-train-rows``); the
    validation and test splits are cut to at most ``rows`` rows each, a seeded random choice.
    """
    from idsbench.data.prepare import prepare

    cfg = DataConfig(dataset=dataset, task=task, split=split, max_train_rows=rows,
                     data_dir=data_dir).resolved()
    data = prepare(cfg)
    rng = np.random.default_rng(seed)

    def cut(n: int) -> np.ndarray:
        return np.sort(rng.choice(n, size=min(n, rows), replace=False))

    val, test = cut(len(data.y_val)), cut(len(data.y_test))
    return replace(
        data, X_val=data.X_val[val], y_val=data.y_val[val], X_test=data.X_test[test],
        y_test=data.y_test[test], test_has_train_twin=data.test_has_train_twin[test],
        info={**data.info, "protocol": f"{data.info.get('protocol')}; cut for a conformance check"},
    )


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------------
# the checks


def check_model(name: str, *, rows: int = 400, params: dict | None = None, epochs: int = 1,
                batch_size: int = 64, device: str = "cpu", seed: int = 0,
                dataset: str | None = None, data_dir: str | None = None) -> ConformanceReport:
    """Run every conformance check on model ``name``; see the module docstring for the list.

    Parameters
    ----------
    name : str
        A registered model name or ``package.module:Factory``.
    rows : int
        Training rows of the sample.
    params : dict, optional
        Model parameters (as ``--model-param`` would give them), e.g. smaller layers.
    epochs, batch_size, device
        Training options for networks (``kind == "torch"``); other models ignore them, except
        ``device`` for models that take one.
    seed : int
        The models' ``random_state`` and the synthetic data's seed.
    dataset, data_dir
        Check on a subsample of a real dataset instead of synthetic data.

    Returns
    -------
    ConformanceReport
        ``report.passed`` is False when any check failed; ``report.format()`` explains.
    """
    from idsbench.models.registry import get_model_spec
    from idsbench.runner import JobSpec, model_kwargs

    from idsbench.models.registry import accepted_params

    spec = get_model_spec(name)  # an unknown name is the caller's error, not a failed check
    params = dict(params or {})
    # on a few hundred rows threads only cost: with busy cores, xgboost's two threads took 20x
    # longer than one
    if "n_jobs" not in params and "n_jobs" in (accepted_params(spec) or ()):
        params["n_jobs"] = 1
    training = {"epochs": epochs, "batch_size": batch_size, "device": device}
    if dataset:
        binary = real_sample(dataset, "binary", rows, data_dir, seed=seed)
        multi = real_sample(dataset, "multiclass", rows, data_dir, seed=seed)
        label = f"{dataset} (a real subsample)"
    else:
        binary = synthetic_data(rows, 2, seed=seed)
        multi = synthetic_data(rows, 4, seed=seed + 1)
        label = "synthetic"
    setting = (f"{label} data: {len(binary.y_train)} training rows, "
               f"{binary.X_train.shape[1]} features; seed {seed}")
    if spec.kind == "torch":
        setting += f"; epochs={epochs}, batch_size={batch_size}, device={device}"
    report = ConformanceReport(name, spec.source, spec.kind, setting)

    def job(task: str) -> JobSpec:
        cfg = DataConfig(dataset=dataset or "synthetic", task=task, split="random")
        return JobSpec(cfg, name, seed, params, training, profile="conformance")

    checker = _Checker(name, model_kwargs(job("binary")), seed, report,
                       tolerance=1e-5 if device == "cpu" else 1e-3)
    checker.run(binary, multi)
    if report.results[0].status == "pass":
        for data, task in ((binary, "binary"), (multi, "multiclass")):
            checker.evaluator(job(task), data)
    return report


class _Checker:
    """Runs the checks on fitted models and writes one result per check into ``report``."""

    def __init__(self, name: str, kwargs: dict, seed: int, report: ConformanceReport,
                 tolerance: float):
        self.name = name
        self.kwargs = kwargs
        self.seed = seed
        self.report = report
        self.tol = tolerance

    def add(self, name: str, status: str, detail: str) -> None:
        self.report.results.append(CheckResult(name, status, detail))

    def attempt(self, name: str, step: Callable[[], str]) -> bool:
        """Run one check; its return value is the pass detail, an exception is the failure."""
        try:
            detail = step()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the model is the finding
            self.add(name, "fail", _explain(exc))
            log.debug("check %s of %s failed", name, self.name, exc_info=True)
            return False
        self.add(name, "pass", detail)
        return True

    def build(self):
        from idsbench.models.registry import create_model

        return create_model(self.name, random_state=self.seed, **self.kwargs)

    def run(self, binary: PreparedData, multi: PreparedData) -> None:
        rng_before = _global_rng_state()
        built: dict[str, Any] = {}

        def construct() -> str:
            built["model"] = self.build()
            shown = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()) or "no parameters"
            return f"{type(built['model']).__name__}(random_state={self.seed}) with {shown}"

        if not self.attempt("construct", construct):
            for skipped in ("binary", "repeatable", "row-order", "multiclass", "global-rng",
                            "params", "evaluator"):
                self.add(skipped, "skip", "the model could not be built")
            return

        model, fitted = built["model"], {}

        def fit_binary() -> str:
            fitted["binary"] = self.fit_and_predict(model, binary, with_val=True)
            return self.describe_output(fitted["binary"], binary, "X_val, y_val")

        def repeat() -> str:
            again = self.fit_and_predict(self.build(), binary, with_val=True)
            diff = float(np.max(np.abs(again - fitted["binary"]))) if again.size else 0.0
            if diff > self.tol:
                raise _Failure(f"a second fit with random_state={self.seed} on the same data gave "
                               f"probabilities up to {diff:.3g} apart (tolerance {self.tol:g}); "
                               "seed every random source from random_state")
            agree = "are identical" if diff == 0 else f"agree within {diff:.1g}"
            return f"same seed, same data: probabilities {agree}"

        def row_order() -> str:
            X = binary.X_test
            perm = np.random.default_rng(self.seed).permutation(len(X))
            shuffled = np.asarray(model.predict_proba(_read_only(X[perm].copy())))
            half = len(X) // 2
            pieces = np.vstack([np.asarray(model.predict_proba(X[:half])),
                                np.asarray(model.predict_proba(X[half:]))])
            base = fitted["binary"]
            d1 = _max_diff(shuffled, base[perm])
            d2 = _max_diff(pieces, base)
            if max(d1, d2) > self.tol:
                raise _Failure(f"a row's probabilities depend on the other rows: shuffled rows "
                               f"differ by {d1:.3g}, rows predicted in two halves by {d2:.3g} "
                               f"(tolerance {self.tol:g}); is a layer still in training mode, or "
                               "are statistics taken over the batch?")
            return "shuffled rows and rows predicted in two halves give the same outputs"

        def fit_multi() -> str:
            fitted["multiclass"] = self.fit_and_predict(self.build(), multi, with_val=False)
            return self.describe_output(fitted["multiclass"], multi, "X_val=None")

        def params() -> str:
            from idsbench.records import dumps

            if not callable(getattr(model, "get_params", None)):
                return "no get_params(); the record stores no parameters"
            got = model.get_params()
            if not isinstance(got, dict):
                raise _Failure(f"get_params() returned a {type(got).__name__}, expected a dict")
            try:
                dumps(got)
            except (TypeError, ValueError) as exc:
                raise _Failure(f"get_params() cannot be stored in the JSON record ({exc}); "
                               "return plain numbers, strings, lists and dicts") from exc
            return f"get_params() gives {len(got)} JSON-ready values"

        if self.attempt("binary", fit_binary):
            self.attempt("repeatable", repeat)
            self.attempt("row-order", row_order)
        else:
            for skipped in ("repeatable", "row-order"):
                self.add(skipped, "skip", "binary fit/predict failed")
        self.attempt("multiclass", fit_multi)

        changed = _rng_changes(rng_before, _global_rng_state())
        if changed:
            self.add("global-rng", "fail",
                     f"the global random state of {', '.join(changed)} changed while building, "
                     "fitting and predicting; draw randomness from random_state (e.g. "
                     "np.random.default_rng(random_state), torch.Generator) instead")
        else:
            self.add("global-rng", "pass", "random, numpy and torch global generators untouched")
        self.attempt("params", params)

        scores = [f"{task} {_accuracy(p, d):.2f} (majority class {_majority(d):.2f})"
                  for task, d in (("binary", binary), ("multiclass", multi))
                  if (p := fitted.get(task)) is not None]
        if scores:
            self.add("accuracy", "info", "held-out rows: " + "; ".join(scores))

    def fit_and_predict(self, model, data: PreparedData, with_val: bool) -> np.ndarray:
        """Fit as the evaluator does, then check ``predict_proba`` and ``predict``."""
        X_val, y_val = (data.X_val, data.y_val) if with_val else (None, None)
        out = model.fit(data.X_train, data.y_train, X_val=X_val, y_val=y_val, sample_weight=None)
        if out is not model:
            raise _Failure(f"fit() returned {type(out).__name__}, expected the model itself "
                           "(end fit with `return self`)")
        proba = check_probabilities(model.predict_proba(data.X_test), len(data.y_test),
                                    data.n_classes, self.name)
        pred = np.asarray(model.predict(data.X_test))
        if pred.shape != (len(data.y_test),):
            raise _Failure(f"predict returned shape {pred.shape}, expected ({len(data.y_test)},)")
        top2 = np.sort(proba, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-9  # ties may break either way
        wrong = clear & (pred != proba.argmax(axis=1))
        if wrong.any():
            raise _Failure(f"predict disagrees with the arg-max of predict_proba in "
                           f"{int(wrong.sum())} of {len(pred)} rows")
        return proba

    @staticmethod
    def describe_output(proba: np.ndarray, data: PreparedData, val: str) -> str:
        return (f"fit(X, y, {val}) on {len(data.y_train)} rows; predict_proba {proba.shape} "
                "finite, rows sum to 1; predict = arg-max")

    def evaluator(self, job, data: PreparedData) -> None:
        from idsbench.records import dumps
        from idsbench.runner import run_job

        def step() -> str:
            record, _ = run_job(job, data)
            if record["status"] != "ok":
                raise _Failure(f"run_job recorded status {record['status']!r}: {record['error']}")
            dumps(record)  # the record must be writable as JSON, as the runner will write it
            m = record["metrics"]
            return (f"run_job scored {record['n_test']} test rows: accuracy {m['accuracy']:.2f}, "
                    f"macro-F1 {m['f1_macro']:.2f}; record is valid JSON")

        self.attempt(f"evaluator-{'bin' if job.data.task == 'binary' else 'multi'}", step)


class _Failure(Exception):
    """A broken contract found by a check (as opposed to an exception from the model)."""


def _explain(exc: BaseException) -> str:
    if isinstance(exc, (_Failure, IdsbenchError)):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    if "read-only" in str(exc):
        text += " (inputs are read-only arrays, as the data cache gives them: copy before writing)"
    return text


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise _Failure(f"predict_proba returned shape {a.shape} where {b.shape} was expected")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _accuracy(proba: np.ndarray, data: PreparedData) -> float:
    return float((proba.argmax(axis=1) == data.y_test).mean())


def _majority(data: PreparedData) -> float:
    return float(np.bincount(data.y_test).max() / len(data.y_test))


def _global_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"random": random.getstate(), "numpy": np.random.get_state()}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but models need not use it
        return state
    state["torch"] = torch.random.get_rng_state().clone()
    return state


def _rng_changes(before: dict, after: dict) -> list[str]:
    changed = []
    if before["random"] != after["random"]:
        changed.append("random")
    nb, na = before["numpy"], after["numpy"]
    if nb[0] != na[0] or not np.array_equal(nb[1], na[1]) or nb[2:] != na[2:]:
        changed.append("numpy")
    if "torch" in before and "torch" in after:
        import torch

        if not torch.equal(before["torch"], after["torch"]):
            changed.append("torch")
    return changed
