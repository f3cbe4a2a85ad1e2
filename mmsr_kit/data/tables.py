"""The one in-memory form every source converts to: an item table and an interaction table."""
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa

from ..registry import ConfigError

log = logging.getLogger(__name__)


@dataclass
class RecDataset:
    """A recommendation dataset before splitting.

    items: a `datasets.Dataset` with columns item_id (str), text (str) and, when the
        source has pictures, image (a `datasets.Image`); `.map()` on it caches
        tokenisation and image preprocessing by fingerprint.
    interactions: a DataFrame with columns user_id (str), item_id (str), timestamp.
    world: the generator behind a synthetic dataset (fresh views for augmentation), else None.
    pictures: a prepared picture store (`mmsr prepare`): an .npy of uint8 (n_items + 1, 3, S, S), row 0 padding,
        in item-table order; used instead of an image column.
    """

    name: str
    items: datasets.Dataset
    interactions: pd.DataFrame
    world: Optional[Any] = None
    notes: dict = field(default_factory=dict)  # counted fallbacks (dropped rows, empty texts ...)
    pictures: Optional[str] = None

    def __post_init__(self):
        missing = {"item_id", "text"} - set(self.items.column_names)
        if missing:
            raise ConfigError(f"{self.name}: item table lacks column(s) {sorted(missing)}")
        missing = {"user_id", "item_id", "timestamp"} - set(self.interactions.columns)
        if missing:
            raise ConfigError(f"{self.name}: interaction table lacks column(s) {sorted(missing)}")
        ids = pd.Series(self.items["item_id"])
        if ids.duplicated().any():
            raise ConfigError(f"{self.name}: item table repeats item ids, e.g. {ids[ids.duplicated()].iloc[0]!r}")
        empty = sum(1 for t in self.items["text"] if not str(t).strip())
        if empty:
            log.warning("%s: %d item(s) have an empty text", self.name, empty)
            self.notes["empty_texts"] = empty

    @property
    def has_images(self):
        return "image" in self.items.column_names or self.pictures is not None

    def item_images(self, rows):
        """Pictures of item-table rows as uint8 (n, S, S, 3), from the image column or the prepared store."""
        if self.pictures is not None:
            store = np.load(self.pictures, mmap_mode="r")  # (N + 1, 3, S, S), row 0 padding
            return np.stack([store[int(r) + 1].transpose(1, 2, 0) for r in rows])
        return np.stack([np.asarray(img.convert("RGB")) for img in self.items.select(list(rows))["image"]])

    def __repr__(self):
        return (
            f"RecDataset({self.name!r}: {len(self.items)} items, {len(self.interactions)} interactions, "
            f"images={'yes' if self.has_images else 'no'})"
        )


def item_table(item_ids, texts, images=None):
    """Build the item table; `images` may be uint8 arrays, PIL images, file paths or None.

    Its fingerprint is a hash of the encoded content, so `.map()` caches are shared by equal tables.
    """
    columns = {"item_id": [str(i) for i in item_ids], "text": [str(t) for t in texts]}
    features = {"item_id": datasets.Value("string"), "text": datasets.Value("string")}
    if images is not None:
        columns["image"] = list(images)
        features["image"] = datasets.Image()
    features = datasets.Features(features)
    table = pa.Table.from_pydict(features.encode_batch(columns), schema=features.arrow_schema)
    digest = hashlib.sha256()
    for batch in table.to_batches():
        for column in batch.columns:
            for buffer in column.buffers():
                if buffer is not None:
                    digest.update(memoryview(buffer))
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features), fingerprint=digest.hexdigest()[:16])


def interaction_table(user_ids, item_ids, timestamps):
    return pd.DataFrame(
        {"user_id": pd.Series(user_ids).astype(str), "item_id": pd.Series(item_ids).astype(str), "timestamp": timestamps}
    )
