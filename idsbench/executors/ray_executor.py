"""Run jobs as Ray tasks: on a private Ray instance on this machine, or on a cluster.

The driver prepares the dataset once and puts it into Ray's object store once; every task gets
the same object reference, so the workers of a node share one read-only copy and no worker reads
or preprocesses the data again.  Each (dataset, task, model, seed) job is one task that declares
what it needs (CPUs, and a GPU when it trains on CUDA).  Records come back to the driver, which
hands each to ``on_result`` (the run directory's atomic writer) as soon as its task finishes.

A model that raises is recorded as failed by :func:`idsbench.runner.run_job` in the worker,
exactly as the local executor records it.  A task that Ray itself loses (its worker crashed or
was killed by the OOM killer, its node died) has no record to return: the driver writes a
failed record for it, with the job's identity fields and Ray's error, and the other jobs go on.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable

from idsbench.data.prepare import PreparedData
from idsbench.errors import ConfigError
from idsbench.records import environment, now_iso
from idsbench.runner import JobSpec, new_record, run_job

log = logging.getLogger(__name__)

INSTALL_HINT = ("install it with: pip install 'idsbench[ray]' (or pip install 'ray>=2.9,<3'), "
                "or use --executor local")


def import_ray():
    """Ray, or a ConfigError that says how to get it (Ray is an optional dependency)."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--executor ray: the Python package 'ray' cannot be imported ({exc}); "
                          + INSTALL_HINT) from exc
    return ray


class RayExecutor:
    """Runs each job as a Ray task and records results in the driver as tasks finish.

    Parameters
    ----------
    address : str, optional
        A running Ray cluster to join: ``"auto"`` on one of its nodes, ``"HOST:6379"``, or a Ray
        Client address ``"ray://HOST:10001"``.  Without it a private Ray instance starts on this
        machine (no dashboard) and is shut down after the run.
    num_cpus : int, optional
        CPUs of the private instance (default: all of this machine's); ignored with ``address``.
    cpus_per_job : float, default 1
        CPUs each job reserves; a job's torch (and OpenMP) thread count is set to this number
        (at least 1), so a network's float sums do not depend on the worker's history.
    gpus_per_job : float, default 1
        GPUs reserved by a job that trains on CUDA; a fraction such as 0.25 packs four jobs on
        one GPU.
    max_retries : int, default 0
        How often Ray re-runs a job whose worker died.  A crash inside a model is usually
        deterministic, so by default such a job is recorded as failed at once; raise this on
        clusters whose nodes can be preempted.
    runtime_env : dict, optional
        Ray's runtime environment for the workers, e.g. ``{"working_dir": "."}`` to ship a
        checkout to nodes on which idsbench is not installed.

    Notes
    -----
    A job uses a GPU when its device is ``cuda`` (``--device cuda``), or when it is ``auto``
    (the default), the cluster has GPUs and the model takes a ``device`` (networks, XGBoost).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_job: float = 1, gpus_per_job: float = 1, max_retries: int = 0,
                 runtime_env: dict | None = None):
        if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
            raise ConfigError(f"RayExecutor(num_cpus={num_cpus!r}): expected a positive integer")
        for label, value in (("cpus_per_job", cpus_per_job), ("gpus_per_job", gpus_per_job)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"RayExecutor({label}={value!r}): expected a positive number")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"RayExecutor(max_retries={max_retries!r}): expected an integer >= 0")
        self.address = address or None
        self.num_cpus = num_cpus
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.max_retries = max_retries
        self.runtime_env = runtime_env

    # ------------------------------------------------------------------------------------ run

    def run(self, jobs: list[JobSpec], data: PreparedData,
            on_result: Callable[[dict, dict | None], None], progress: bool = False) -> None:
        """Run ``jobs`` on Ray; ``on_result(record, predictions)`` is called here, per job."""
        if not jobs:
            return
        ray = import_ray()
        started = self._connect(ray)
        try:
            self._run(ray, jobs, data, on_result, progress)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, jobs: list[JobSpec], data: PreparedData,
             on_result: Callable[[dict, dict | None], None], progress: bool) -> None:
        from tqdm.auto import tqdm

        cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        self._check_gpus(jobs, cluster_gpus)

        # one copy of the arrays in the object store; each task gets a reference to it, which
        # Ray resolves to a zero-copy, read-only view on the worker's node
        data_ref = ray.put(data)
        shipped = _shipped_models(jobs)
        task = ray.remote(_run_job_task)
        threads = max(1, int(self.cpus_per_job))
        pending: dict[Any, JobSpec] = {}
        for job in jobs:
            gpus = self.gpus_per_job if self._needs_gpu(job, cluster_gpus) else 0
            ref = task.options(num_cpus=self.cpus_per_job, num_gpus=gpus,
                               max_retries=self.max_retries, name=job.job_id).remote(
                job.to_dict(), data_ref, shipped.get(job.model), threads)
            pending[ref] = job
        log.info("submitted %d job(s) to Ray (%s)", len(jobs),
                 ", ".join(f"{k} {v:g}" for k, v in sorted(ray.cluster_resources().items())
                           if k in ("CPU", "GPU")))

        bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not progress, leave=False)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        record, predictions = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        record, predictions = lost_job_record(job, exc), None
                    on_result(record, predictions)
                    bar.set_postfix_str(f"{job.model} seed {job.seed}")
                    bar.update(1)
        except BaseException:
            # interrupted, or a record could not be written: on a shared cluster the remaining
            # tasks must not go on using it
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()

    # ------------------------------------------------------------------------------- helpers

    def _connect(self, ray) -> bool:
        """Join the cluster or start a private instance; True when this call started Ray."""
        if ray.is_initialized():
            # a caller (a notebook, the tests) set Ray up; use it as it is and leave it running
            if self.address:
                log.warning("Ray is already initialised in this process; --address %s is ignored",
                            self.address)
            return False
        if self.address:
            check_address(self.address)
            try:
                ray.init(address=self.address, logging_level=logging.WARNING,
                         log_to_driver=False, runtime_env=self.runtime_env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                # Ray's own message is generic; the reason (a missing auth token, say) is the
                # last line of its cause, which may hold a whole traceback
                lines = str(exc.__cause__ or exc).strip().splitlines() or [type(exc).__name__]
                why = f"{exc}: {lines[-1][:400]}" if exc.__cause__ else lines[-1][:400]
                raise ConfigError(
                    f"--address {self.address!r}: cannot join a Ray cluster there ({why}); start "
                    "one with 'ray start --head' and pass its address (HOST:6379, 'auto' on a "
                    "cluster node, or ray://HOST:10001), or leave --address out to run on this "
                    "machine") from exc
            return True
        ray.init(num_cpus=self.num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, runtime_env=self.runtime_env)
        return True

    def _needs_gpu(self, job: JobSpec, cluster_gpus: float) -> bool:
        device = str(job.training.get("device") or "auto")
        if device.startswith("cuda"):
            return True
        if device != "auto" or cluster_gpus <= 0:
            return False
        return _takes_device(job.model)

    def _check_gpus(self, jobs: list[JobSpec], cluster_gpus: float) -> None:
        # a task asking for a GPU that no node has waits forever: say so before submitting
        wanting = [j for j in jobs if self._needs_gpu(j, cluster_gpus)]
        if not wanting or cluster_gpus >= self.gpus_per_job:
            return
        msg = (f"--device cuda: {len(wanting)} job(s) each need {self.gpus_per_job:g} GPU, but "
               f"the Ray cluster has {cluster_gpus:g}")
        if not self.address:
            raise ConfigError(msg + "; on this machine use --device cpu or auto")
        log.warning("%s; the jobs wait until a node with a GPU joins", msg)


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``HOST:PORT`` (or ``ray://HOST:PORT``) address.

    ``ray.init`` keeps retrying an unreachable address for many minutes before it gives up.
    Other forms (``auto``, ``local``) are left to Ray.
    """
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address {address!r}: nothing answers at {host or '127.0.0.1'}:{port} "
            f"({exc.strerror or exc}); expected a running Ray cluster's address (see "
            "'ray start --head', or 'ray status' on a cluster node), or leave --address out to "
            "run on this machine") from exc


def _takes_device(model: str) -> bool:
    from idsbench.models.registry import accepted_params, get_model_spec

    spec = get_model_spec(model)
    return spec.kind == "torch" or "device" in (accepted_params(spec) or set())


def _shipped_models(jobs: list[JobSpec]) -> dict[str, bytes]:
    """Pickled specs of models that a fresh worker may not know, by name.

    Built-in models and plug-ins register themselves in every process.  A model registered by
    user code (a script, a notebook, a test module) exists only in this process: its spec goes
    along with its jobs, pickled by value where its class cannot be imported (``__main__``) and
    by reference otherwise, in which case the worker imports its module.
    """
    from ray import cloudpickle

    from idsbench.models.registry import get_model_spec

    out = {}
    for name in {j.model for j in jobs}:
        if ":" in name:
            continue  # package.module:Factory is imported by name in the worker
        spec = get_model_spec(name)
        if spec.source != "built-in":
            out[name] = cloudpickle.dumps(spec)
    return out


def _ensure_model(name: str, blob: bytes | None) -> None:
    """Make ``name`` known to this worker's registry (built-ins and plug-ins load first)."""
    from ray import cloudpickle

    from idsbench.models.registry import list_models, register_model

    if blob is None or name in list_models():
        return
    # unpickling imports the factory's module; its own decorator may register the model
    spec = cloudpickle.loads(blob)
    if name not in list_models():
        register_model(name, description=spec.description, kind=spec.kind, source=spec.source,
                       **spec.defaults)(spec.factory)


def _run_job_task(job: dict, data: PreparedData, model_blob: bytes | None,
                  threads: int) -> tuple[dict, dict | None]:
    """The Ray task: one job on the shared data (``data`` arrives resolved from its reference)."""
    import torch

    # Ray sets OMP_NUM_THREADS for the task, but torch reads it once, when first imported; a
    # worker that imported torch earlier (a setup hook, a previous task) would keep its count
    torch.set_num_threads(threads)
    spec = JobSpec.from_dict(job)
    _ensure_model(spec.model, model_blob)
    return run_job(spec, data)


def lost_job_record(job: JobSpec, exc: BaseException) -> dict:
    """The failed record of a job whose task Ray lost or that failed outside ``run_job``.

    The driver cannot know when the task started, so both timestamps are the moment the loss
    was noticed.
    """
    cause = getattr(exc, "cause", None)  # RayTaskError: what the task itself raised
    if isinstance(cause, BaseException):
        error = f"{type(cause).__name__}: {cause}"
    else:
        lines = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"
    record = new_record(job)
    record.update(status="failed", error=error, traceback=str(exc)[-4000:],
                  finished_at=now_iso(), environment=environment())
    log.error("%s failed on Ray: %s", job.job_id, error)
    return record
