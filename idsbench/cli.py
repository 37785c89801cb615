"""The ``idsbench`` command: a thin layer over the Python API.

Errors idsbench raises on purpose are printed as one readable message (exit status 2);
a run in which any job failed exits with status 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from idsbench.errors import MAX_SEED, ConfigError, IdsbenchError

log = logging.getLogger("idsbench")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose < 2:
        for noisy in ("matplotlib", "PIL", "urllib3", "numexpr"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


class _Group(click.Group):
    """Turns idsbench errors into one line on stderr instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except IdsbenchError as exc:
            click.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="idsbench")
def cli(verbose: int, quiet: bool) -> None:
    """Benchmark network intrusion-detection models on real public datasets."""
    _setup_logging(verbose, quiet)


# ---------------------------------------------------------------------------------- parsing


def parse_seeds(value: str) -> list[int]:
    seeds = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if ".." in part:
            lo, _, hi = part.partition("..")
            try:
                lo_i, hi_i = int(lo), int(hi)
            except ValueError:
                lo_i = hi_i = None
            if lo_i is not None:
                if hi_i < lo_i:
                    raise ConfigError(f"--seeds {value!r}: the range {part!r} is empty; write "
                                      f"the smaller seed first, e.g. {hi_i}..{lo_i}")
                seeds.extend(range(lo_i, hi_i + 1))
                continue
        try:
            seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"--seeds {value!r}: {part!r} is not an integer; expected a comma "
                              "list such as 0,1,2 or a range such as 0..4") from None
    if not seeds:
        raise ConfigError("--seeds is empty; expected e.g. 0 or 0,1,2")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise ConfigError(f"--seeds {value!r}: seeds must be non-negative integers, got {negative[0]}")
    too_big = [s for s in seeds if s > MAX_SEED]
    if too_big:
        raise ConfigError(f"--seeds {value!r}: seeds must be at most {MAX_SEED} (2**32 - 1, what "
                          f"NumPy and scikit-learn accept), got {too_big[0]}")
    return list(dict.fromkeys(seeds))  # a repeated seed would only repeat a job


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        low = text.lower()
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        return text


def parse_model_params(items: tuple[str, ...], models: list[str]) -> dict[str, dict]:
    """``MODEL:KEY=VALUE`` sets a parameter of one model; ``KEY=VALUE`` of every model taking it."""
    from idsbench.models.registry import accepted_params, get_model_spec

    out: dict[str, dict] = {m: {} for m in models}
    for item in items:
        target, sep, assignment = item.rpartition(":") if "=" in item.split(":")[-1] else ("", "", item)
        if "=" not in assignment:
            raise ConfigError(f"--model-param {item!r}: expected KEY=VALUE or MODEL:KEY=VALUE")
        key, _, raw = assignment.partition("=")
        key, value = key.strip(), _parse_value(raw.strip())
        if target:
            if target not in out:
                raise ConfigError(f"--model-param {item!r}: model {target!r} is not in --models "
                                  f"({', '.join(models)})")
            out[target][key] = value
            continue
        takers = [m for m in models if (accepted_params(get_model_spec(m)) or {key}) >= {key}]
        if not takers:
            raise ConfigError(f"--model-param {item!r}: no selected model takes parameter {key!r}")
        for m in takers:
            out[m][key] = value
    return {m: p for m, p in out.items() if p}


def parse_rebalance(method: str, items: tuple[str, ...]) -> dict:
    spec = {"method": method}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--rebalance-param {item!r}: expected KEY=VALUE")
        k, _, v = item.partition("=")
        spec[k.strip()] = _parse_value(v.strip())
    return spec


# ---------------------------------------------------------------------------------- run


@cli.command()
@click.option("--models", default="all", show_default=True,
              help="'all', or a comma list of model names or package.module:Factory.")
@click.option("--dataset", required=False, help="Dataset name (see 'idsbench datasets list').")
@click.option("--task", default="binary", show_default=True, help="binary or multiclass.")
@click.option("--split", default=None, help="official or random (default: the dataset's own).")
@click.option("--seeds", default="0", show_default=True, help="Comma list of seeds (or 0..4).")
@click.option("--profile", default="default", show_default=True, help="default, paper or quick.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Override the profile's epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Override the profile's batch size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Override the profile's learning rate.")
@click.option("--max-train-rows", type=click.IntRange(min=1), default=None,
              help="Stratified subsample of the training rows (quick runs).")
@click.option("--device", default=None, help="auto, cpu or cuda.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the dataset files are (else $IDSBENCH_DATA_DIR, else the user data dir).")
@click.option("--out", default="results", show_default=True, type=click.Path(),
              help="Runs are written to OUT/<run-id>/.")
@click.option("--model-param", "model_param", multiple=True,
              help="MODEL:KEY=VALUE or KEY=VALUE, e.g. lstm-resnet-cbam:attention=false.")
@click.option("--rebalance", default="none", show_default=True,
              help="Resample training rows: none, ros, rus, smote, smotenc, adasyn, smotetomek.")
@click.option("--rebalance-param", multiple=True, help="KEY=VALUE for the resampler.")
@click.option("--class-weight", type=click.Choice(["none", "balanced"]), default="none",
              show_default=True, help="Weight the loss (or rows) by inverse class frequency.")
@click.option("--identity-columns", type=click.Choice(["drop", "keep"]), default="drop",
              show_default=True, help="Keep addresses and ports as features (ToN_IoT).")
@click.option("--dedup", type=click.Choice(["none", "train"]), default="none", show_default=True,
              help="Drop duplicate feature vectors from the training rows.")
@click.option("--bad-values", type=click.Choice(["impute", "drop"]), default="impute",
              show_default=True,
              help="Text, a blank, NaN or infinity in a numeric column: set it missing and "
                   "impute the training median, or drop the row.")
@click.option("--split-seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the train/validation/test split (fixed across model seeds).")
@click.option("--allow-checksum-mismatch", is_flag=True,
              help="Use files whose SHA-256 differs from the manifest (recorded).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --executor ray).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None,
              help="Run only the jobs of RUN_DIR that have no finished record.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
def run(models, dataset, task, split, seeds, profile, epochs, batch_size, lr, max_train_rows,
        device, data_dir, out, model_param, rebalance, rebalance_param, class_weight,
        identity_columns, dedup, bad_values, split_seed, allow_checksum_mismatch, executor,
        address, resume, progress) -> None:
    """Run a benchmark: every model x seed on one dataset, task and split."""
    from idsbench.runner import resolve_models, run_benchmark

    if progress is None:
        progress = sys.stderr.isatty()
    options = {"address": address} if executor == "ray" else {}
    if resume:
        # the run's config.json fixes every setting: an option given beside --resume would be
        # silently ignored, so it is refused
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ctx.params
                 if name not in ("resume", "executor", "address", "progress")
                 and ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise ConfigError(f"--resume {resume}: {', '.join(given)} cannot change a run; its "
                              "config.json fixes every setting (only --executor, --address and "
                              "--progress apply). Start a new run to change them")
        frame = run_benchmark(dataset or "", resume=resume, executor=executor,
                              executor_options=options, progress=progress)
    else:
        if not dataset:
            raise ConfigError("--dataset is required (see 'idsbench datasets list')")
        names = resolve_models(models)
        frame = run_benchmark(
            dataset, models=names, task=task, split=split, seeds=parse_seeds(seeds),
            profile=profile, out=out, data_dir=data_dir, max_train_rows=max_train_rows,
            epochs=epochs, batch_size=batch_size, lr=lr, device=device,
            model_params=parse_model_params(model_param, names),
            rebalance=parse_rebalance(rebalance, rebalance_param),
            class_weight=None if class_weight == "none" else class_weight,
            identity_columns=identity_columns, dedup=dedup, bad_values=bad_values,
            split_seed=split_seed, allow_checksum_mismatch=allow_checksum_mismatch,
            executor=executor, executor_options=options, progress=progress)
    _summarise(frame)


def _summarise(frame) -> None:
    run_dir = frame.attrs.get("run_dir")
    if len(frame):
        for _, r in frame.iterrows():
            if r["status"] == "ok":
                m = r["metrics"]
                click.echo(f"{r['model']:<24} seed {r['seed']}: accuracy {m['accuracy']:.4f}  "
                           f"macro-F1 {m['f1_macro']:.4f}  fit {r['timing']['fit_seconds']:.1f}s")
            else:
                click.secho(f"{r['model']:<24} seed {r['seed']}: FAILED {r['error']}", fg="red",
                            err=True)
    if run_dir:
        click.echo(f"records: {run_dir}/records.jsonl\nleaderboard: {run_dir}/leaderboard.md")
    n_failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
    if n_failed:
        click.secho(f"{n_failed} job(s) failed; see the leaderboard's 'Failed' section", fg="red",
                    err=True)
        sys.exit(1)


# ---------------------------------------------------------------------------------- leaderboard


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the markdown here instead of printing it.")
@click.option("--title", default="idsbench leaderboard", show_default=True)
@click.option("--plots/--no-plots", default=False, show_default=True,
              help="Draw PNG figures into plots/ beside --output and link them.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Show published results beside the reproduced ones.")
def leaderboard(paths, output, title, plots, baselines) -> None:
    """Render one leaderboard from run directories or records files (merged)."""
    from idsbench.records import load_records
    from idsbench.report.leaderboard import render_leaderboard, run_plot_links, write_report

    records = load_records(paths)
    if not records:
        raise ConfigError(f"no records found in {', '.join(paths)}")
    if plots and not output:
        raise ConfigError("--plots needs -o FILE: the figures are written to plots/ beside it")
    if output:
        write_report(records, Path(output), title, plots=plots, baselines=baselines)
        click.echo(f"wrote {output}")
    else:
        click.echo(render_leaderboard(records, title=title, baselines=baselines,
                                      **run_plot_links(paths, records)))


# ---------------------------------------------------------------------------------- models


@cli.group()
def models() -> None:
    """The model registry."""


@models.command("list")
def models_list() -> None:
    """Each model's name, where it comes from and what it is."""
    from tabulate import tabulate

    from idsbench.models.registry import get_model_spec, list_models, plugin_errors

    rows = [(n, get_model_spec(n).source, get_model_spec(n).kind, get_model_spec(n).description)
            for n in list_models()]
    click.echo(tabulate(rows, headers=["name", "source", "kind", "description"], tablefmt="simple"))
    for name, err in plugin_errors().items():
        click.secho(f"plug-in {name} failed to load: {err}", fg="yellow", err=True)


# ---------------------------------------------------------------------------------- datasets


@cli.group()
def datasets() -> None:
    """Dataset manifests, files and checks."""


@datasets.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def datasets_list(data_dir) -> None:
    """Known datasets and where idsbench looks for them."""
    from tabulate import tabulate

    from idsbench.data.io import candidate_files, search_dirs
    from idsbench.data.manifest import get_manifest, list_datasets

    root, origin = search_dirs(data_dir)
    rows = []
    for name in list_datasets():
        m = get_manifest(name)
        found = candidate_files(m, root)
        rows.append((name, m.title, ", ".join(m.tasks), ", ".join(m.splits),
                     f"{len(found)} of {len(m.files)} file(s)"))
    click.echo(f"data directory: {root} (from {origin})")
    click.echo(tabulate(rows, headers=["name", "title", "tasks", "splits", "found"], tablefmt="simple"))


@datasets.command("info")
@click.argument("name")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def datasets_info(name, data_dir) -> None:
    """Files, checksums, schema and split protocol of one dataset."""
    from idsbench.data.io import candidate_files, search_dirs
    from idsbench.data.manifest import get_manifest

    m = get_manifest(name)
    root, origin = search_dirs(data_dir)
    click.echo(f"{m.name}: {m.title}\nhomepage: {m.homepage}")
    click.echo(f"looks in: {root / m.subdir} and {root} (from {origin})")
    for role, spec in m.files.items():
        click.echo(f"  {role}: {spec.official_name}  rows {spec.rows:,}  sha256 {spec.sha256}")
    click.echo(f"found: {', '.join(str(p) for p in candidate_files(m, root)) or 'nothing'}")
    click.echo(f"targets: {m.targets}\nsplits: {list(m.splits)} (default {m.default_split})")
    click.echo(f"never features: {', '.join(m.never_features)}")
    click.echo(f"identity columns (dropped by default): {', '.join(m.identity) or 'none'}")
    click.echo(f"free text (never features): {', '.join(m.text) or 'none'}")
    click.echo(f"categorical: {', '.join(m.categorical)}\nboolean: {', '.join(m.boolean) or 'none'}")
    click.echo(f"numeric: {', '.join(m.numeric)}")


@datasets.command("verify")
@click.argument("name", required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def datasets_verify(name, data_dir) -> None:
    """Identify each file by content and check its SHA-256, rows and class counts."""
    from idsbench.data import io as dio
    from idsbench.data.manifest import get_manifest, list_datasets
    from idsbench.data.prepare import locate

    problems = 0
    for ds in [name] if name else list_datasets():
        m = get_manifest(ds)
        # verify reads every byte again: the hash remembered per (path, size, mtime) is skipped
        for path in dio.candidate_files(m, dio.search_dirs(data_dir)[0]):
            dio.forget_sha256(path)
        root, origin, found = locate(m, data_dir)
        click.echo(f"{m.name} (in {root}, from {origin}):")
        roles = {f.role for f, _, _ in found}
        for f, _, _ in found:
            ok = f.status == "verified"
            problems += not ok
            click.secho(f"  {'OK ' if ok else 'BAD'} {f.path.name}: {f.role or '?'} partition, "
                        f"{f.rows:,} rows, sha256 {f.sha256} ({f.status})",
                        fg="green" if ok else "red")
        for role, spec in m.files.items():
            if role not in roles:
                click.secho(f"  --- {role} partition {spec.official_name} not found "
                            f"({spec.rows:,} rows, sha256 {spec.sha256})", fg="yellow")
    if problems:
        sys.exit(1)


def _register_command_modules() -> None:
    import importlib

    from idsbench.commands import COMMAND_MODULES

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"idsbench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"idsbench.commands.{name}":
                continue  # not written yet
            raise
        module.register(cli, {"datasets": datasets, "models": models})


_register_command_modules()


def main() -> None:
    cli(prog_name="idsbench")


if __name__ == "__main__":
    main()
