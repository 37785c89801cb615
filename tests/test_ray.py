"""The Ray executor (issue 9): same records as the local executor, failures recorded while the
other jobs go on, the dataset prepared once in the driver and shared through the object store.

One local Ray instance with 2 CPUs serves the whole module; the executor uses it as it finds it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.data import DataConfig
from idsbench.errors import ConfigError
from idsbench.models import register_model
from idsbench.models.registry import unregister_model
from idsbench.runner import build_jobs, get_executor, run_benchmark
from tests import ray_models

REPO = Path(__file__).resolve().parents[1]
#: fields that differ between any two runs of the same job
VOLATILE = {"timing", "environment", "started_at", "finished_at", "run_id"}


def _import_ray_or_skip():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI installs requirements-cpu.txt, which includes ray")
        pytest.skip("ray is not installed (pip install 'idsbench[ray]')")
    return ray


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """A 2-CPU local Ray instance whose workers log any data loading to a file."""
    ray = _import_ray_or_skip()
    data_log = tmp_path_factory.mktemp("ray-workers") / "data-loading.log"
    env = {ray_models.IN_WORKER: "1", ray_models.DATA_LOG: str(data_log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "IDSBENCH_CACHE_DIR": os.environ["IDSBENCH_CACHE_DIR"]}
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False,
             runtime_env={"env_vars": env,
                          "worker_process_setup_hook": "tests.ray_models.watch_data_loading"})

    # the throwaway models exist in the driver for this module only; workers get their specs
    register_model("test-ray-crash", description="ends its worker in fit")(ray_models.CrashInFit)
    register_model("test-ray-raise", description="raises in fit")(ray_models.RaiseInFit)
    yield {"ray": ray, "data_log": data_log}
    unregister_model("test-ray-crash")
    unregister_model("test-ray-raise")
    ray.shutdown()


def _stable(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in VOLATILE}
    if isinstance(out.get("history"), list):  # a network's epochs: losses stay, seconds go
        out["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in out["history"]]
    return out


def test_missing_ray_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    executor = get_executor("ray", address=None)
    with pytest.raises(ConfigError, match=r"--executor ray: .*pip install 'idsbench\[ray\]'"):
        executor.run(build_jobs(DataConfig("toniot").resolved(), ["stump"], [0]), None,
                     lambda record, preds: None)


def test_bad_executor_options_are_config_errors():
    from idsbench.executors.ray_executor import RayExecutor

    with pytest.raises(ConfigError, match=r"cpus_per_job=0\): expected a positive number"):
        RayExecutor(cpus_per_job=0)
    with pytest.raises(ConfigError, match=r"max_retries=-1"):
        RayExecutor(max_retries=-1)


def test_unreachable_address_fails_fast():
    from idsbench.executors.ray_executor import check_address

    # (ray.init itself would retry such an address for many minutes)
    with pytest.raises(ConfigError, match=r"--address '127.0.0.1:1': nothing answers at "
                                          r"127.0.0.1:1 .*ray start --head"):
        check_address("127.0.0.1:1")
    check_address("auto")  # left to Ray


def test_cuda_jobs_on_a_cluster_without_gpus_stop_before_submitting(ray_instance):
    from idsbench.executors.ray_executor import RayExecutor

    jobs = build_jobs(DataConfig("toniot").resolved(), ["cnn"], [0], training={"device": "cuda"})
    with pytest.raises(ConfigError, match=r"--device cuda: 1 job\(s\) each need 1 GPU, but the "
                                          r"Ray cluster has 0"):
        RayExecutor().run(jobs, None, lambda record, preds: None)


def test_same_records_as_local_and_data_prepared_once(real_data_dir, tmp_path, monkeypatch,
                                                      ray_instance):
    import idsbench.runner as runner

    import torch

    ray = ray_instance["ray"]
    kwargs = dict(dataset="toniot", models=["stump", "xgboost", "cnn"], seeds=[0],
                  max_train_rows=2000, epochs=1, data_dir=str(real_data_dir))
    # a network's float sums depend on torch's thread count; a Ray job has one thread (one CPU)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_benchmark(**kwargs, out=tmp_path / "local", run_id="run")
    finally:
        torch.set_num_threads(threads)

    # count, in the driver, how often the data is prepared and how often it is put into Ray
    calls = {"prepare": 0, "put": 0}
    prepare, put = runner.prepare, ray.put

    def counting_prepare(*args, **kw):
        calls["prepare"] += 1
        return prepare(*args, **kw)

    def counting_put(value, *args, **kw):
        calls["put"] += 1
        return put(value, *args, **kw)

    monkeypatch.setattr(runner, "prepare", counting_prepare)
    monkeypatch.setattr(ray, "put", counting_put)
    remote = run_benchmark(**kwargs, out=tmp_path / "ray", run_id="run", executor="ray")
    assert calls == {"prepare": 1, "put": 1}
    assert remote.set_index("model").loc["cnn", "environment"]["torch_threads"] == 1

    # workers ran the hook that watches them, and none of them loaded or prepared data
    lines = ray_instance["data_log"].read_text().split("\n")
    assert any(line.startswith("ready") for line in lines)
    assert not [line for line in lines if line.startswith(("prepare", "load_table"))]

    # the same records (timings aside) and the same predictions, on disk too
    assert list(remote["job_id"]) == list(local["job_id"])
    assert set(remote["status"]) == {"ok"}
    for job_id in local["job_id"]:
        on_disk = [json.loads((tmp_path / side / "run" / "records" / f"{job_id}.json").read_text())
                   for side in ("local", "ray")]
        assert _stable(on_disk[0]) == _stable(on_disk[1])
        assert on_disk[0]["metrics"]["confusion_matrix"]  # compared, not absent on both sides
        preds = [np.load(tmp_path / side / "run" / "predictions" / f"{job_id}.npz")
                 for side in ("local", "ray")]
        for key in ("y_true", "y_pred", "score", "twin"):
            assert np.array_equal(preds[0][key], preds[1][key])


def test_crashed_and_failing_jobs_are_recorded_and_resume_reruns_them(real_data_dir, tmp_path,
                                                                      ray_instance):
    args = ["run", "--models", "stump,test-ray-crash,test-ray-raise", "--dataset", "toniot",
            "--max-train-rows", "2000", "--data-dir", str(real_data_dir), "--out", str(tmp_path),
            "--executor", "ray"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # some jobs failed: exit status 1, not a crash
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = {r["model"]: r for r in map(json.loads,
                                          (run_dir / "records.jsonl").read_text().splitlines())}
    assert set(records) == {"stump", "test-ray-crash", "test-ray-raise"}
    assert records["stump"]["status"] == "ok" and records["stump"]["metrics"]["accuracy"] > 0.5

    # the worker died: the driver wrote the record, with the job's identity and Ray's error
    crash = records["test-ray-crash"]
    assert crash["status"] == "failed" and crash["error"].startswith("WorkerCrashedError")
    assert crash["job_id"] == "toniot-binary-random-test-ray-crash-seed0"
    assert (crash["dataset"], crash["task"], crash["seed"]) == ("toniot", "binary", 0)
    assert "metrics" not in crash
    assert not (run_dir / "predictions" / f"{crash['job_id']}.npz").exists()

    # the model raised: the worker's run_job recorded it exactly as the local executor would
    raised = records["test-ray-raise"]
    assert raised["status"] == "failed"
    assert raised["error"] == "RuntimeError: deliberate failure in fit"
    assert "n_train" in raised  # the worker got as far as describing the shared data

    # --resume on Ray runs only the jobs without a finished record
    stump_before = (run_dir / "records" / f"{records['stump']['job_id']}.json").read_text()
    again = run_benchmark("", resume=str(run_dir), executor="ray")
    assert again.attrs["skipped"] == 1
    assert sorted(again["model"]) == ["test-ray-crash", "test-ray-raise"]
    assert set(again["status"]) == {"failed"}
    assert (run_dir / "records" / f"{records['stump']['job_id']}.json").read_text() == stump_before
    assert len((run_dir / "records.jsonl").read_text().splitlines()) == 3
