"""``idsbench models check``: the conformance check a plug-in author runs before publishing."""

from __future__ import annotations

import json
import sys

import click

from idsbench.errors import ConfigError


def _parse_params(items: tuple[str, ...]) -> dict:
    params = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. --param hidden=16")
        try:
            value = json.loads(raw)
        except ValueError:
            value = {"true": True, "false": False}.get(raw.lower(), raw)
        params[key.strip()] = value
    return params


def register(cli: click.Group, groups: dict[str, click.Group]) -> None:
    """Add ``check`` to the ``models`` group."""

    @groups["models"].command("check")
    @click.argument("name")
    @click.option("--rows", type=click.IntRange(min=16), default=400, show_default=True,
                  help="Training rows of the sample (validation and test splits are smaller).")
    @click.option("--dataset", default=None,
                  help="Check on a subsample of this real dataset instead of synthetic data.")
    @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                  help="Where the dataset files are (with --dataset).")
    @click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Epochs for networks (the check is about the contract, not accuracy).")
    @click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--param", "param", multiple=True,
                  help="KEY=VALUE model parameter (repeatable), e.g. --param hidden=16.")
    def models_check(name, rows, dataset, data_dir, epochs, batch_size, device, seed,
                     param) -> None:
        """Check that model NAME keeps the idsbench model contract.

        NAME is a registered name or package.module:Factory.  Fits the model a few times on a
        small sample and prints one PASS/FAIL line per check; exits with status 1 when any
        check fails.
        """
        from idsbench.conformance import check_model

        report = check_model(name, rows=rows, params=_parse_params(param), epochs=epochs,
                             batch_size=batch_size, device=device, seed=seed, dataset=dataset,
                             data_dir=data_dir)
        colours = {"pass": "green", "fail": "red", "skip": "yellow", "info": None}
        header, *lines, summary = report.format().split("\n")
        click.echo(header)
        for result, line in zip(report.results, lines):
            click.secho(line, fg=colours[result.status])
        click.secho(summary, fg="green" if report.passed else "red")
        if not report.passed:
            sys.exit(1)
