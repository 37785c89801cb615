"""Published results, kept as data, and how their protocols compare with a reproduced run.

Each file in the repository's ``baselines/`` folder describes one source (a paper, a tool's
scorecard) as a list of tables; each table holds results that share a dataset, a model and a
protocol, and each result may override any of those.  A protocol field that the source does
not state is left out (or null) and the table's ``unknown`` list says so in words: the
leaderboard never guesses a protocol.

Protocol fields understood
--------------------------
``task``              ``binary`` or ``multiclass``
``split``             ``official`` (the dataset's own partitions) or ``random``
``test_size``         fraction of rows held out for testing (random splits)
``dataset_rows``      rows of the data file(s) used
``identity_columns``  ``drop`` or ``keep`` (addresses and ports as features)
``max_train_rows``    ``"none"`` (all training rows) or a cap
``test_dedup``        true when duplicate test rows were removed before scoring
``training``          ``lr``, ``batch_size``, ``epochs``
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from idsbench.errors import ConfigError

log = logging.getLogger(__name__)

#: metrics a published result may report, as fractions in [0, 1]
PUBLISHED_METRICS = ("accuracy", "precision", "recall", "f1")
TASKS = ("binary", "multiclass")
SPLITS = ("official", "random")
_TABLE_KEYS = {"name", "where", "description", "dataset", "paper_model", "model",
               "metric_averaging", "protocol", "unknown", "notes", "headline", "results"}
_RESULT_KEYS = {"id", "where", "paper_model", "model", "metric_averaging", "protocol", "notes",
                "headline", "metrics"}
_PROTOCOL_KEYS = {"task", "split", "test_size", "dataset_rows", "identity_columns",
                  "max_train_rows", "test_dedup", "training"}


@dataclass(frozen=True)
class PublishedResult:
    """One reported figure set with its source and everything known about its protocol."""

    id: str
    source: str  # short key of the source, e.g. "cui"
    citation: str
    table: str  # the table's name within the source
    where: str  # where in the source the figures are printed
    dataset: str
    paper_model: str
    model: str | None  # the idsbench registry name, None when idsbench has no such model
    metrics: dict
    protocol: dict
    metric_averaging: str | None
    headline: bool
    unknown: tuple[str, ...] = ()
    notes: tuple[tuple[str, str], ...] = ()  # (what the note is about, the note)
    file: str = ""

    @property
    def task(self) -> str | None:
        return self.protocol.get("task")


def baselines_dir() -> Path:
    """The repository's ``baselines/`` folder (a source checkout)."""
    return Path(__file__).resolve().parents[2] / "baselines"


def _problem(path: Path, where: str, what: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {what}")


def _check_protocol(path: Path, where: str, proto: dict) -> None:
    extra = set(proto) - _PROTOCOL_KEYS
    if extra:
        raise _problem(path, where, f"unknown protocol field(s) {sorted(extra)}; expected some "
                       f"of {sorted(_PROTOCOL_KEYS)}")
    if proto.get("task") not in (None, *TASKS):
        raise _problem(path, where, f"task {proto['task']!r}; expected one of {TASKS} or null")
    if proto.get("split") not in (None, *SPLITS):
        raise _problem(path, where, f"split {proto['split']!r}; expected one of {SPLITS} or null")


def _merge_protocol(base: dict, override: dict) -> dict:
    merged = {**base, **override}
    merged["training"] = {**(base.get("training") or {}), **(override.get("training") or {})}
    return merged


def load_file(path: str | Path) -> list[PublishedResult]:
    """Read one baselines file; a malformed file raises :class:`ConfigError` naming the entry."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable JSON baselines file ({exc})") from exc
    if doc.get("schema") != 1 or not isinstance(doc.get("tables"), list):
        raise ConfigError(f"{path}: expected {{'schema': 1, 'source': ..., 'tables': [...]}}, "
                          f"found keys {sorted(doc)}")
    source = doc.get("source") or {}
    if not source.get("key") or not source.get("citation"):
        raise ConfigError(f"{path}: 'source' needs a 'key' and a 'citation'")

    out = []
    for t_index, table in enumerate(doc["tables"]):
        where_t = f"table {table.get('name', t_index)!r}"
        extra = set(table) - _TABLE_KEYS
        if extra:
            raise _problem(path, where_t, f"unknown field(s) {sorted(extra)}; expected some of "
                           f"{sorted(_TABLE_KEYS)}")
        _check_protocol(path, where_t, table.get("protocol") or {})
        for r_index, res in enumerate(table.get("results") or []):
            where_r = f"{where_t}, result {res.get('id', r_index)!r}"
            extra = set(res) - _RESULT_KEYS
            if extra:
                raise _problem(path, where_r, f"unknown field(s) {sorted(extra)}; expected some "
                               f"of {sorted(_RESULT_KEYS)}")
            _check_protocol(path, where_r, res.get("protocol") or {})
            metrics = res.get("metrics") or {}
            bad = {k: v for k, v in metrics.items() if k not in PUBLISHED_METRICS
                   or not isinstance(v, (int, float)) or not 0 <= v <= 1}
            if not metrics or bad:
                raise _problem(path, where_r, f"metrics must map some of {PUBLISHED_METRICS} to "
                               f"fractions in [0, 1]; found {metrics}")
            dataset = res.get("dataset", table.get("dataset"))
            if not dataset or not res.get("id"):
                raise _problem(path, where_r, "every result needs an 'id' and a 'dataset' "
                               "(on the result or its table)")
            out.append(PublishedResult(
                id=res["id"], source=source["key"], citation=source["citation"],
                table=table.get("name", str(t_index)),
                where=res.get("where", table.get("where", "")), dataset=dataset,
                paper_model=res.get("paper_model", table.get("paper_model", "?")),
                model=res.get("model", table.get("model")), metrics=dict(metrics),
                protocol=_merge_protocol(table.get("protocol") or {}, res.get("protocol") or {}),
                metric_averaging=res.get("metric_averaging", table.get("metric_averaging")),
                headline=bool(res.get("headline", table.get("headline", True))),
                unknown=tuple(table.get("unknown") or ()),
                notes=_scoped_notes(source, table, res),
                file=path.name))
    return out


def _scoped_notes(source: dict, table: dict, res: dict) -> tuple[tuple[str, str], ...]:
    """Notes of the source, the table and the result, each labelled with what it is about."""
    key = source["key"]
    scopes = [(key, source), (f"{key}, {table.get('name', '')}", table),
              (f"{key}, {res.get('paper_model', table.get('paper_model', res.get('id')))}", res)]
    return tuple((scope, str(n).rstrip(".")) for scope, d in scopes for n in d.get("notes") or ())


@lru_cache(maxsize=8)
def _load_dir(directory: str) -> tuple[PublishedResult, ...]:
    results: list[PublishedResult] = []
    for path in sorted(Path(directory).glob("*.json")):
        results.extend(load_file(path))
    seen: dict[str, str] = {}
    for r in results:
        if r.id in seen:
            raise ConfigError(f"baselines: result id {r.id!r} appears in both {seen[r.id]} and "
                              f"{r.file}; ids must be unique")
        seen[r.id] = r.file
    return tuple(results)


def load_published(directory: str | Path | None = None) -> list[PublishedResult]:
    """Every published result in ``directory`` (default: the repository's ``baselines/``).

    A missing folder gives an empty list (an installed package without the data files).
    """
    directory = Path(directory) if directory else baselines_dir()
    if not directory.is_dir():
        log.info("no baselines folder at %s: leaderboards show no published results", directory)
        return []
    return list(_load_dir(str(directory.resolve())))


def applicable(published: Iterable[PublishedResult], dataset: str,
               task: str) -> tuple[list[PublishedResult], list[PublishedResult]]:
    """Results for ``dataset`` whose task is ``task`` or not stated; and those of other tasks."""
    same, other = [], []
    for p in published:
        if p.dataset != dataset:
            continue
        (same if p.task in (None, task) else other).append(p)
    return same, other


def _fmt_rows(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def protocol_differences(pub: PublishedResult, protocol: dict, dataset_rows: int | None,
                         training: dict | None) -> list[str]:
    """What differs between a published protocol and this leaderboard group's, in words.

    Parameters
    ----------
    pub
        The published result.
    protocol
        The group's data protocol (dataset, task, split, test_size, max_train_rows,
        identity_columns, ...), as stored in records.
    dataset_rows
        Rows of the data file(s) the group used, if known.
    training
        Training settings of the reproduced runs of ``pub.model`` in this group (``lr``,
        ``batch_size``, ``epochs``, ``early_stopping``), or None when that model was not run.

    Returns
    -------
    list of str
        One short phrase per difference; empty when every stated field agrees.  Fields the
        source does not state are not compared (they are listed in ``pub.unknown``).
    """
    pp = pub.protocol
    diffs = []
    if pp.get("task") and pp["task"] != protocol.get("task"):
        diffs.append(f"task {pp['task']} there, {protocol.get('task')} here")
    if pp.get("split") and pp["split"] != protocol.get("split"):
        diffs.append(f"{pp['split']} split there, {protocol.get('split')} here")
    elif (pp.get("split") == "random" and pp.get("test_size") is not None
          and protocol.get("test_size") is not None
          and abs(pp["test_size"] - protocol["test_size"]) > 1e-9):
        diffs.append(f"test fraction {pp['test_size']:.0%} there, {protocol['test_size']:.0%} here")
    if pp.get("dataset_rows") and dataset_rows and pp["dataset_rows"] != dataset_rows:
        diffs.append(f"{_fmt_rows(pp['dataset_rows'])} data rows there, "
                     f"{_fmt_rows(dataset_rows)} here")
    if pp.get("identity_columns") and protocol.get("identity_columns") \
            and pp["identity_columns"] != protocol["identity_columns"]:
        kept = {"keep": "kept", "drop": "dropped"}
        diffs.append(f"addresses and ports {kept[pp['identity_columns']]} there, "
                     f"{kept.get(protocol['identity_columns'], protocol['identity_columns'])} here")
    cap = protocol.get("max_train_rows")
    if pp.get("max_train_rows") == "none" and cap:
        diffs.append(f"all training rows there, capped at {cap:,} here")
    elif isinstance(pp.get("max_train_rows"), int) and pp["max_train_rows"] != cap:
        diffs.append(f"training rows capped at {pp['max_train_rows']:,} there, "
                     f"{f'{cap:,}' if cap else 'all'} here")
    if pp.get("test_dedup"):
        diffs.append("duplicate test rows removed there, every test row scored here")
    if protocol.get("dedup") == "train":
        diffs.append("duplicate training rows dropped here")

    # training settings only mean something against runs of the same model
    pt = pp.get("training") or {}
    if training:
        for key, name in (("lr", "learning rate"), ("batch_size", "batch size")):
            if pt.get(key) is not None and training.get(key) is not None \
                    and float(pt[key]) != float(training[key]):
                diffs.append(f"{name} {pt[key]:g} there, {training[key]:g} here")
        if pt.get("epochs") is not None and training.get("epochs") is not None:
            here = training["epochs"]
            stop = " with early stopping" if training.get("early_stopping") else ""
            if here != pt["epochs"] or stop:
                upto = "up to " if stop else ""
                diffs.append(f"{pt['epochs']} epochs there, {upto}{here}{stop} here")
    return diffs
