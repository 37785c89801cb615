"""Class rebalancing of the training rows, with imbalanced-learn.

:func:`rebalance_training` resamples the training rows of a :class:`~idsbench.data.prepare.
PreparedData` (never the validation or test rows: the runner calls it after both were carved
out).  Each method is one entry of a small registry (:data:`METHODS`) mapping a name to the
imbalanced-learn sampler that implements it and the parameters it accepts.

The rows arrive encoded: scaled numeric columns, 0/1 flag columns (booleans, missing-value
indicators) and one block of one-hot columns per categorical column.  A synthetic row must be
an input the encoder could have produced, so:

* ``smotenc`` collapses each one-hot block into one integer column (the all-zeros encoding of
  a level unseen in training is a level of its own), hands those and the flag columns to
  SMOTE-NC as categorical features, and expands the result back to one-hot.
* ``smote``, ``adasyn``, ``smotetomek`` (and ``ros`` with ``shrinkage``) interpolate or jitter
  every column, which smears one-hot blocks over several levels; each synthetic row is
  *snapped* afterwards (see :func:`snap_synthetic`).  We snap rather than silently switching to
  SMOTE-NC so that ``smote`` stays the textbook algorithm, and ``smotenc`` is there for whoever
  wants the categorical-aware one.
* ``ros`` without shrinkage and ``rus`` only copy or drop rows, which are valid already.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from idsbench.errors import ConfigError, closest, unknown_name

log = logging.getLogger(__name__)

__all__ = ["ALIASES", "METHODS", "RebalanceMethod", "check_rebalance", "list_methods",
           "rebalance_training", "resolve_method", "snap_synthetic"]

#: the strings imbalanced-learn accepts as ``sampling_strategy``
STRATEGY_WORDS = ("auto", "minority", "majority", "not minority", "not majority", "all")


@dataclass(frozen=True)
class RebalanceMethod:
    """One rebalancing method.

    Attributes
    ----------
    name : str
        Canonical name (what records and leaderboards show).
    description : str
        One line for ``--help`` and the docs.
    defaults : dict
        Every parameter the method accepts, with its default.
    kind : str
        ``"over"`` or ``"under"``: how imbalanced-learn reads ``sampling_strategy``
        (``"none"`` for no resampling).
    neighbours : str or None
        The parameter counting same-class neighbours; a class needs more rows than that.
    categorical : str
        How one-hot blocks of synthetic rows are kept valid: ``"snap"``, ``"collapse"``
        (SMOTE-NC) or ``"untouched"`` (no synthetic rows are made).
    build : callable
        ``build(params, seed, categorical_positions)`` returns the imbalanced-learn sampler.
    """

    name: str
    description: str
    defaults: dict[str, Any]
    kind: str
    neighbours: str | None
    categorical: str
    build: Callable[[dict, int, list[int]], Any] | None


#: name -> method; filled by :func:`_method`
METHODS: dict[str, RebalanceMethod] = {}

#: other spellings accepted on the command line
ALIASES = {"random-over": "ros", "random-under": "rus", "smote-nc": "smotenc",
           "smote-tomek": "smotetomek"}


def _method(name: str, description: str, kind: str, defaults: dict | None = None,
            neighbours: str | None = None, categorical: str = "snap"):
    """Register the decorated sampler builder under ``name``."""

    def decorator(build: Callable) -> Callable:
        if name in METHODS:
            raise ValueError(f"rebalancing method {name!r} is registered twice")
        METHODS[name] = RebalanceMethod(name, description, dict(defaults or {}), kind,
                                        neighbours, categorical, build)
        return build

    return decorator


@_method("none", "no resampling", "none", categorical="untouched")
def _build_none(params: dict, seed: int, categorical: list[int]):
    return None


@_method("ros", "RandomOverSampler: repeat random rows of the smaller classes", "over",
         {"sampling_strategy": "auto", "shrinkage": None})
def _build_ros(params: dict, seed: int, categorical: list[int]):
    from imblearn.over_sampling import RandomOverSampler

    return RandomOverSampler(random_state=seed, **params)


@_method("rus", "RandomUnderSampler: drop random rows of the larger classes", "under",
         {"sampling_strategy": "auto", "replacement": False}, categorical="untouched")
def _build_rus(params: dict, seed: int, categorical: list[int]):
    from imblearn.under_sampling import RandomUnderSampler

    return RandomUnderSampler(random_state=seed, **params)


@_method("smote", "SMOTE: interpolate between a row and a same-class neighbour", "over",
         {"sampling_strategy": "auto", "k_neighbors": 5}, neighbours="k_neighbors")
def _build_smote(params: dict, seed: int, categorical: list[int]):
    from imblearn.over_sampling import SMOTE

    return SMOTE(random_state=seed, **params)


@_method("smotenc", "SMOTE-NC: SMOTE with categorical columns taken from the neighbours",
         "over", {"sampling_strategy": "auto", "k_neighbors": 5}, neighbours="k_neighbors",
         categorical="collapse")
def _build_smotenc(params: dict, seed: int, categorical: list[int]):
    from imblearn.over_sampling import SMOTENC

    return SMOTENC(categorical_features=categorical, random_state=seed, **params)


@_method("adasyn", "ADASYN: SMOTE weighted towards rows surrounded by other classes", "over",
         {"sampling_strategy": "auto", "n_neighbors": 5}, neighbours="n_neighbors")
def _build_adasyn(params: dict, seed: int, categorical: list[int]):
    from imblearn.over_sampling import ADASYN

    return ADASYN(random_state=seed, **params)


@_method("smotetomek", "SMOTE, then remove both rows of every Tomek link", "over",
         {"sampling_strategy": "auto", "k_neighbors": 5}, neighbours="k_neighbors")
def _build_smotetomek(params: dict, seed: int, categorical: list[int]):
    from imblearn.combine import SMOTETomek
    from imblearn.over_sampling import SMOTE

    smote = SMOTE(random_state=seed, **params)
    return SMOTETomek(smote=smote, random_state=seed)


# --------------------------------------------------------------------------------------------
# names and parameters (checked before any data is read)


def list_methods() -> list[str]:
    """Canonical method names, sorted."""
    return sorted(METHODS)


def resolve_method(name: str) -> RebalanceMethod:
    """The method called ``name`` (an alias or any case, ``_`` read as ``-``)."""
    key = str(name).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise unknown_name("rebalancing method", str(name), [*METHODS, *ALIASES])
    return METHODS[key]


def check_rebalance(spec: Mapping[str, Any]) -> dict:
    """Check a ``{"method": ..., **params}`` mapping without data; return the resolved params.

    Raises
    ------
    ConfigError
        For an unknown method, an unknown parameter or a value of the wrong type.
    """
    spec = dict(spec)
    method = resolve_method(spec.pop("method", "none"))
    return _resolve_params(method, spec)


def _resolve_params(method: RebalanceMethod, params: Mapping[str, Any]) -> dict:
    """Defaults overlaid with ``params``, each name and value checked."""
    accepted = sorted(method.defaults)
    for key in params:
        if key in method.defaults:
            continue
        hint = ""
        if key in ("random_state", "seed"):
            hint = " The resampler is seeded with the job's seed (--seeds)."
        elif closest(key, accepted):
            hint = f" Did you mean {closest(key, accepted)[0]!r}?"
        raise ConfigError(
            f"--rebalance-param {key!r}: rebalancing method {method.name!r} has no such "
            f"parameter; it accepts: {', '.join(accepted) or 'no parameters'}.{hint}")

    resolved = {**method.defaults, **params}
    for key, value in resolved.items():
        resolved[key] = _check_value(method.name, key, value)
    return resolved


def _check_value(method: str, key: str, value: Any) -> Any:
    where = f"--rebalance-param {key}={value!r} ({method})"
    if key in ("k_neighbors", "n_neighbors"):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{where}: expected a positive integer")
        return int(value)
    if key == "replacement":
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{where}: expected true or false")
        return bool(value)
    if key == "shrinkage":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0):
            raise ConfigError(f"{where}: expected a number >= 0 (or null for none)")
        return value
    if key == "sampling_strategy":
        return _parse_strategy(where, value)
    return value


def _parse_strategy(where: str, value: Any) -> Any:
    """A strategy word, a float (binary tasks), or class name -> row count.

    On the command line the mapping is written ``Worms:2000,Shellcode:2000``.
    """
    if isinstance(value, str) and ":" in value:
        mapping = {}
        for part in value.split(","):
            name, _, count = part.partition(":")
            try:
                mapping[name.strip()] = int(count)
            except ValueError:
                raise ConfigError(f"{where}: expected CLASS:COUNT pairs separated by commas, "
                                  f"found {part!r}") from None
        value = mapping
    if isinstance(value, str):
        if value.strip().lower() not in STRATEGY_WORDS:
            raise ConfigError(f"{where}: expected one of {', '.join(STRATEGY_WORDS)}, a ratio "
                              "(binary task) or CLASS:COUNT pairs such as Worms:2000,Shellcode:2000")
        return value.strip().lower()
    if isinstance(value, Mapping):
        for name, count in value.items():
            if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
                raise ConfigError(f"{where}: the row count for class {name!r} must be a "
                                  f"non-negative integer, found {count!r}")
        return {str(k): int(v) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    raise ConfigError(f"{where}: expected a strategy word ({', '.join(STRATEGY_WORDS)}), a ratio "
                      "in (0, 1] (binary task) or CLASS:COUNT pairs")


# --------------------------------------------------------------------------------------------
# resampling


def rebalance_training(X: np.ndarray, y: np.ndarray, categorical_groups: Mapping[str, Sequence[int]],
                       classes: Sequence[str], seed: int = 0, method: str = "none",
                       **params: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """Resample training rows so that the classes are (more) balanced.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Encoded training features (float32).  Pass training rows only.
    y : ndarray of shape (n_rows,)
        Class codes, positions in ``classes``.
    categorical_groups : mapping of str to list of int
        For each categorical column, the positions of its one-hot columns in ``X``.
    classes : sequence of str
        Class names, for messages and the returned counts.
    seed : int
        Seeds the sampler (the same seed gives the same rows).
    method : str
        One of :func:`list_methods` or an alias in :data:`ALIASES`.
    **params
        The method's parameters (``sampling_strategy``, ``k_neighbors``, ``n_neighbors``,
        ``shrinkage``, ``replacement``; see ``METHODS[name].defaults``).  ``sampling_strategy``
        may map class *names* to row counts.

    Returns
    -------
    X_res : ndarray, float32
        The original rows that were kept, in their order, then the synthetic rows.
    y_res : ndarray, int64
    info : dict
        ``method``, ``requested`` (parameters as given), ``params`` (as used, after
        adjustments, with ``random_state``), ``adjustments``, ``categorical`` (how one-hot
        blocks were kept valid), ``train_class_counts_before`` / ``_after`` (class name ->
        rows), ``synthetic_rows``, ``removed_rows`` and ``seconds``.

    Raises
    ------
    ConfigError
        Unknown method or parameter, a strategy the data cannot meet, or a class with too few
        rows to interpolate (one row).  A class with fewer rows than ``k_neighbors + 1`` is not
        an error: the neighbour count is lowered to its row count minus one, for every class,
        and the change is recorded in ``info["adjustments"]``.
    """
    t0 = time.perf_counter()
    spec = resolve_method(method)
    resolved = _resolve_params(spec, params)
    X, y = _check_arrays(X, y, classes)
    groups = _check_groups(categorical_groups, X.shape[1])
    n_classes = len(classes)
    before = np.bincount(y, minlength=n_classes)
    info: dict[str, Any] = {
        "method": spec.name, "requested": dict(params), "params": dict(resolved),
        "adjustments": {}, "categorical": spec.categorical,
        "train_class_counts_before": _named(before, classes)}
    if spec.name == "none":
        return X, y, _finish(info, y, classes, 0, 0, t0)

    # the strategy, with class names turned into codes, decides which classes grow or shrink;
    # only those need enough rows for the neighbour search
    strategy = _strategy_codes(resolved["sampling_strategy"], classes, before)
    targets = _targets(spec, strategy, y, classes)
    _fit_neighbours(spec, resolved, targets, before, classes, info)
    info["params"] = {**resolved, "random_state": int(seed)}

    # SMOTE-NC sees one integer column per one-hot block; everything else sees X as it is
    flags = _flag_columns(X, groups)
    info["one_hot_groups"], info["flag_columns"] = len(groups), len(flags)
    if spec.categorical == "collapse":
        X_in, cat_positions, layout = _collapse(X, groups, flags)
        if not cat_positions:
            raise ConfigError("--rebalance smotenc needs categorical columns, but these features "
                              "have no one-hot or 0/1 columns; use --rebalance smote")
    else:
        X_in, cat_positions, layout = X, [], None

    sampler = spec.build({**resolved, "sampling_strategy": strategy}, int(seed), cat_positions)
    X_res, y_res = _fit_resample(sampler, spec, X_in, y, before, classes, info)
    origin = _origin(sampler, spec, len(y), len(y_res))
    synthetic = origin < 0

    # repair what interpolation did to one-hot blocks and flags (see snap_synthetic)
    if layout is not None:
        X_res = _expand(X_res, layout)
    X_res = np.asarray(X_res, dtype=np.float32)
    if spec.categorical == "snap" and synthetic.any():
        X_res[synthetic] = snap_synthetic(X_res[synthetic], groups, flags)

    removed = len(y) - int((~synthetic).sum())
    log.info("rebalanced the training rows with %s: %d -> %d rows (%d synthetic, %d removed)",
             spec.name, len(y), len(y_res), int(synthetic.sum()), removed)
    return X_res, np.asarray(y_res, dtype=np.int64), _finish(
        info, y_res, classes, int(synthetic.sum()), removed, t0)


def _finish(info: dict, y_res: np.ndarray, classes: Sequence[str], synthetic: int,
            removed: int, t0: float) -> dict:
    info["train_class_counts_after"] = _named(np.bincount(y_res, minlength=len(classes)), classes)
    info["synthetic_rows"], info["removed_rows"] = synthetic, removed
    info["seconds"] = time.perf_counter() - t0
    return info


def _named(counts: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    return {str(c): int(n) for c, n in zip(classes, counts)}


def _check_arrays(X, y, classes) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ConfigError(f"rebalancing expects X of shape (rows, features) and y of shape "
                          f"(rows,); found X {X.shape} and y {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise ConfigError(f"rebalancing: class codes must lie in 0..{len(classes) - 1} "
                          f"({len(classes)} classes), found {y.min()}..{y.max()}")
    return X, y.astype(np.int64)


def _check_groups(groups: Mapping[str, Sequence[int]], n_features: int) -> dict[str, np.ndarray]:
    out = {}
    for name, positions in (groups or {}).items():
        idx = np.asarray(list(positions), dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= n_features):
            raise ConfigError(f"rebalancing: the one-hot columns of {name!r} ({idx.min()}.."
                              f"{idx.max()}) lie outside the {n_features} feature columns")
        if len(idx):
            out[str(name)] = idx
    return out


def _strategy_codes(strategy: Any, classes: Sequence[str], counts: np.ndarray) -> Any:
    """Class names in a mapping strategy become codes; words and ratios pass through."""
    if not isinstance(strategy, Mapping):
        return strategy
    lookup = {c: i for i, c in enumerate(classes)}
    folded = {c.lower(): i for i, c in enumerate(classes)}
    out = {}
    for name, n in strategy.items():
        code = lookup.get(name, folded.get(name.lower()))
        if code is None:
            raise unknown_name("class", name, classes)
        if counts[code] == 0:
            raise ConfigError(f"--rebalance-param sampling_strategy: class {name!r} has no "
                              "training rows, so it cannot be resampled")
        out[code] = int(n)
    return out


def _targets(spec: RebalanceMethod, strategy: Any, y: np.ndarray,
             classes: Sequence[str]) -> dict[int, int]:
    """What imbalanced-learn will do per class: rows to add (over) or to keep (under)."""
    from imblearn.utils import check_sampling_strategy

    kind = "over-sampling" if spec.kind == "over" else "under-sampling"
    try:
        return dict(check_sampling_strategy(strategy, y, kind))
    except ValueError as exc:
        raise ConfigError(f"--rebalance-param sampling_strategy={_show(strategy, classes)!r} "
                          f"cannot be used with {spec.name} on these training rows: {exc}") from exc


def _show(strategy: Any, classes: Sequence[str]) -> Any:
    if isinstance(strategy, Mapping):
        return {classes[k]: v for k, v in strategy.items()}
    return strategy


def _fit_neighbours(spec: RebalanceMethod, resolved: dict, targets: dict[int, int],
                    counts: np.ndarray, classes: Sequence[str], info: dict) -> None:
    """Lower the neighbour count to what the smallest grown class allows (recorded)."""
    if spec.neighbours is None:
        return
    grown = [c for c, n in targets.items() if n > 0]
    if not grown:
        return
    smallest = min(grown, key=lambda c: counts[c])
    n_rows = int(counts[smallest])
    if n_rows < 2:
        raise ConfigError(
            f"--rebalance {spec.name}: class {classes[smallest]!r} has {n_rows} training row; "
            f"{spec.name} makes a row between two rows of the same class and needs at least 2. "
            "Use --rebalance ros, a larger --max-train-rows, or a sampling_strategy that leaves "
            "the class out (CLASS:COUNT pairs)")
    wanted = resolved[spec.neighbours]
    if wanted > n_rows - 1:
        resolved[spec.neighbours] = n_rows - 1
        info["adjustments"][spec.neighbours] = {
            "requested": wanted, "used": n_rows - 1,
            "reason": f"class {classes[smallest]!r} has {n_rows} training rows"}
        log.warning("%s: %s lowered from %d to %d: class %r has only %d training rows",
                    spec.name, spec.neighbours, wanted, n_rows - 1, classes[smallest], n_rows)


def _fit_resample(sampler, spec: RebalanceMethod, X: np.ndarray, y: np.ndarray,
                  counts: np.ndarray, classes: Sequence[str],
                  info: dict) -> tuple[np.ndarray, np.ndarray]:
    try:
        return sampler.fit_resample(X, y)
    except (ValueError, RuntimeError) as exc:
        used = {k: v for k, v in info["params"].items() if k != "random_state"}
        context = f"training rows per class {_named(counts, classes)}; parameters {used}"
        if spec.neighbours in info["adjustments"]:
            context += f" ({spec.neighbours} lowered: {info['adjustments'][spec.neighbours]['reason']})"
        hint = ""
        if spec.name == "adasyn" and isinstance(exc, RuntimeError):
            # imbalanced-learn's wording speaks of a "majority class"; say what it means here
            hint = (". ADASYN weights each row of a class it grows by how many of its "
                    f"{used['n_neighbors']} nearest rows belong to other classes; for one such "
                    "class none did. Use --rebalance smote, or a larger n_neighbors")
        raise ConfigError(f"--rebalance {spec.name} failed on the training rows ({context}): "
                          f"{exc}{hint}") from exc


def _origin(sampler, spec: RebalanceMethod, n_in: int, n_out: int) -> np.ndarray:
    """For each resampled row, the training row it is (or -1 for a made-up row).

    Over-samplers return the input rows first, in order, then the new ones; under-samplers
    and Tomek links report which rows they kept in ``sample_indices_``.
    """
    if spec.name == "rus":
        return np.asarray(sampler.sample_indices_, dtype=np.int64)
    if spec.name == "smotetomek":
        kept = np.asarray(sampler.tomek_.sample_indices_, dtype=np.int64)
        return np.where(kept < n_in, kept, -1)
    return np.concatenate([np.arange(n_in), np.full(n_out - n_in, -1)])


# --------------------------------------------------------------------------------------------
# keeping encoded rows valid


def _flag_columns(X: np.ndarray, groups: Mapping[str, np.ndarray]) -> np.ndarray:
    """Columns outside the one-hot blocks whose training values are all 0 or 1.

    These are the boolean features and missing-value indicators; scaled numeric columns never
    take only the values 0 and 1 (a constant one is all zeros, and stays so).
    """
    in_group = np.zeros(X.shape[1], dtype=bool)
    for idx in groups.values():
        in_group[idx] = True
    binary = np.all((X == 0) | (X == 1), axis=0)
    return np.flatnonzero(binary & ~in_group)


def snap_synthetic(rows: np.ndarray, groups: Mapping[str, Sequence[int]],
                   flags: Sequence[int] = ()) -> np.ndarray:
    """Turn interpolated one-hot blocks and 0/1 flags of ``rows`` back into valid encodings.

    A SMOTE row lies between two parents, ``x + t * (n - x)`` with ``0 <= t < 1``, so a
    one-hot block holds ``1 - t`` at the first parent's level and ``t`` at the other's.  Each
    block becomes the one-hot of its largest entry (arg-max), i.e. the level of the nearer
    parent; the all-zeros encoding (a level unseen in training) counts as one more level, worth
    ``1 - sum(block)``, so a block is all zeros only when a parent's block was.  A flag becomes
    1 at 0.5 and above, else 0: again the nearer parent's value.  Returns a new array.
    """
    rows = np.array(rows, dtype=np.float32, copy=True)
    for idx in groups.values():
        idx = np.asarray(idx, dtype=np.int64)
        if not len(idx):
            continue
        block = rows[:, idx]
        unseen = 1.0 - block.sum(axis=1, keepdims=True)
        choice = np.argmax(np.hstack([block, unseen]), axis=1)
        snapped = np.zeros_like(block)
        hit = np.flatnonzero(choice < len(idx))
        snapped[hit, choice[hit]] = 1.0
        rows[:, idx] = snapped
    flags = np.asarray(flags, dtype=np.int64)
    if len(flags):
        rows[:, flags] = (rows[:, flags] >= 0.5).astype(np.float32)
    return rows


@dataclass
class _Layout:
    n_features: int
    plain: np.ndarray  # positions in X of the columns kept as they are
    groups: list[np.ndarray]  # one-hot positions in X, one entry per collapsed column


def _collapse(X: np.ndarray, groups: Mapping[str, np.ndarray],
              flags: np.ndarray) -> tuple[np.ndarray, list[int], _Layout]:
    """Plain columns, then one level code per one-hot block (``len(block)`` = all zeros).

    Returns the collapsed matrix, the positions in it that SMOTE-NC must treat as categorical
    (flags and codes) and what :func:`_expand` needs to undo it.
    """
    in_group = np.zeros(X.shape[1], dtype=bool)
    for idx in groups.values():
        in_group[idx] = True
    plain = np.flatnonzero(~in_group)
    blocks = list(groups.values())
    codes = [np.where(X[:, idx].any(axis=1), X[:, idx].argmax(axis=1), len(idx)) for idx in blocks]
    Xc = np.column_stack([X[:, plain], *codes]).astype(np.float64) if codes else X[:, plain]
    flag_pos = np.searchsorted(plain, flags).tolist()
    cat_positions = flag_pos + list(range(len(plain), len(plain) + len(blocks)))
    return Xc, cat_positions, _Layout(X.shape[1], plain, blocks)


def _expand(Xc: np.ndarray, layout: _Layout) -> np.ndarray:
    """Undo :func:`_collapse`: level codes back to one-hot blocks."""
    Xc = np.asarray(Xc)
    out = np.zeros((len(Xc), layout.n_features), dtype=np.float32)
    out[:, layout.plain] = Xc[:, :len(layout.plain)]
    for j, idx in enumerate(layout.groups):
        code = np.rint(Xc[:, len(layout.plain) + j]).astype(np.int64)
        hit = np.flatnonzero(code < len(idx))
        out[hit, idx[code[hit]]] = 1.0
    return out
