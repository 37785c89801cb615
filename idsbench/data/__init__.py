"""Datasets: manifests, reading and cleaning, splits, preprocessing."""

from idsbench.data.manifest import Manifest, get_manifest, list_datasets
from idsbench.data.prepare import DataConfig, PreparedData, prepare

__all__ = ["DataConfig", "Manifest", "PreparedData", "get_manifest", "list_datasets", "prepare"]
