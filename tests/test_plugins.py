"""Third-party models: entry-point plug-ins, ``--models module:Factory``, ``models check``, docs.

Plug-ins are "installed" the way pip leaves them: a ``<name>-<version>.dist-info`` folder with
``METADATA`` and ``entry_points.txt`` on the path, written from the example package's own
``pyproject.toml``.  That needs no network, no build back-end and leaves the shared virtual
environment untouched; ``test_example_plugin_wheel_declares_the_same_entry_point`` checks the
real build agrees.  One test starts a fresh ``idsbench`` process, as a user would; the others
re-run the registry's start-up discovery in this process (``installed``), which is much faster,
and restore the registry afterwards so that no other test sees these plug-ins.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.errors import ConfigError
from idsbench.models import create_model, get_model_spec, list_models
from idsbench.models import registry
from idsbench.records import load_records

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "idsbench-example-plugin"
README = REPO / "README.md"


def doc_text() -> str:
    """The README's "Add your model" section (up to the next second-level heading)."""
    text = README.read_text()
    start = text.index("\n## Add your model\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def install_dist(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """Write the metadata pip would install for a distribution with these entry points."""
    info = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[idsbench.models]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def example_project() -> dict:
    return tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plug-in, plus three plug-ins that go wrong in different ways and one that
    registers its model from a module."""
    site = tmp_path_factory.mktemp("site-packages")
    project = example_project()
    install_dist(site, project["name"], project["version"],
                 project["entry-points"]["idsbench.models"])

    install_dist(site, "broken-plugin", "0.0.1", {"broken-model": "broken_plugin_mod:Model"})
    (site / "broken_plugin_mod.py").write_text(
        "raise ImportError('needs libfoo, which is not installed')\n")

    install_dist(site, "clash-plugin", "1.0", {"xgboost": "clash_plugin_mod:factory"})
    (site / "clash_plugin_mod.py").write_text("def factory(random_state=0):\n    return None\n")

    install_dist(site, "half-plugin", "1.0", {"half-a": "half_plugin_mod"})
    (site / "half_plugin_mod.py").write_text(textwrap.dedent("""
        from sklearn.naive_bayes import GaussianNB
        from idsbench.models import register_model, sklearn_model
        register_model("half-a")(sklearn_model(lambda: GaussianNB()))
        raise RuntimeError("second model failed")
    """))

    install_dist(site, "decorated-plugin", "2.3", {"deco-nb": "decorated_plugin_mod"})
    (site / "decorated_plugin_mod.py").write_text(textwrap.dedent('''
        from sklearn.naive_bayes import GaussianNB
        from idsbench.models import register_model, sklearn_model

        @register_model("deco-nb")
        @sklearn_model
        def naive_bayes():
            """Gaussian naive Bayes from a decorated plug-in"""
            return GaussianNB()
    '''))
    return site


def idsbench_cli(args: list[str], site: Path | None = None, cwd: Path | None = None,
                 timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``idsbench ARGS`` in a fresh process with ``site`` (and the example's source) on the
    path, as if the plug-ins were installed."""
    paths = [str(site), str(EXAMPLE / "src")] if site else []
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1",
                "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-c", "from idsbench.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks on a shared, busy CPU: one thread is several times faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PLUGIN_MODULES = ("idsbench_example_plugin", "broken_plugin_mod", "clash_plugin_mod",
                  "half_plugin_mod", "decorated_plugin_mod")


@pytest.fixture
def installed(monkeypatch):
    """``installed(*paths)``: put plug-in folders on the path and let the registry discover
    entry points again, as at start-up.  Everything is undone after the test."""
    built_in = {n: s for n, s in registry._REGISTRY.items() if s.source == "built-in"}
    monkeypatch.setattr(registry, "_REGISTRY", built_in)
    monkeypatch.setattr(registry, "_PLUGIN_ERRORS", {})
    monkeypatch.setattr(registry, "_IMPORTED", {})
    monkeypatch.setattr(registry, "_plugins_loaded", False)

    def install(*paths: Path) -> None:
        for path in paths:
            monkeypatch.syspath_prepend(str(path))

    yield install
    for name in PLUGIN_MODULES:
        sys.modules.pop(name, None)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """``models list`` rows by name: [source, kind, description]."""
    rows = {}
    for line in stdout.splitlines()[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


# --------------------------------------------------------------------------------------------
# entry points


def test_models_list_shows_plugins_and_reports_broken_ones(site):
    result = idsbench_cli(["models", "list"], site)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)

    project = example_project()
    source = f"{project['name']} {project['version']}"
    assert rows["example-mlp"] == [
        source, "torch", "Example plug-in: two-layer perceptron (Linear, ReLU, dropout, Linear)"]
    assert rows["deco-nb"] == ["decorated-plugin 2.3", "other",
                               "Gaussian naive Bayes from a decorated plug-in"]
    # every built-in model is still there, and the clashing plug-in did not replace xgboost
    for name in list_models():
        assert rows[name][0] == "built-in", name
    assert "broken-model" not in rows
    assert "half-a" not in rows  # a plug-in that fails half-way contributes nothing

    err = result.stderr
    assert ("plug-in broken-model (broken-plugin) failed to load: ImportError: needs libfoo, "
            "which is not installed") in err
    assert "plug-in xgboost (clash-plugin) failed to load: ConfigError: model name 'xgboost' " \
           "registered twice: first at " in err
    assert "plug-in half-a (half-plugin) failed to load: RuntimeError: second model failed" in err


def test_asking_for_a_broken_plugins_model_mentions_why_it_is_missing(site, installed):
    installed(site)
    result = CliRunner().invoke(cli, ["run", "--models", "broken-model", "--dataset", "unsw"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown model 'broken-model'; known models: ")
    assert "example-mlp" in result.stderr
    assert "Note: plug-ins that failed to load: " in result.stderr
    assert "broken-model (broken-plugin): ImportError: needs libfoo" in result.stderr


def test_models_check_passes_for_the_example_plugin(site, installed):
    installed(site, EXAMPLE / "src")
    result = CliRunner().invoke(cli, ["models", "check", "example-mlp", "--rows", "96"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("model 'example-mlp' (idsbench-example-plugin 0.1.0, kind torch)")
    statuses = {line.split()[1]: line.split()[0] for line in lines[1:-1]}
    assert statuses["binary"] == statuses["evaluator-multi"] == "PASS"
    assert "FAIL" not in statuses.values()
    assert re.fullmatch(r"(\d+) of \1 checks passed", lines[-1])


def test_example_plugin_runs_beside_built_in_models_on_real_data(site, installed, real_data_dir,
                                                               tmp_path, monkeypatch):
    installed(site, EXAMPLE / "src")
    monkeypatch.setenv("IDSBENCH_DATA_DIR", str(real_data_dir))
    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, [
        "run", "--models", "example-mlp,stump", "--dataset", "unsw", "--split", "random",
        "--max-train-rows", "2000", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    records = {r["model"]: r for r in load_records([out])}
    assert set(records) == {"example-mlp", "stump"}

    mlp = records["example-mlp"]
    assert mlp["status"] == "ok", mlp.get("error")
    assert mlp["model_source"] == "idsbench-example-plugin 0.1.0"
    assert mlp["training"]["epochs"] == 1 and mlp["timing"]["epochs_run"] == 1
    assert mlp["params"]["hidden"] == 64  # the module's defaults are recorded
    # same rows as the built-in model, and better than chance after one epoch
    assert mlp["n_test"] == records["stump"]["n_test"] and mlp["n_train"] <= 2000
    assert mlp["metrics"]["roc_auc"] > 0.6


def _can_build_wheels() -> bool:
    """--no-build-isolation builds with this environment's setuptools: 70.1 or newer builds
    wheels itself, older ones need the `wheel` package (a fresh Python 3.11 venv has neither)."""
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return False
    major_minor = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    return major_minor >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.mark.skipif(not _can_build_wheels(),
                    reason="no offline wheel build here: needs setuptools>=70.1, or an older "
                           "setuptools with the wheel package")
def test_example_plugin_wheel_declares_the_same_entry_point(tmp_path, installed):
    # build from a copy: the build writes build/ and *.egg-info next to the sources
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("idsbench_example_plugin-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("idsbench_example_plugin-0.1.0.dist-info/entry_points.txt").decode()
        zf.extractall(tmp_path / "installed")
    assert "[idsbench.models]\nexample-mlp = idsbench_example_plugin:mlp" in text

    # the built wheel alone, unpacked on the path, is found
    installed(tmp_path / "installed")
    assert get_model_spec("example-mlp").source == "idsbench-example-plugin 0.1.0"
    assert registry.plugin_errors() == {}


# --------------------------------------------------------------------------------------------
# --models module:Factory


DETECTOR = '''
from sklearn.ensemble import ExtraTreesClassifier
from idsbench.models import sklearn_model


@sklearn_model
def forest(n_estimators: int = 20):
    """Extra trees from a one-off module"""
    return ExtraTreesClassifier(n_estimators=n_estimators, n_jobs=1)


NOT_A_FACTORY = 3
'''


@pytest.fixture
def clean_imports(monkeypatch):
    """Undo what importing a user's module leaves behind: sys.path, sys.modules, the cache."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_IMPORTED", {})
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("t_detector"):
            del sys.modules[name]


def test_module_factory_runs_from_the_current_directory(tmp_path, monkeypatch, clean_imports,
                                                        real_data_dir):
    (tmp_path / "t_detector_run.py").write_text(DETECTOR)
    monkeypatch.chdir(tmp_path)  # not on sys.path: the console script does not add it either
    monkeypatch.setenv("IDSBENCH_DATA_DIR", str(real_data_dir))
    result = CliRunner().invoke(cli, [
        "run", "--models", "t_detector_run:forest,stump", "--dataset", "unsw", "--split",
        "random", "--max-train-rows", "2000", "--out", str(tmp_path / "runs"), "--no-progress",
        "--model-param", "t_detector_run:forest:n_estimators=10"])
    assert result.exit_code == 0, result.output
    records = {r["model"]: r for r in load_records([tmp_path / "runs"])}
    forest = records["t_detector_run:forest"]
    assert forest["status"] == "ok", forest.get("error")
    assert forest["model_source"] == "t_detector_run:forest"
    assert forest["params"]["n_estimators"] == 10
    assert forest["metrics"]["accuracy"] > records["stump"]["metrics"]["accuracy"] - 0.1


def test_module_factory_from_a_file_path(tmp_path, clean_imports):
    path = tmp_path / "t_detector_file.py"
    path.write_text(DETECTOR)
    spec = get_model_spec(f"{path}:forest")
    assert spec.description == "Extra trees from a one-off module"
    assert spec.source == f"{path}:forest" and spec.kind == "other"
    assert spec.defined_at == f"{path}:6"
    assert create_model(f"{path}:forest", n_estimators=3).estimator.n_estimators == 3


@pytest.mark.parametrize("target, message", [
    ("t_detector_none:forest", "cannot import module 't_detector_none'"),
    ("t_detector_err:forest", "importing it raised ZeroDivisionError: division by zero"),
    ("t_detector_ok:forrest", "has no attribute 'forrest'; did you mean 'forest'?"),
    ("t_detector_ok:NOT_A_FACTORY", "'NOT_A_FACTORY' is a int, expected a model factory"),
    ("t_detector_ok:", "expected a registered name, package.module:Factory or path/to/file.py"),
    ("missing_dir/t_detector.py:forest", "file 'missing_dir/t_detector.py' not found"),
])
def test_module_factory_errors_say_what_is_wrong(target, message, tmp_path, monkeypatch,
                                                 clean_imports):
    (tmp_path / "t_detector_ok.py").write_text(DETECTOR)
    (tmp_path / "t_detector_err.py").write_text("1 / 0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_model_spec(target)

    # the command line prints it as one line and exits with status 2
    result = CliRunner().invoke(cli, ["run", "--models", target, "--dataset", "unsw"])
    assert result.exit_code == 2
    assert message in result.output


def test_unknown_model_on_the_command_line_suggests_the_closest():
    result = CliRunner().invoke(cli, ["run", "--models", "xgbost,stump", "--dataset", "unsw"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown model 'xgbost'; known models: cnn, ")
    assert result.output.rstrip().endswith("Did you mean 'xgboost'?")


def test_models_check_fails_with_status_1_on_a_broken_model(tmp_path, monkeypatch,
                                                            clean_imports):
    (tmp_path / "t_detector_bad.py").write_text(textwrap.dedent("""
        import numpy as np

        class Model:
            def __init__(self, random_state=0):
                self.random_state = random_state
            def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
                return self
            def predict_proba(self, X):
                return np.full((len(X), 2), 0.7)
            def predict(self, X):
                return np.zeros(len(X), dtype=int)
    """))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["models", "check", "t_detector_bad:Model", "--rows", "32"])
    assert result.exit_code == 1
    assert ("FAIL  binary          t_detector_bad:Model: predict_proba rows must be non-negative "
            "and sum to 1 (row sums range 1.4000..1.4000)") in result.output
    assert result.output.rstrip().splitlines()[-1] == (
        "3 of 7 checks passed; failed: binary, multiclass, evaluator-bin, evaluator-multi")


def test_models_check_rejects_a_malformed_param():
    result = CliRunner().invoke(cli, ["models", "check", "stump", "--param", "depth"])
    assert result.exit_code == 2
    assert "error: --param 'depth': expected KEY=VALUE" in result.output


# --------------------------------------------------------------------------------------------
# the documentation


def doc_blocks() -> list[str]:
    """The doc's python blocks, except those marked ``<!-- not run: ... -->``."""
    text = doc_text()
    found = re.finditer(r"(<!-- not run[^>]*-->\s*)?```python\n(.*?)```", text, re.S)
    return [m.group(2) for m in found if not m.group(1)]


def test_add_your_model_doc_code_runs(tmp_path, monkeypatch, installed, capsys):
    # `installed` gives a registry that is restored afterwards: the doc registers models
    blocks = doc_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    code = compile("\n\n".join(blocks), "README.md#add-your-model", "exec")
    exec(code, {"__name__": "add_your_model_doc"})  # noqa: S102 - our own documentation
    assert "checks passed" in capsys.readouterr().out
    assert get_model_spec("tiny-mlp").source == "module add_your_model_doc"


def test_add_your_model_doc_names_every_way_in():
    text = doc_text()
    for needle in ("@register_model(", '[project.entry-points."idsbench.models"]',
                   "--models my_detector:forest", "sklearn_model", "torch_model",
                   "idsbench models check", "examples/idsbench-example-plugin"):
        assert needle in text, needle
    # the entry point shown is the example's real one
    example = example_project()["entry-points"]["idsbench.models"]
    assert f'example-mlp = "{example["example-mlp"]}"' in text
