"""``idsbench sweep``: a learning-rate x batch-size grid, tabulated like the paper's Table I."""

from __future__ import annotations

import sys

import click

from idsbench.errors import ConfigError


def register(cli: click.Group, groups: dict[str, click.Group]) -> None:
    cli.add_command(sweep)


@click.command()
@click.option("--models", default="cnn", show_default=True,
              help="Comma list of networks to sweep (each gets its own table).")
@click.option("--dataset", default=None, help="Dataset name (see 'idsbench datasets list').")
@click.option("--task", default="binary", show_default=True, help="binary or multiclass.")
@click.option("--split", default=None, help="official or random (default: the dataset's own).")
@click.option("--lr", "lrs", default="0.01,0.001,0.0001", show_default=True,
              help="Comma list of learning rates (default: the paper's Table I).")
@click.option("--batch-size", "batch_sizes", default="16,32,64,128,256,512,1024",
              show_default=True, help="Comma list of batch sizes (default: the paper's Table I).")
@click.option("--epochs", type=int, default=None,
              help="Epochs at every grid point (default: the profile's; paper: 100).")
@click.option("--profile", default="paper", show_default=True,
              help="Training profile; 'paper' trains every point for all epochs, no early stop.")
@click.option("--seeds", default="0", show_default=True, help="Comma list of seeds (or 0..4).")
@click.option("--max-train-rows", type=int, default=None,
              help="Stratified subsample of the training rows.")
@click.option("--device", default=None, help="auto, cpu or cuda.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the dataset files are (else $IDSBENCH_DATA_DIR, else the user data dir).")
@click.option("--out", default="results", show_default=True, type=click.Path(),
              help="The sweep is written to OUT/<run-id>/ (records, sweep.md).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --executor ray).")
@click.option("--select", type=click.Choice(["test-f1", "val-loss"]), default="test-f1",
              show_default=True,
              help="How the best setting is chosen: test F1-score (the paper) or validation loss.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None,
              help="Finish the sweep in RUN_DIR (only jobs without a finished record run).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
def sweep(models, dataset, task, split, lrs, batch_sizes, epochs, profile, seeds, max_train_rows,
          device, data_dir, out, executor, address, select, resume, progress) -> None:
    """Sweep learning rate x batch size for networks; writes records and sweep.md.

    Every grid point of every model and seed is one job of the chosen executor, with its own
    record.  The table has rows learning rate x metric (Accuracy, Precision, Recall,
    F1-score) and a column per batch size; the best setting is in bold.
    """
    from idsbench.cli import parse_seeds
    from idsbench.sweep import parse_grid, run_sweep

    if progress is None:
        progress = sys.stderr.isatty()
    options = {"address": address} if executor == "ray" else {}
    if not resume and not dataset:
        raise ConfigError("--dataset is required (see 'idsbench datasets list')")
    result = run_sweep(
        dataset or "", models=models, task=task, split=split,
        lrs=parse_grid("--lr", lrs, float),
        batch_sizes=parse_grid("--batch-size", batch_sizes, int),
        epochs=epochs, seeds=parse_seeds(seeds), profile=profile, max_train_rows=max_train_rows,
        device=device, data_dir=data_dir, out=out, executor=executor, executor_options=options,
        select=select, progress=progress, resume=resume)

    click.echo(result.markdown)
    for best in result.best:
        click.secho(best.describe(), bold=True)
    if result.run_dir:
        click.echo(f"records: {result.run_dir}/records.jsonl\ntable: {result.run_dir}/sweep.md")
    if result.n_failed:
        click.secho(f"{result.n_failed} job(s) failed; see the table's 'Failed' section", fg="red",
                    err=True)
        sys.exit(1)
