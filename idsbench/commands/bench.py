"""``idsbench bench``: measured speed of data loading, the training loop, inference and a run."""

from __future__ import annotations

import click


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None or value.strip() == "all":
        return None
    from idsbench.runner import resolve_models

    return tuple(resolve_models(value))


def register(cli, groups) -> None:
    """Add the top-level ``bench`` command to ``cli``."""

    @cli.command("bench")
    @click.option("--dataset", default="toniot", show_default=True,
                  help="Dataset whose files and arrays are measured.")
    @click.option("--split", default=None, help="Split protocol (default: the dataset's).")
    @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                  help="Folder holding the dataset files (default: $IDSBENCH_DATA_DIR).")
    @click.option("--allow-checksum-mismatch", is_flag=True,
                  help="Use files whose SHA-256 differs from the manifest.")
    @click.option("--models", default="all", show_default=True,
                  help="Comma list of models; 'all' is what 'idsbench run --models all' runs.")
    @click.option("--quick", is_flag=True,
                  help="The short version (CI): few repeats and steps, 20,000 training rows.")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
    @click.option("--stages", default="data,train,infer", show_default=True,
                  help="Which stages to measure (comma list of data, train, infer).")
    @click.option("--repeats", type=int, default=None,
                  help="Repetitions of every measurement (default: per stage and mode).")
    @click.option("--steps", type=int, default=None,
                  help="Training steps per measurement (default: 3 quick, 10 full).")
    @click.option("--batch-size", type=int, default=512, show_default=True,
                  help="Training batch size.")
    @click.option("--e2e", is_flag=True,
                  help="Also time 'idsbench run --models all' (binary, seed 0, default "
                       "profile); many minutes.")
    @click.option("--out", type=click.Path(dir_okay=False), default=None,
                  help="Write the figures as JSON to this file.")
    def bench(dataset, split, data_dir, allow_checksum_mismatch, models, quick, device, stages,
              repeats, steps, batch_size, e2e, out) -> None:
        """Measure the speed of each stage against a reference run side by side.

        Prints tables (medians of repeated runs) and the targets met or missed; --out also
        writes everything, with the environment, as JSON.
        """
        from pathlib import Path

        from idsbench.bench import BenchConfig, render_tables, run_bench, write_json

        cfg = BenchConfig(
            dataset=dataset, split=split, data_dir=data_dir,
            allow_checksum_mismatch=allow_checksum_mismatch, quick=quick,
            models=_names(models), device=device,
            stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
            repeats=repeats, train_repeats=repeats, infer_repeats=repeats, train_steps=steps,
            batch_size=batch_size, e2e=e2e)
        result = run_bench(cfg)
        click.echo(render_tables(result))
        if out:
            write_json(result, Path(out))
            click.echo(f"\nwrote {out}")
