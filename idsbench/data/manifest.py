"""Dataset manifests: files, checksums, sizes, schema and split protocol, as data.

The manifests live in the repository's ``datasets/`` folder (installed as the package
``idsbench.manifests``).  One JSON file per dataset; adding a dataset with the same schema
conventions needs no code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from idsbench.errors import unknown_name

#: Short names people type, mapped to manifest names.
ALIASES = {"unsw-nb15": "unsw", "unsw_nb15": "unsw", "ton_iot": "toniot", "ton-iot": "toniot"}


@dataclass(frozen=True)
class FileSpec:
    role: str
    official_name: str
    names: tuple[str, ...]
    sha256: str
    rows: int
    bytes: int | None = None
    md5: str | None = None
    class_counts: dict[str, int] = field(default_factory=dict)
    published_at: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """Everything idsbench knows about one dataset, read from ``datasets/<name>.json``."""

    name: str
    title: str
    subdir: str
    homepage: str
    files: dict[str, FileSpec]
    targets: dict[str, str]
    classes: dict[str, list[str]]
    class_aliases: dict[str, str]
    normal_class: str
    never_features: tuple[str, ...]
    identity: tuple[str, ...]
    identity_categorical: tuple[str, ...]
    text: tuple[str, ...]
    categorical: tuple[str, ...]
    boolean: tuple[str, ...]
    numeric: tuple[str, ...]
    placeholder: str
    splits: dict[str, dict[str, Any]]
    default_split: str
    raw: dict[str, Any]

    @property
    def tasks(self) -> list[str]:
        return sorted(self.targets)

    def feature_columns(self, identity: bool = False) -> list[str]:
        """Columns used as features, in a fixed order."""
        cols = list(self.numeric) + list(self.boolean) + list(self.categorical)
        return cols + list(self.identity) if identity else cols

    def required_columns(self) -> list[str]:
        """Columns a file must have (features, identity columns and both targets)."""
        return self.feature_columns(identity=True) + sorted(set(self.targets.values()))


def _manifest_dir():
    local = Path(__file__).resolve().parents[2] / "datasets"
    if (local / "unsw.json").is_file():  # a source checkout (editable install)
        return local
    return resources.files("idsbench.manifests")


@lru_cache(maxsize=None)
def _load_all() -> dict[str, Manifest]:
    out = {}
    for entry in sorted(_manifest_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            raw = json.loads(entry.read_text(encoding="utf-8"))
            out[raw["name"]] = _from_raw(raw)
    return out


def _from_raw(raw: dict) -> Manifest:
    files = {
        role: FileSpec(role=role, official_name=f["official_name"], names=tuple(f["names"]),
                       sha256=f["sha256"], rows=f["rows"], bytes=f.get("bytes"), md5=f.get("md5"),
                       class_counts=f.get("class_counts", {}),
                       published_at=tuple(f.get("published_at", ())))
        for role, f in raw["files"].items()
    }
    tup = lambda k: tuple(raw.get(k, ()))  # noqa: E731
    return Manifest(
        name=raw["name"], title=raw["title"], subdir=raw["subdir"], homepage=raw.get("homepage", ""),
        files=files, targets=raw["targets"], classes=raw.get("classes", {}),
        class_aliases=raw.get("class_aliases", {}), normal_class=raw["normal_class"],
        never_features=tup("never_features"), identity=tup("identity"),
        identity_categorical=tup("identity_categorical"), text=tup("text"),
        categorical=tup("categorical"), boolean=tup("boolean"), numeric=tup("numeric"),
        placeholder=raw.get("placeholder", "-"), splits=raw["splits"],
        default_split=raw["default_split"], raw=raw,
    )


def list_datasets() -> list[str]:
    return sorted(_load_all())


def get_manifest(name: str) -> Manifest:
    """The manifest for ``name`` (``unsw``, ``toniot``, or an alias such as ``unsw-nb15``)."""
    manifests = _load_all()
    key = ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if key not in manifests:
        raise unknown_name("dataset", str(name), manifests)
    return manifests[key]
