"""Item and user vectors of a trained model, for the paper's Figs. 4-5: t-SNE maps, a number for how far apart two
groups of items sit, and an export for TensorBoard's Embedding Projector.

    vectors, items = item_embeddings(run.model, run.data)
    points = tsne(vectors)                                   # (N, 2)
    group_separation(vectors, items["group"] == "cold")      # 0.5: mixed ... 1: apart
    export_projector("projector/", vectors, items)           # tensorboard --logdir projector/
"""
import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.manifold import TSNE
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from .evaluate import model_device

PROJECTOR_CONFIG = """embeddings {{
  tensor_name: {name}
  tensor_path: "tensors.tsv"
  metadata_path: "metadata.tsv"
}}
"""


def item_metadata(data, items):
    """One row per item index in `items` (1..N): item, item_id, title, train_count, group ("popular" or "cold")."""
    items = np.asarray(items, dtype=np.int64)
    titles = data.dataset.items.select(items - 1)["text"]  # item index i is row i - 1 of the item table
    return pd.DataFrame({
        "item": items,
        "item_id": [data.item_ids[i - 1] for i in items],
        "title": list(titles),
        "train_count": data.train_counts[items],
        "group": np.where(data.cold[items], "cold", "popular"),
    })


@contextlib.contextmanager
def evaluating(model):
    """Evaluation mode (each item's evaluation view, no dropout) and no gradients, then the model's mode as before."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def item_embeddings(model, data):
    """(vectors (N, D) float32 of items 1..N, metadata with one row per item: see `item_metadata`)."""
    with evaluating(model):
        vectors = model.all_item_vectors(data.n_items)[1:].float().cpu().numpy()  # row 0 is padding
    return vectors, item_metadata(data, np.arange(1, data.n_items + 1))


def user_embeddings(model, data, users=None, n=10, seed=0):
    """Fig. 5's points: the user vectors of `users` (default: `n` drawn with `seed`) from their test inputs, then the
    vectors of each user's training items. Returns (vectors (n + their items, D) float32, metadata: kind ("user" or
    "item"), user (the owner's user id), and the item columns of `item_metadata` (empty for user rows))."""
    if users is None:
        users = np.sort(np.random.default_rng(seed).choice(len(data.user_ids), min(n, len(data.user_ids)),
                                                           replace=False))
    users = np.asarray(users, dtype=np.int64)
    row_of = {int(u): r for r, u in enumerate(data.test.users)}
    inputs = torch.as_tensor(data.test.inputs[[row_of[int(u)] for u in users]], device=model_device(model))
    with evaluating(model):
        table = model.all_item_vectors(data.n_items).float()  # (N+1, D)
        user_vectors = model.last_user_vectors(inputs, table).float()  # (n, D): what evaluation scores with
    histories = data.history(users)
    items = np.concatenate(histories)
    vectors = torch.cat([user_vectors, table[torch.as_tensor(items, device=table.device)]]).cpu().numpy()
    user_ids = [data.user_ids[u] for u in users]
    users_part = pd.DataFrame({"kind": "user", "user": user_ids, "title": [f"user {u}" for u in user_ids]})
    items_part = item_metadata(data, items)
    items_part.insert(0, "user", np.repeat(user_ids, [len(h) for h in histories]))
    items_part.insert(0, "kind", "item")
    metadata = pd.concat([users_part, items_part], ignore_index=True)
    metadata[["item", "train_count"]] = metadata[["item", "train_count"]].astype("Int64")  # <NA> on user rows
    return vectors, metadata


def centred(vectors, kinds):
    """Each kind's vectors (e.g. Fig. 5's "user" and "item" rows) minus that kind's mean, then scaled to length 1, for
    one map of both: user vectors share a large common part (cosine ~0.9 between users, ~5x an item's length) that
    would set them apart as an island; what is left is where each points, as a cosine."""
    vectors, kinds = np.array(vectors, dtype=np.float32), np.asarray(kinds)
    for kind in np.unique(kinds):
        vectors[kinds == kind] -= vectors[kinds == kind].mean(axis=0)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)


def tsne(vectors, seed=0, perplexity=30.0, **options):
    """(n, D) -> (n, 2) float32 t-SNE map, the same for the same seed. `options` go to sklearn's TSNE; its default
    start here is PCA (a stable layout, the same for every seed), `init="random"` starts from the seed's draw."""
    n = len(vectors)
    perplexity = min(perplexity, max(1.0, (n - 1) / 3))  # sklearn needs perplexity < n; it uses 3 x as neighbours
    model = TSNE(n_components=2, perplexity=perplexity, random_state=seed, **{"init": "pca", **options})
    return model.fit_transform(np.asarray(vectors, dtype=np.float32)).astype(np.float32)


def group_separation(vectors, members, k=10):
    """How far a group sits apart from the rest: each point's share of group members among its k nearest
    neighbours (itself left out), as a ROC AUC against membership. 0.5: neighbourhoods do not tell the group from
    the rest (mixed); 1: every member has more members around it than any non-member (apart)."""
    members = np.asarray(members, dtype=bool)
    k = min(k, len(members) - 1)
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(vectors).kneighbors(vectors)  # (n, k + 1)
    share = members[neighbours[:, 1:]].mean(axis=1)  # column 0 is the point itself
    return float(roc_auc_score(members, share))


def clean_cell(value):
    """A metadata cell as one TSV field: tabs and line breaks become spaces, missing values empty."""
    return "" if pd.isna(value) else " ".join(str(value).replace("\t", " ").splitlines())


def export_projector(folder, vectors, metadata, name="items"):
    """Write what TensorBoard's Embedding Projector reads (`tensorboard --logdir folder`, or load the two TSV files
    at projector.tensorflow.org): tensors.tsv (one vector a line), metadata.tsv (a header row, then one row a
    vector; no header when there is one column, as the projector expects), projector_config.pbtxt naming both, and
    embeddings.npy. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) != len(metadata):
        raise ValueError(f"{len(vectors)} vectors but {len(metadata)} metadata rows")
    np.save(folder / "embeddings.npy", vectors)
    np.savetxt(folder / "tensors.tsv", vectors, delimiter="\t", fmt="%.9g")  # 9 digits: float32 exactly
    rows = [[clean_cell(c) for c in metadata.columns]] if len(metadata.columns) > 1 else []
    rows += [[clean_cell(v) for v in row] for row in metadata.itertuples(index=False)]
    (folder / "metadata.tsv").write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    (folder / "projector_config.pbtxt").write_text(PROJECTOR_CONFIG.format(name=json.dumps(name, ensure_ascii=False)))
    return folder
