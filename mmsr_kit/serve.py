"""A finished run as a model to use: every catalogue item's vector, a vector for any item from its text and picture
(items the run never saw included, for a content model), a user's vector from a history, and recommendations.

    from mmsr_kit import load_run
    run = load_run("runs/mmsr")                                  # a folder written by `mmsr train --out`
    run.recommend(["i12", "i7", "i431"], k=10)                   # item ids of the dataset, oldest first
    vectors = run.encode_items(["red silk scarf"], ["scarf.jpg"])   # (1, D): an item it never saw
"""
import contextlib
import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import PIL.Image
import torch

from .registry import ConfigError

log = logging.getLogger(__name__)

CONTENT_MODES = ("mmsr", "mmsr_t", "mmsr_v", "vlp", "morec++")  # item vectors from content alone: any item encodes


def load_run(run_dir, device="cpu"):
    """The trained model of a run folder, from its `config.yaml` and `model.safetensors` only (no pickle), on
    `device`, in evaluation mode, with the split data its config names."""
    from safetensors.torch import load_file

    from .config import from_yaml
    from .data import load_split
    from .modes import build_model

    run_dir = Path(run_dir).expanduser()
    weights, config = run_dir / "model.safetensors", run_dir / "config.yaml"
    if not config.is_file():
        raise ConfigError(f"{run_dir} is not a run folder: no config.yaml (mmsr train --out DIR writes one)")
    if not weights.is_file():
        raise ConfigError(f"{run_dir} has no model.safetensors: the run did not finish (a run writes it at its end; "
                          f"an interrupted one continues with mmsr train --resume {run_dir})")
    try:
        cfg = from_yaml(config)
    except ConfigError as error:
        raise ConfigError(f"{config} was written by another version of the kit: {error}") from None
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    model.load_state_dict(load_file(str(weights), device="cpu"))
    return TrainedRun(cfg, model.to(device).eval(), data, run_dir)


def as_pictures(pictures, size):
    """Pictures given as file paths, PIL images or uint8 arrays (H, W, 3) -> uint8 (n, 3, size, size). A missing
    or unreadable one (None, a path that is not there or does not decode) is grey, counted and logged, as in
    training; returns (pictures, that count)."""
    from .items import _decode

    out = np.full((len(pictures), 3, size, size), 128, dtype=np.uint8)
    grey = 0
    for i, picture in enumerate(pictures):
        if picture is None or isinstance(picture, (str, Path)):  # decoded as training decodes a picture file
            entry = None if picture is None else {"path": str(Path(picture).expanduser())}
            picture, problem = _decode(entry, size)
            if problem:
                grey += 1
                continue
        elif isinstance(picture, PIL.Image.Image):
            picture = picture.convert("RGB").resize((size, size))
        array = np.asarray(picture)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"picture {i}: expected uint8 (H, W, 3), got {array.dtype} {array.shape}")
        if array.shape[:2] != (size, size):
            array = np.asarray(PIL.Image.fromarray(array).resize((size, size)))
        out[i] = array.transpose(2, 0, 1)
    if grey:
        log.warning("%d of %d picture(s) missing or unreadable: shown as grey", grey, len(pictures))
    return torch.from_numpy(out), grey


class TrainedRun:
    """What `load_run` returns: `config`, `model` (evaluation mode), `data` (the split it was trained on)."""

    def __init__(self, config, model, data, run_dir=None):
        self.config, self.model, self.data, self.run_dir = config, model, data, run_dir
        self._catalogue = None
        self.item_ids, self.titles = list(data.item_ids), list(data.dataset.items["text"])  # index i: row i - 1
        self._index = pd.Index(self.item_ids)
        self._added = []  # vectors of the items `add_items` put after the catalogue's
        self._faiss = None  # (items it was built on, index): items are only ever appended
        self._users = None  # the test users' vectors, as the test scores them (users_for)
        self.grey_pictures = 0  # pictures encode_items showed as grey (missing or unreadable)

    @classmethod
    def of(cls, run):
        """The run `fit` just returned (a `train.Run`, its model in memory), for use like a loaded one."""
        return cls(run.config, run.model.eval(), run.data, run.out_dir)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _by_dot_product(self, what):
        """Users are scored here as evaluation does for every model but CARCA: a user vector against item vectors."""
        if hasattr(self.model, "all_scores"):
            raise ConfigError(f"{what}: model.mode={self.config.model.mode} scores each item by cross-attention over "
                              "the history, not by a user vector; evaluation ranks it (mmsr train), serving does not")

    def catalogue_vectors(self):
        """(N + 1, D) float32: every catalogue item's vector as evaluation scores with it (row i: item index i, row 0
        padding), computed once."""
        if self._catalogue is None:
            with torch.no_grad():
                self._catalogue = self.model.all_item_vectors(self.data.n_items).float()
        return self._catalogue

    def vectors(self):
        """(N + 1 + added, D): `catalogue_vectors` and then the vectors of the items `add_items` added."""
        return torch.cat([self.catalogue_vectors(), *self._added]) if self._added else self.catalogue_vectors()

    def add_items(self, ids, texts=None, pictures=None):
        """Items the run never saw, by id, text and picture (see `encode_items`): from now on `recommend` ranks
        them with the catalogue and a history may name them. Returns their vectors (n, D)."""
        ids = list(ids)
        taken = [i for i in ids if i in self._index] + [i for i in set(ids) if ids.count(i) > 1]
        if taken:
            raise ConfigError(f"item id(s) {', '.join(map(repr, sorted(set(taken), key=str)[:5]))} given twice or "
                              "already in the catalogue: a new item needs an id of its own")
        vectors = self.encode_items(texts, pictures)
        self._added.append(vectors)
        self.item_ids += ids
        self.titles += [str(t) for t in texts] if texts is not None else [""] * len(ids)
        self._index = pd.Index(self.item_ids)
        log.info("%d new item(s) added after the catalogue's %d", len(ids), self.data.n_items)
        return vectors

    def faiss_index(self):
        """A faiss index (`neighbours.build_index`: exact, or IVF above 200k items) over every item's vector,
        catalogue and added. The catalogue's is saved beside the run (`items.faiss`) and read back from there
        while the vectors it was built on are the same."""
        from .neighbours import build_index, load_index, save_index

        if self._faiss is not None and self._faiss[0] == len(self.item_ids):
            return self._faiss[1]
        vectors = self.vectors()[1:].cpu().numpy()
        path = self.run_dir / "items.faiss" if self.run_dir is not None and not self._added else None
        stamp = path.with_suffix(".json") if path is not None else None
        key = hashlib.sha256(vectors.tobytes()).hexdigest()[:16] if path is not None else None  # of the saved one
        if path is not None and path.is_file() and stamp.is_file() and stamp.read_text() == key:
            index = load_index(path)
        else:
            index = build_index(vectors)
            if path is not None:
                try:
                    save_index(index, path)
                    stamp.write_text(key)
                except OSError as error:  # a read-only run folder: the index lives in memory only
                    log.warning("could not save the item index beside the run: %s", error)
        self._faiss = (len(self.item_ids), index)
        return index

    def nearest(self, items=None, vectors=None, k=10):
        """The `k` items with the highest inner product (the model's score) with each query: item ids (`items`) or
        vectors (Q, D), e.g. from `encode_items`. One DataFrame: query, rank, item_id, score, title, new."""
        from .neighbours import search

        if (items is None) == (vectors is None):
            raise ConfigError("nearest takes item ids or vectors, one of the two")
        queries = self.vectors()[self.item_index(items)] if items is not None else torch.as_tensor(vectors)
        scores, rows = search(self.faiss_index(), queries.float().cpu().numpy(), k)
        labels = list(items) if items is not None else list(range(len(queries)))
        found = [(q, rank + 1, int(row) + 1, float(score)) for q, (row_scores, row_rows) in zip(labels, zip(scores, rows))
                 for rank, (score, row) in enumerate(zip(row_scores, row_rows)) if row >= 0]
        return pd.DataFrame({"query": [f[0] for f in found], "rank": [f[1] for f in found],
                             "item_id": [self.item_ids[f[2] - 1] for f in found], "score": [f[3] for f in found],
                             "title": [self.titles[f[2] - 1] for f in found],
                             "new": [f[2] > self.data.n_items for f in found]})

    def users_for(self, vectors, k=10, batch_size=1024):
        """Which users each of `vectors` (Q, D: new items' vectors, from `encode_items`) would reach: the test users
        whose user vector (from their whole history, as the test scores them) ranks it within their top `k` of
        the catalogue, their history left out. DataFrame: query, user_id, rank, score, best first per query."""
        self._by_dot_product("users_for")
        vectors = torch.as_tensor(vectors, device=self.device).float()
        test = self.data.test
        catalogue = self.catalogue_vectors()
        if self._users is None:  # once per run: every call asks about the same users
            with torch.no_grad():
                self._users = torch.cat([self.model.last_user_vectors(torch.as_tensor(
                    test.inputs[s : s + batch_size], device=self.device), catalogue).float()
                    for s in range(0, len(test.users), batch_size)])
        found = []
        for start in range(0, len(test.users), batch_size):
            inputs = torch.as_tensor(test.inputs[start : start + batch_size], device=self.device)
            users = self._users[start : start + batch_size]  # (B, D)
            scores = (users @ catalogue.T).scatter_(1, inputs, float("-inf"))  # history and padding left out
            new = users @ vectors.T  # (B, Q)
            ranks = 1 + (scores.unsqueeze(1) > new.unsqueeze(2)).sum(2)  # (B, Q): among the catalogue, plus itself
            for b, q in (ranks <= k).nonzero().tolist():
                found.append((q, self.data.user_ids[test.users[start + b]], int(ranks[b, q]), float(new[b, q])))
        frame = pd.DataFrame(found, columns=["query", "user_id", "rank", "score"])
        return frame.sort_values(["query", "rank", "score"], ascending=[True, True, False], ignore_index=True)

    def item_index(self, ids):
        """Item ids (the dataset's, and those `add_items` added) -> item indices (1..); unknown ids are one error
        naming them."""
        ids = list(ids)
        where = self._index.get_indexer(ids)
        if (where < 0).any():
            unknown = [ids[i] for i in np.flatnonzero(where < 0)]
            raise ConfigError(f"unknown item id(s) {', '.join(map(repr, unknown[:5]))}"
                              f"{f' and {len(unknown) - 5} more' if len(unknown) > 5 else ''}: not in "
                              f"{self.data.dataset.name}'s item table ({self.data.n_items} items, e.g. "
                              f"{self.data.item_ids[0]!r}){' or among the items added' if self._added else ''}")
        return torch.as_tensor(where + 1, dtype=torch.long)

    def encode_items(self, texts=None, pictures=None):
        """Vectors (n, D) of any items from their titles and pictures (paths, PIL images or uint8 arrays; None or
        unreadable: grey, counted in `grey_pictures`), through the run's trained item encoder in evaluation mode.
        A model with an item-ID table cannot: it knows only the items it was trained on."""
        mode = self.config.model.mode
        if mode not in CONTENT_MODES:
            raise ConfigError(f"model.mode={mode} scores items by an item-ID table: it has no content encoder, so it "
                              f"cannot encode an item from its text and picture (content modes: "
                              f"{', '.join(CONTENT_MODES)})")
        items = self.model.items
        vlp = getattr(items, "vlp", None)  # a VLP reads both, VisualBERT through its frozen extractor's pictures
        text = vlp if vlp is not None else items.text
        vision = items.vision if items.vision is not None or vlp is None else vlp
        n = len(texts) if texts is not None else len(pictures) if pictures is not None else 0
        if n == 0:
            raise ConfigError("encode_items needs at least one item (its text, its picture or both)")
        if text is not None:
            if texts is None or len(texts) != n:
                raise ConfigError(f"model.mode={mode} reads each item's text: give {n} texts")
            empty = sum(1 for t in texts if not str(t).strip())
            if empty:
                log.warning("%d of %d item text(s) are empty", empty, n)
        grey = 0
        if vision is not None:
            if pictures is None or len(pictures) != n:
                raise ConfigError(f"model.mode={mode} reads each item's picture: give {n} pictures (None: grey)")
            pictures, grey = as_pictures(pictures, vision.image_size)
        self.grey_pictures += grey
        content = _GivenItems([str(t) for t in texts] if text is not None else None, pictures, text, vision)
        with _reading(items, content.to(self.device)), torch.no_grad():
            return items(torch.arange(1, n + 1, device=self.device)).float()

    def user_vector(self, history):
        """(D,) the vector a user with this `history` (item ids, oldest first; added items too) is scored by: the
        sequence model over the last `data.max_len` items, as in evaluation."""
        return self.user_vectors([history])[0]

    def user_vectors(self, histories):
        """(B, D) for several histories at once (see `user_vector`)."""
        self._by_dot_product("user vectors")
        max_len = self.data.max_len
        inputs = torch.zeros(len(histories), max_len, dtype=torch.long)
        for row, history in enumerate(histories):
            if len(history) == 0:
                raise ConfigError("an empty history: a user vector needs at least one item the user interacted with")
            index = self.item_index(history)[-max_len:]
            inputs[row, max_len - len(index):] = index  # left-padded, as the data loader does
        with torch.no_grad():
            return self.model.last_user_vectors(inputs.to(self.device), self.vectors()).float()

    def recommend(self, history, k=10, exclude_history=True, candidates=None):
        """The top `k` items for a user with this `history` (item ids), among the catalogue and the items added: a
        DataFrame of rank, item_id, score, title and whether the item is new, best first. `exclude_history`: never
        an item the user already has; `candidates`: rank only these item ids."""
        scores = self.vectors() @ self.user_vector(history)  # (N + 1 + added,)
        allowed = torch.zeros_like(scores, dtype=torch.bool)
        allowed[1:] = True  # never the padding row
        if candidates is not None:
            allowed[:] = False
            allowed[self.item_index(candidates).to(scores.device)] = True
        if exclude_history:
            allowed[self.item_index(history).to(scores.device)] = False
        scores = scores.masked_fill(~allowed, float("-inf"))
        top = torch.topk(scores, min(k, int(allowed.sum()))).indices.cpu().numpy()
        return pd.DataFrame({"rank": np.arange(1, len(top) + 1), "item_id": [self.item_ids[i - 1] for i in top],
                             "score": scores[torch.as_tensor(top)].cpu().numpy(),
                             "title": [self.titles[i - 1] for i in top], "new": top > self.data.n_items})


class _GivenItems(torch.nn.Module):
    """Item inputs given directly (no dataset), laid out like `items.ItemContent` with one view: rows 1..n the
    items, row 0 padding."""

    views = 0

    def __init__(self, texts, pictures, text=None, vision=None):
        super().__init__()
        if texts is not None:
            for key, value in text.tokenize(texts).items():
                self.register_buffer(key, torch.cat([torch.zeros_like(value[:1]), value]).unsqueeze(1), persistent=False)
        if pictures is not None:
            images = torch.cat([torch.zeros_like(pictures[:1]), pictures]).unsqueeze(1)  # (n + 1, 1, 3, S, S)
            self.register_buffer("images", images, persistent=False)

    def pick_views(self, items, training):
        return torch.zeros_like(items)

    def pictures(self, items, view):
        return self.images[items, view]


@contextlib.contextmanager
def _reading(items, content):
    """The item encoder reading `content` instead of its catalogue, with nothing cached (the cache holds the
    catalogue's frozen outputs), in evaluation mode; then as it was."""
    saved = items.content, items.cache_frozen, items.training
    items.content, items.cache_frozen = content, False
    items.eval()
    try:
        yield items
    finally:
        items.content, items.cache_frozen = saved[:2]
        items.train(saved[2])
