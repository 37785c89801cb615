"""Leaderboard figures: each one is written, is a real PNG with content, and is linked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from idsbench.cli import cli
from idsbench.records import load_records
from idsbench.report.groups import group_records
from idsbench.report.leaderboard import write_leaderboard
from idsbench.report.plots import plot_files
from tests.test_leaderboard import build_ton_binary_run, build_unsw_multiclass_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_side: int = 200) -> None:
    """A PNG by signature, decodable, of a reasonable size and not a blank canvas."""
    from matplotlib.image import imread

    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= min_side, (path, image.shape)
    assert float(image[..., :3].std()) > 0.01, f"{path} is blank"


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """Two runs (two protocol groups) rendered once by the CLI with --plots."""
    root = tmp_path_factory.mktemp("plots")
    build_ton_binary_run(root / "runs" / "run-a")
    build_unsw_multiclass_run(root / "runs" / "run-b")
    out = root / "report" / "board.md"
    result = CliRunner().invoke(cli, ["leaderboard", str(root / "runs" / "run-a"),
                                      str(root / "runs" / "run-b"), "-o", str(out), "--plots"])
    assert result.exit_code == 0, result.output
    return root, out


def test_every_figure_is_a_png_with_content(merged):
    root, out = merged
    groups = group_records(load_records([root / "runs" / "run-a", root / "runs" / "run-b"]))
    assert [g.slug for g in groups] == ["toniot-binary-random", "unsw-multiclass-official"]
    for group in groups:
        files = plot_files(group, out.parent / "plots")
        for key in ("metrics", "f1_vs_time", "recall_per_class"):
            assert_png(files[key])
        assert set(files["confusion"]) == {v.label for v in group.variants}
        for path in files["confusion"].values():
            assert_png(path)
    assert not list((out.parent / "plots").rglob(".*"))  # no temporary files left behind


def test_merged_leaderboard_links_each_figure(merged):
    root, out = merged
    links = re.findall(r"\]\((plots/[^)]+\.png)\)", out.read_text())
    # per group: three figures and one confusion matrix per model (3 and 2 models)
    assert len(links) == (3 + 3) + (3 + 2) == len(set(links))
    for link in links:
        assert (out.parent / link).is_file()


def test_run_leaderboard_links_its_plots_and_keeps_them(tmp_path):
    run = tmp_path / "run-a"
    build_ton_binary_run(run)
    board = write_leaderboard(run, plots=True).read_text()
    links = re.findall(r"\]\((plots/[^)]+\.png)\)", board)
    assert len(links) == 3 + 3
    for link in links:
        assert_png(run / link)

    # the cheap per-job rendering keeps the links; the CLI prints the same text
    assert write_leaderboard(run).read_text() == board
    printed = CliRunner().invoke(cli, ["leaderboard", str(run)])
    assert printed.exit_code == 0 and printed.output.strip() == board.strip()
