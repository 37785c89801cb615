"""``idsbench datasets audit NAME``: the data audit of one split (see :mod:`idsbench.audit`)."""

from __future__ import annotations

from pathlib import Path

import click

from idsbench.errors import MAX_SEED

#: where reports go unless --out says otherwise
DEFAULT_OUT = Path("results") / "audit"


@click.command("audit")
@click.argument("name")
@click.option("--split", default=None,
              help="official or random (default: the dataset's own, as 'idsbench run').")
@click.option("--task", type=click.Choice(["binary", "multiclass"]), default="binary",
              show_default=True, help="Target of the single-feature rule and majority rate.")
@click.option("--split-seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the random split (the benchmark's --split-seed).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help=f"Folder for <name>-<split>.md and .json [default: {DEFAULT_OUT}].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the dataset files are (else $IDSBENCH_DATA_DIR, else the user data dir).")
@click.option("--allow-checksum-mismatch", is_flag=True,
              help="Audit files whose SHA-256 differs from the manifest (the report says so).")
def audit_command(name, split, task, split_seed, out, data_dir, allow_checksum_mismatch) -> None:
    """Duplicates, train/test twins, label conflicts and shortcuts in one dataset split.

    Computed on the rows the benchmark uses (same split, same seed) over the raw cleaned
    feature columns; writes markdown and JSON and prints the markdown.
    """
    from idsbench.audit import audit_dataset, render_markdown, write_audit
    from idsbench.data.prepare import DataConfig

    cfg = DataConfig(name, task=task, split=split, split_seed=split_seed, data_dir=data_dir,
                     allow_checksum_mismatch=allow_checksum_mismatch)
    result = audit_dataset(cfg)
    md_path, json_path = write_audit(result, Path(out) if out else DEFAULT_OUT)
    click.echo(render_markdown(result))
    click.echo(f"wrote {md_path} and {json_path}", err=True)


def register(cli: click.Group, groups: dict[str, click.Group]) -> None:
    """Add ``audit`` to the ``datasets`` group."""
    groups["datasets"].add_command(audit_command)
