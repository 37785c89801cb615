"""Seeded, stratified splits and subsamples.  All indices refer to rows of the cleaned table."""

from __future__ import annotations

import numpy as np

from idsbench.errors import ConfigError, DataError


def stratified_split(y: np.ndarray, test_size: float, seed: int, what: str = "test",
                     class_names: list[str] | None = None,
                     held_may_miss_classes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into (keep, held-out) with class proportions preserved.

    scikit-learn's ``train_test_split`` does the work; a class too small to appear on both
    sides gets an error naming it instead of scikit-learn's.  With ``held_may_miss_classes``
    (the validation split) small inputs are split instead: every class keeps at least one row
    on the keep side, and the held-out side may lack the rarest classes.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ConfigError(f"the {what} fraction must lie strictly between 0 and 1, got {test_size}")
    codes, counts = np.unique(y, return_counts=True)
    n_held = int(np.ceil(test_size * len(y)))  # as scikit-learn counts it
    too_small = (counts < 2).any() or n_held < len(codes) or len(y) - n_held < len(codes)
    if held_may_miss_classes and too_small:
        return _split_keeping_every_class(y, codes, counts, test_size, seed)
    if (counts < 2).any():
        small = [class_names[c] if class_names else str(c) for c in codes[counts < 2]]
        raise DataError(f"cannot carve a stratified {what} split: class(es) {small} have only one "
                        "row; remove them or add rows")
    idx = np.arange(len(y))
    try:
        keep, held = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    except ValueError as exc:
        raise DataError(f"cannot carve a stratified {what} split of {len(y)} rows with "
                        f"{len(codes)} classes at fraction {test_size}: {exc}") from exc
    return np.sort(keep), np.sort(held)


def _split_keeping_every_class(y: np.ndarray, codes: np.ndarray, counts: np.ndarray,
                               test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Proportional held-out rows per class (largest remainder), leaving each class one row."""
    share = counts * test_size
    held = np.minimum(np.floor(share).astype(int), counts - 1)
    target = min(int(round(test_size * len(y))), int((counts - 1).sum()))
    room = counts - 1 - held
    for i in np.argsort(-(share - np.floor(share)), kind="stable"):
        if held.sum() >= target:
            break
        if room[i] > 0:
            held[i] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False)
              for c, k in zip(codes, held) if k > 0]
    held_idx = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64)
    keep_idx = np.setdiff1d(np.arange(len(y)), held_idx)
    return keep_idx, held_idx


def stratified_subsample(y: np.ndarray, n: int, seed: int,
                         class_names: list[str] | None = None) -> np.ndarray:
    """Pick about ``n`` row positions with class proportions kept and every class present.

    Allocation is proportional (largest remainder), with at least two rows of each class that
    has two or more (so it can reach both the training and the validation split).  The result
    may exceed ``n`` by the number of rare classes lifted to that floor.
    """
    codes, counts = np.unique(y, return_counts=True)
    if n < len(codes):
        names = [class_names[c] if class_names else str(c) for c in codes]
        raise ConfigError(f"--max-train-rows {n} is smaller than the number of classes in the "
                          f"training rows ({len(codes)}: {', '.join(names)}); every class needs "
                          f"at least one training row, so use at least {len(codes)}")
    if n >= len(y):
        return np.arange(len(y))
    share = counts / counts.sum() * n
    alloc = np.floor(share).astype(int)
    remainder = n - alloc.sum()
    alloc[np.argsort(-(share - alloc))[:remainder]] += 1
    alloc = np.maximum(alloc, np.minimum(counts, 2))
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False)
              for c, k in zip(codes, alloc)]
    return np.sort(np.concatenate(picked))
