"""Measured speed of idsbench: loading a dataset, the training loop, inference and a whole run.

Every figure that has a target is a *ratio* against a reference measured in the same process,
side by side, so that the load of a shared machine cancels out as far as it can:

* **data**: the first load of a dataset (an empty cache) against a plain ``pandas.read_csv`` of
  the same files, and the second load (cache warm) against the first;
* **training loop**: samples per second of a network's ``fit`` against a bare loop that runs only
  forward, backward and an optimiser step on pre-built batches of the same size, with the same
  module (``model.build_module(F, K)``);
* **inference**: flows per second of ``predict_proba`` at a few batch sizes for every model, and
  for networks the FLOPs per flow and the FLOP/s reached, as a fraction of a float32
  matrix-multiply peak measured in the same run;
* **end to end** (optional): the wall time of ``idsbench run --models all`` in a subprocess.

Each measurement is repeated; the median is reported next to the samples.  :func:`run_bench`
returns a JSON-serialisable dict and :func:`render_tables` turns it into text tables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from idsbench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: bump when the layout of the JSON result changes
BENCH_VERSION = 1
STAGES = ("data", "train", "infer")

#: what the targets ask for (issue 8); "<=" means the value must not exceed the limit
TARGETS = {
    "data.first_load_vs_read_csv": ("<=", 1.0),
    "data.second_load_speedup": (">=", 10.0),
    "train.loop_vs_bare": ("<=", 1.2),
    "e2e.seconds": ("<=", 1200.0),
}

#: settings of the two modes; ``--quick`` is what CI runs (well under a minute)
MODES: dict[str, dict[str, Any]] = {
    "quick": {"repeats": 3, "cold_repeats": 1, "train_repeats": 2, "train_steps": 3,
              "infer_repeats": 1, "max_train_rows": 20000, "fit_rows": 2048,
              "min_call_seconds": 0.02, "max_calls": 50, "matmul_size": 2048},
    "full": {"repeats": 15, "cold_repeats": 3, "train_repeats": 5, "train_steps": 10,
             "infer_repeats": 3, "max_train_rows": None, "fit_rows": 20000,
             "min_call_seconds": 0.2, "max_calls": 2000, "matmul_size": 2048},
}


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and how hard.  ``None`` fields take the mode's value (see ``MODES``).

    Parameters
    ----------
    dataset, split, data_dir, allow_checksum_mismatch
        The data, as for ``idsbench run``.
    quick : bool
        Few repeats, few steps and at most 20,000 training rows (the CI setting).
    models : tuple of str or None
        Models to measure; None means what ``idsbench run --models all`` runs (every
        registered model but ablation variants).
    device : str
        ``auto``, ``cpu`` or ``cuda``, for the training loop and inference of networks.
    batch_size : int
        Training batch size (the default profile's 512).
    infer_batch_sizes : tuple of int
        Batch sizes at which inference is timed.
    stages : tuple of str
        Any of ``data``, ``train``, ``infer``.
    e2e : bool
        Also time ``idsbench run --models all`` (minutes on a laptop).
    """

    dataset: str = "toniot"
    split: str | None = None
    data_dir: str | None = None
    allow_checksum_mismatch: bool = False
    quick: bool = False
    models: tuple[str, ...] | None = None
    device: str = "auto"
    batch_size: int = 512
    infer_batch_sizes: tuple[int, ...] = (1, 256, 8192)
    stages: tuple[str, ...] = STAGES
    e2e: bool = False
    repeats: int | None = None
    cold_repeats: int | None = None
    train_repeats: int | None = None
    train_steps: int | None = None
    infer_repeats: int | None = None
    max_train_rows: int | None = None
    fit_rows: int | None = None
    min_call_seconds: float | None = None
    max_calls: int | None = None
    matmul_size: int | None = None

    def resolved(self) -> "BenchConfig":
        """Fill the mode's defaults and check every setting."""
        mode = MODES["quick" if self.quick else "full"]
        filled = {k: (getattr(self, k) if getattr(self, k) is not None else v)
                  for k, v in mode.items()}
        cfg = replace(self, **filled)
        unknown = [s for s in cfg.stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"--stages: unknown stage(s) {', '.join(unknown)}; expected any of "
                              f"{', '.join(STAGES)}")
        for name in ("repeats", "cold_repeats", "train_repeats", "train_steps", "infer_repeats",
                     "batch_size", "fit_rows", "max_calls", "matmul_size"):
            value = getattr(cfg, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"bench setting {name} must be a positive integer, got {value!r}")
        bad = [b for b in cfg.infer_batch_sizes if not isinstance(b, int) or b < 1]
        if bad or not cfg.infer_batch_sizes:
            raise ConfigError(f"inference batch sizes must be positive integers, got "
                              f"{list(cfg.infer_batch_sizes)}")
        return cfg


# --------------------------------------------------------------------------------------------
# timing helpers


def summarise(samples: list[float]) -> dict[str, Any]:
    """Median, spread and the samples themselves (seconds, or whatever was measured)."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "n": len(samples), "samples": list(samples)}


def _sync(device) -> None:
    # CUDA work is asynchronous: a clock read before the queue drains measures nothing
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device=None) -> float:
    """Seconds one call of ``fn`` takes (the device is synchronised before the clock stops)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def seconds_per_call(fn: Callable[[], Any], min_seconds: float, max_calls: int,
                     device=None) -> float:
    """Average seconds per call of ``fn``, calling it until ``min_seconds`` have passed."""
    _sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= max_calls:
            break
    _sync(device)
    return (time.perf_counter() - start) / calls


@contextlib.contextmanager
def scratch_cache() -> Iterator[Path]:
    """An empty idsbench cache for the duration of the block (the variable is restored)."""
    from idsbench.data.io import ENV_CACHE_DIR

    before = os.environ.get(ENV_CACHE_DIR)
    path = Path(tempfile.mkdtemp(prefix="idsbench-bench-cache-"))
    os.environ[ENV_CACHE_DIR] = str(path)
    try:
        yield path
    finally:
        from idsbench.data.io import wait_for_cache_writes

        wait_for_cache_writes()  # nothing may still be writing into the folder removed below
        if before is None:
            os.environ.pop(ENV_CACHE_DIR, None)
        else:
            os.environ[ENV_CACHE_DIR] = before
        shutil.rmtree(path, ignore_errors=True)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------------------------------
# data


def _data_config(cfg: BenchConfig):
    from idsbench.data.prepare import DataConfig

    return DataConfig(dataset=cfg.dataset, split=cfg.split, data_dir=cfg.data_dir,
                      max_train_rows=cfg.max_train_rows,
                      allow_checksum_mismatch=cfg.allow_checksum_mismatch).resolved()


def _dataset_files(cfg: BenchConfig) -> list[Path]:
    from idsbench.data import io as dio
    from idsbench.data.manifest import get_manifest

    manifest = get_manifest(cfg.dataset)
    root, origin = dio.search_dirs(cfg.data_dir)
    files = dio.candidate_files(manifest, root)
    if not files:
        names = sorted({n for spec in manifest.files.values() for n in spec.names})
        raise DataError(f"bench: no file of dataset {manifest.name!r} found in {root} or "
                        f"{root / manifest.subdir} (from {origin}); expected one of "
                        f"{', '.join(names)} (.csv or .csv.gz). Pass --data-dir or set "
                        f"$IDSBENCH_DATA_DIR")
    return files


def bench_data(cfg: BenchConfig):
    """Time the first and the second load of the dataset; returns ``(figures, PreparedData)``.

    * ``read_csv``: ``pandas.read_csv(path)`` of every file of the dataset, default options
      (the reference);
    * ``first_load``: :func:`idsbench.data.io.load_table` of every file with an empty cache:
      read, checksum, parse and clean, until the table is returned;
    * ``first_load_until_cached``: the same, until the table cache written in a thread
      meanwhile is on disk;
    * ``second_load_table``: the same call again, served from the table cache;
    * ``first_prepare``: :func:`idsbench.data.prepare.prepare` with an empty cache: all of the
      above plus split, encoders and arrays (what ``idsbench run`` does before training);
    * ``second_prepare``: the same call again, served from the caches.
    """
    import pandas as pd

    from idsbench.data import io as dio
    from idsbench.data.manifest import get_manifest
    from idsbench.data.prepare import prepare

    manifest = get_manifest(cfg.dataset)
    files = _dataset_files(cfg)
    data_cfg = _data_config(cfg)

    # imports, thread pools and the page cache are not what is measured: both sides pay for
    # them once, untimed
    import idsbench.data.preprocess  # noqa: F401 - imports scikit-learn
    import sklearn.model_selection  # noqa: F401
    for path in files:
        pd.read_csv(path)
    with scratch_cache():
        for path in files:
            dio.load_table(path, manifest)

    samples: dict[str, list[float]] = {k: [] for k in (
        "read_csv", "first_load", "first_load_until_cached", "second_load_table")}
    for _ in range(cfg.repeats):
        samples["read_csv"].append(time_call(lambda: [pd.read_csv(p) for p in files]))
        with scratch_cache():
            start = time.perf_counter()
            for path in files:
                dio.load_table(path, manifest)
            samples["first_load"].append(time.perf_counter() - start)
            dio.wait_for_cache_writes()  # the table cache is written in a thread
            samples["first_load_until_cached"].append(time.perf_counter() - start)
            samples["second_load_table"].append(time_call(
                lambda: [dio.load_table(p, manifest) for p in files]))

    first_prepare, second_prepare = [], []
    data = None
    with scratch_cache():
        for i in range(cfg.cold_repeats):
            if i:  # each first load starts from an empty cache
                dio.wait_for_cache_writes()
                shutil.rmtree(dio.cache_dir(), ignore_errors=True)
            first_prepare.append(time_call(lambda: prepare(data_cfg)))
        for _ in range(cfg.repeats):
            start = time.perf_counter()
            data = prepare(data_cfg)
            second_prepare.append(time.perf_counter() - start)

    out = {
        "files": [{"path": str(p), "bytes": p.stat().st_size} for p in files],
        "protocol": data_cfg.to_dict(),
        "rows": {"train": int(len(data.y_train)), "val": int(len(data.y_val)),
                 "test": int(len(data.y_test)), "features": int(data.X_train.shape[1])},
        "seconds": {"read_csv": summarise(samples["read_csv"]),
                    "first_load": summarise(samples["first_load"]),
                    "first_load_until_cached": summarise(samples["first_load_until_cached"]),
                    "second_load_table": summarise(samples["second_load_table"]),
                    "first_prepare": summarise(first_prepare),
                    "second_prepare": summarise(second_prepare)},
    }
    med = {k: v["median"] for k, v in out["seconds"].items()}
    out["ratios"] = {
        # <= 1: the first load (read, checksum, parse, clean) is no slower than read_csv
        "first_load_vs_read_csv": med["first_load"] / med["read_csv"],
        # the same, counting until the table cache (written in a thread) is on disk
        "first_load_until_cached_vs_read_csv": med["first_load_until_cached"] / med["read_csv"],
        "table_second_load_speedup": med["first_load"] / med["second_load_table"],
        # >= 10: the second load of the dataset (arrays from the cache)
        "second_load_speedup": med["first_prepare"] / med["second_prepare"],
    }
    log.info("bench: data %s", {k: round(v, 3) for k, v in {**med, **out["ratios"]}.items()})
    return out, data


# --------------------------------------------------------------------------------------------
# the training loop


def _torch_models(names: list[str]) -> list[str]:
    from idsbench.models.registry import get_model_spec

    return [n for n in names if get_model_spec(n).kind == "torch"]


def _sample_rows(n_rows: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` row positions drawn without replacement (with, when there are fewer rows).

    The prepared rows are ordered as in the file, often by class, so the first rows alone
    might hold one class only.
    """
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=n, replace=n > n_rows))


def _training_rows(data, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training rows, float32 and int64."""
    idx = _sample_rows(len(data.y_train), n)
    return (np.ascontiguousarray(data.X_train[idx], dtype=np.float32),
            np.asarray(data.y_train[idx], dtype=np.int64))


def _bare_loop(module, batches: list, lr: float, device, amp: bool) -> float:
    """Forward, backward and an Adam step over pre-built batches; returns the seconds taken."""
    import torch
    from torch.nn import functional as F

    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                if amp and device.type == "cuda" else contextlib.nullcontext())

    def steps():
        for xb, yb in batches:
            with autocast:
                logits = module(xb)
            loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return time_call(steps, device)


def bench_model_training(name: str, X: np.ndarray, y: np.ndarray, cfg: BenchConfig) -> dict:
    """One network: its ``fit`` (one epoch, no validation) against the bare loop, interleaved."""
    import torch

    from idsbench.models.registry import create_model
    from idsbench.models.torch_base import resolve_device

    device = resolve_device(cfg.device)
    bs = cfg.batch_size
    settings = {"epochs": 1, "batch_size": bs, "early_stopping": False, "device": cfg.device}
    n_features, n_classes = X.shape[1], int(y.max()) + 1

    def loop_once(rows: int = len(y)) -> float:
        model = create_model(name, random_state=0, **settings)
        model.fit(X[:rows], y[:rows])
        # the epoch's own clock: excludes building the module and copying the arrays
        return float(model.history_[0]["seconds"])

    probe = create_model(name, random_state=0, **settings)
    Xt = torch.tensor(X, device=device)
    yt = torch.tensor(y, device=device)
    batches = [(Xt[i:i + bs], yt[i:i + bs]) for i in range(0, len(y), bs)]

    def bare_once(steps: int = len(batches)) -> float:
        torch.manual_seed(0)
        module = probe.build_module(n_features, n_classes).to(device)
        return _bare_loop(module, batches[:steps], probe.lr, device,
                          bool(getattr(probe, "amp", True)))

    # one untimed batch of each: allocator, kernel selection and lazy imports warm up
    loop_once(bs)
    bare_once(1)
    loop, bare = [], []
    for r in range(cfg.train_repeats):
        # alternate the order so a drift in machine load biases neither side
        if r % 2:
            bare.append(bare_once())
            loop.append(loop_once())
        else:
            loop.append(loop_once())
            bare.append(bare_once())
    ratios = [a / b for a, b in zip(loop, bare)]
    n = len(y)
    log.info("bench: %s trains at %.0f samples/s, the bare loop at %.0f (ratio %.3f)", name,
             n / statistics.median(loop), n / statistics.median(bare), statistics.median(ratios))
    return {
        "batch_size": bs, "steps": len(batches), "samples": n, "device": str(device),
        "loop_seconds": summarise(loop), "bare_seconds": summarise(bare),
        "loop_samples_per_second": n / statistics.median(loop),
        "bare_samples_per_second": n / statistics.median(bare),
        # >= 1: how much slower the real loop is than the bare one (target <= 1.2)
        "loop_vs_bare": statistics.median(ratios),
        "loop_vs_bare_samples": ratios,
    }


def bench_training(cfg: BenchConfig, data, names: list[str]) -> dict:
    """The training-loop figures of every selected network.

    Also an estimate of what the default profile's training costs on the prepared training
    rows: epochs x rows / the loop's rate, without the per-epoch validation pass and as if
    early stopping never stopped a network early (so an upper bound of the training alone).
    """
    from idsbench.profiles import get_profile

    X, y = _training_rows(data, cfg.batch_size * cfg.train_steps)
    epochs = int(get_profile("default")["epochs"])
    n_train = int(len(data.y_train))
    out: dict[str, Any] = {"models": {}, "failed": {}}
    for name in _torch_models(names):
        log.info("bench: training loop of %s", name)
        try:
            fig = bench_model_training(name, X, y, cfg)
        except Exception as exc:  # noqa: BLE001 - one broken model must not hide the others
            out["failed"][name] = f"{type(exc).__name__}: {exc}"
            log.error("bench: training loop of %s failed: %s", name, exc)
            continue
        fig["epoch_seconds_estimate"] = n_train / fig["loop_samples_per_second"]
        out["models"][name] = fig
    out["estimate"] = {
        "train_rows": n_train, "epochs": epochs,
        "seconds": epochs * sum(f["epoch_seconds_estimate"] for f in out["models"].values()),
    }
    return out


# --------------------------------------------------------------------------------------------
# inference and FLOPs


def matmul_peak(device, n: int, repeats: int) -> dict:
    """FLOP/s of an ``n`` x ``n`` float32 matrix multiply: the machine's practical peak."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    a @ b  # warm-up
    seconds = [time_call(lambda: a @ b, device) for _ in range(repeats)]
    flops = 2.0 * n ** 3
    return {"size": n, "dtype": "float32", "seconds": summarise(seconds),
            "flops_per_second": flops / statistics.median(seconds),
            "torch_threads": torch.get_num_threads()}


def _rnn_layer_flops(inputs, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    # one oneDNN RNN layer (the CPU LSTM/GRU kernel): input and recurrent products per step
    steps_times_batch = math.prod(inputs) // inputs[-1]
    return 2 * steps_times_batch * (w_ih[0] * w_ih[1] + w_hh[0] * w_hh[1])


def flops_per_flow(module, n_features: int, batch: int = 256) -> float:
    """Forward FLOPs per flow, counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Counted on a CPU copy in eval mode (FLOPs are a property of the architecture).  Matrix
    products and convolutions are counted; element-wise work (activations, normalisation,
    pooling) is not, so the figure is a slight lower bound.
    """
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cpu = copy.deepcopy(module).to("cpu").eval()
    custom = {}
    if hasattr(torch.ops.aten, "mkldnn_rnn_layer"):
        # FlopCounterMode has no formula for the fused CPU recurrent kernel
        custom[torch.ops.aten.mkldnn_rnn_layer] = _rnn_layer_flops
    x = torch.zeros(batch, n_features)
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as counter:
        cpu(x)
    return counter.get_total_flops() / batch


def _batch(X: np.ndarray, size: int) -> np.ndarray:
    return np.ascontiguousarray(X[_sample_rows(len(X), size, seed=2)])


def bench_model_inference(name: str, data, cfg: BenchConfig, peak: dict | None) -> dict:
    """Fit ``name`` on a few rows, then time ``predict_proba`` at each batch size."""
    from idsbench.models.registry import create_model, get_model_spec
    from idsbench.models.torch_base import resolve_device

    spec = get_model_spec(name)
    n_fit = min(cfg.fit_rows, len(data.y_train))
    params: dict[str, Any] = {}
    if spec.kind == "torch":
        params = {"epochs": 1, "batch_size": cfg.batch_size, "device": cfg.device}
    elif cfg.device not in ("auto", None):
        from idsbench.models.registry import accepted_params

        if "device" in (accepted_params(spec) or ()):
            params["device"] = cfg.device
    model = create_model(name, random_state=0, **params)
    fit_idx = _sample_rows(len(data.y_train), n_fit)
    val_idx = _sample_rows(len(data.y_val), min(len(data.y_val), max(n_fit // 4, 1)), seed=1)
    start = time.perf_counter()
    model.fit(data.X_train[fit_idx], data.y_train[fit_idx], data.X_val[val_idx],
              data.y_val[val_idx])
    fit_seconds = time.perf_counter() - start

    device = resolve_device(cfg.device) if spec.kind == "torch" else None
    out: dict[str, Any] = {"kind": spec.kind, "fit_rows": n_fit, "fit_seconds": fit_seconds,
                           "batch_sizes": {}}
    if getattr(model, "best_iteration_", None) is not None:  # boosted trees: size matters
        out["best_iteration"] = int(model.best_iteration_)
    if spec.kind == "torch":
        module = model.module_
        out["flops_per_flow"] = flops_per_flow(module, data.X_train.shape[1])
        out["n_params"] = int(sum(p.numel() for p in module.parameters()))
    for bs in cfg.infer_batch_sizes:
        Xb = _batch(data.X_test, bs)
        model.predict_proba(Xb)  # warm-up
        per_call = [seconds_per_call(lambda: model.predict_proba(Xb), cfg.min_call_seconds,
                                     cfg.max_calls, device) for _ in range(cfg.infer_repeats)]
        entry = {"seconds_per_call": summarise(per_call),
                 "flows_per_second": bs / statistics.median(per_call)}
        if out.get("flops_per_flow") and peak:
            achieved = out["flops_per_flow"] * entry["flows_per_second"]
            entry["flops_per_second"] = achieved
            entry["fraction_of_matmul_peak"] = achieved / peak["flops_per_second"]
        out["batch_sizes"][str(bs)] = entry
        log.info("bench: %s predicts %.0f flows/s at batch %d", name, entry["flows_per_second"], bs)
    return out


def bench_inference(cfg: BenchConfig, data, names: list[str]) -> dict:
    """Inference figures of every selected model, and the matrix-multiply peak."""
    from idsbench.models.torch_base import resolve_device

    peak = None
    if _torch_models(names):
        peak = matmul_peak(resolve_device(cfg.device), cfg.matmul_size, cfg.repeats)
    out: dict[str, Any] = {"matmul_peak": peak, "models": {}, "failed": {}}
    for name in names:
        log.info("bench: inference of %s", name)
        try:
            out["models"][name] = bench_model_inference(name, data, cfg, peak)
        except Exception as exc:  # noqa: BLE001 - one broken model must not hide the others
            out["failed"][name] = f"{type(exc).__name__}: {exc}"
            log.error("bench: inference of %s failed: %s", name, exc)
    return out


# --------------------------------------------------------------------------------------------
# end to end


def e2e_command(cfg: BenchConfig, out_dir: Path) -> list[str]:
    """The ``idsbench run`` command line that ``--e2e`` times (binary task, one seed)."""
    cmd = [sys.executable, "-m", "idsbench.cli", "-q", "run", "--models", "all", "--dataset",
           cfg.dataset, "--task", "binary", "--seeds", "0", "--profile", "default", "--out",
           str(out_dir), "--no-progress"]
    if cfg.split:
        cmd += ["--split", cfg.split]
    if cfg.data_dir:
        cmd += ["--data-dir", cfg.data_dir]
    if cfg.device not in ("auto", None):
        cmd += ["--device", cfg.device]
    return cmd


def bench_e2e(cfg: BenchConfig) -> dict:
    """Wall time of the whole default benchmark in a fresh process (the user's cache is used)."""
    from idsbench.records import load_records

    with tempfile.TemporaryDirectory(prefix="idsbench-bench-e2e-") as tmp:
        cmd = e2e_command(cfg, Path(tmp))
        log.info("bench: timing %s", " ".join(cmd))
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        records = load_records([tmp]) if any(Path(tmp).iterdir()) else []
    jobs = {r["model"]: {"status": r.get("status"),
                         "fit_seconds": (r.get("timing") or {}).get("fit_seconds"),
                         "epochs_run": (r.get("timing") or {}).get("epochs_run"),
                         # a faster run must not be a worse one: the scores come along
                         "accuracy": (r.get("metrics") or {}).get("accuracy"),
                         "f1_macro": (r.get("metrics") or {}).get("f1_macro")}
            for r in records}
    return {"command": " ".join(cmd[1:]), "exit_status": proc.returncode, "seconds": seconds,
            "jobs": jobs, "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""}


# --------------------------------------------------------------------------------------------
# the whole benchmark


def _environment(cfg: BenchConfig) -> dict:
    import torch

    from idsbench.models.torch_base import resolve_device
    from idsbench.records import environment

    env = environment()
    env["torch_threads"] = torch.get_num_threads()
    env["torch_interop_threads"] = torch.get_num_interop_threads()
    env["device"] = str(resolve_device(cfg.device))
    # thread settings change CPU figures several-fold on a busy machine (README, "Performance")
    env["thread_env"] = {k: os.environ.get(k) for k in (
        "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")}
    return env


def evaluate_targets(result: dict) -> list[dict]:
    """Each target with its measured value and whether it is met (missing stages are skipped)."""
    rows = []

    def add(name: str, key: str, value: float | None) -> None:
        if value is None:
            return
        op, limit = TARGETS[key]
        met = value <= limit if op == "<=" else value >= limit
        rows.append({"target": name, "value": value, "op": op, "limit": limit, "met": bool(met)})

    data = result.get("data")
    if data:
        add("first load / read_csv", "data.first_load_vs_read_csv",
            data["ratios"]["first_load_vs_read_csv"])
        add("first / second load (prepare)", "data.second_load_speedup",
            data["ratios"]["second_load_speedup"])
    for name, fig in (result.get("training") or {}).get("models", {}).items():
        add(f"{name}: loop / bare loop", "train.loop_vs_bare", fig["loop_vs_bare"])
    e2e = result.get("e2e")
    if e2e:
        add("idsbench run --models all (s)", "e2e.seconds",
            e2e["seconds"] if e2e["exit_status"] == 0 else math.inf)
    return rows


def run_bench(cfg: BenchConfig) -> dict:
    """Run the selected stages; returns the JSON-serialisable result (see the module docstring)."""
    import torch

    from idsbench.models.registry import get_model_spec
    from idsbench.records import now_iso
    from idsbench.runner import default_models

    cfg = cfg.resolved()
    names = list(cfg.models) if cfg.models else default_models()
    for n in names:
        get_model_spec(n)  # an unknown name fails now, listing the known ones
    result: dict[str, Any] = {
        "bench_version": BENCH_VERSION, "created_at": now_iso(), "config": asdict(cfg),
        "models": names, "load_average_before": load_average(),
        "environment": _environment(cfg),
    }
    started = time.perf_counter()

    # the arrays feed the other stages, so the data stage always runs; its timings only
    # when asked for
    if "data" in cfg.stages:
        result["data"], data = bench_data(cfg)
    else:
        from idsbench.data.prepare import prepare

        data = prepare(_data_config(cfg))
    if "train" in cfg.stages:
        result["training"] = bench_training(cfg, data, names)
    if "infer" in cfg.stages:
        result["inference"] = bench_inference(cfg, data, names)
    if cfg.e2e:
        result["e2e"] = bench_e2e(cfg)

    result["targets"] = evaluate_targets(result)
    result["seconds"] = time.perf_counter() - started
    result["load_average_after"] = load_average()
    result["environment"]["torch_threads_after"] = torch.get_num_threads()
    return result


def write_json(result: dict, path: Path) -> None:
    """Write the result atomically, as strict JSON (non-finite numbers become null)."""
    from idsbench.records import atomic_write_text

    atomic_write_text(Path(path), json.dumps(_finite(result), indent=2, sort_keys=False) + "\n")


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return _finite(obj.item())
    return obj


# --------------------------------------------------------------------------------------------
# text tables


def _si(x: float | None, unit: str = "") -> str:
    if x is None or not math.isfinite(x):
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".strip()


def _fixed(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render_tables(result: dict) -> str:
    """The result as plain-text tables (tabulate), one per stage, then the targets."""
    from tabulate import tabulate

    parts = []
    env = result.get("environment", {})
    parts.append(f"idsbench bench: {env.get('cpu_count')} CPU(s), torch threads "
                 f"{env.get('torch_threads')}, CUDA {env.get('cuda') or 'none'}; load average "
                 f"before {result.get('load_average_before')}, after "
                 f"{result.get('load_average_after')}")

    data = result.get("data")
    if data:
        s = data["seconds"]
        rows = [(k, f"{v['median']:.3f}", f"{v['min']:.3f}", f"{v['max']:.3f}", v["n"])
                for k, v in s.items()]
        parts.append("Data (seconds; first = empty cache)\n" + tabulate(
            rows, headers=["step", "median", "min", "max", "n"], tablefmt="simple"))
        r = data["ratios"]
        parts.append(tabulate([(k, f"{v:.3f}") for k, v in r.items()],
                              headers=["data ratio", "value"], tablefmt="simple"))

    training = result.get("training")
    if training:
        est = training.get("estimate", {})
        rows = [(n, f["batch_size"], f["steps"], f"{f['loop_samples_per_second']:,.0f}",
                 f"{f['bare_samples_per_second']:,.0f}", f"{f['loop_vs_bare']:.3f}",
                 f"{f['epoch_seconds_estimate']:.0f}")
                for n, f in training["models"].items()]
        rows += [(n, "-", "-", "FAILED", err[:60], "-", "-")
                 for n, err in training["failed"].items()]
        parts.append(
            "Training loop (samples/s, medians; s/epoch: estimated on "
            f"{est.get('train_rows', 0):,} training rows)\n" + tabulate(
                rows, headers=["network", "batch", "steps", "fit loop", "bare loop", "loop/bare",
                               "s/epoch"], tablefmt="simple")
            + f"\nestimated training of these networks, {est.get('epochs')} epochs each (default "
              f"profile, no early stop, no validation): {est.get('seconds', 0):.0f} s")

    inference = result.get("inference")
    if inference:
        peak = inference.get("matmul_peak")
        head = "Inference (flows/s of predict_proba, medians)"
        if peak:
            head += (f"; matmul peak {_si(peak['flops_per_second'], 'FLOP/s')} "
                     f"({peak['size']}x{peak['size']} float32)")
        sizes = list(next(iter(inference["models"].values()))["batch_sizes"]) \
            if inference["models"] else []
        rows = []
        for n, f in inference["models"].items():
            row = [n, _si(f.get("flops_per_flow"), "FLOP")]
            for bs in sizes:
                e = f["batch_sizes"][bs]
                cell = f"{e['flows_per_second']:,.0f}"
                if "fraction_of_matmul_peak" in e:
                    cell += f" ({100 * e['fraction_of_matmul_peak']:.1f}%)"
                row.append(cell)
            rows.append(row)
        rows += [[n, "FAILED", err[:60]] + ["-"] * (len(sizes) - 1)
                 for n, err in inference["failed"].items()]
        parts.append(head + "; (x%) = share of the peak\n" + tabulate(
            rows, headers=["model", "per flow"] + [f"batch {b}" for b in sizes],
            tablefmt="simple"))

    e2e = result.get("e2e")
    if e2e:
        rows = [(n, j["status"], _fixed(j.get("fit_seconds"), 1), j.get("epochs_run") or "-",
                 _fixed(j.get("accuracy"), 4), _fixed(j.get("f1_macro"), 4))
                for n, j in sorted(e2e.get("jobs", {}).items())]
        parts.append(f"End to end: {e2e['command']}\n  exit status {e2e['exit_status']}, "
                     f"{e2e['seconds']:.0f} s\n" + tabulate(
                         rows, headers=["model", "status", "fit s", "epochs", "accuracy",
                                        "macro-F1"], tablefmt="simple",
                         disable_numparse=True))

    targets = result.get("targets") or []
    if targets:
        rows = [(t["target"], f"{t['value']:.3f}", f"{t['op']} {t['limit']:g}",
                 "met" if t["met"] else "NOT met") for t in targets]
        parts.append("Targets\n" + tabulate(rows, headers=["figure", "value", "target", "met?"],
                                            tablefmt="simple"))
    return "\n\n".join(parts)
