"""Item and user vectors for Figs. 4-5: what they are, their t-SNE maps, the projector export, the figures."""
import numpy as np
import pandas as pd
import pytest
import torch

from mmsr_kit import fit, viz
from mmsr_kit.embeddings import (centred, export_projector, group_separation, item_embeddings, tsne,
                                 user_embeddings)
from mmsr_kit.widgets import ItemExplorer, png

MMSR = {"model__mode": "mmsr", "model__text_encoder": "bow", "model__vision_encoder": "tiny-cnn",
        "model__fusion": "concat"}


@pytest.fixture
def idsr_run(smoke_config):
    return fit(smoke_config(train__epochs=1), results=False, progress=False)


def test_item_embeddings_are_the_item_vectors_the_model_scores_with(smoke_config):
    run = fit(smoke_config(train__epochs=1, **MMSR), results=False, progress=False)
    model, data = run.model, run.data
    model.train()  # views and dropout on: item_embeddings must still give the evaluation vectors
    vectors, items = item_embeddings(model, data)
    assert model.training  # left as it was
    model.eval()
    assert vectors.dtype == np.float32 and vectors.shape == (data.n_items, 32)
    np.testing.assert_array_equal(vectors, model.all_item_vectors(data.n_items)[1:].numpy())
    assert list(items["item"]) == list(range(1, data.n_items + 1)) and list(items["item_id"]) == data.item_ids
    assert list(items["title"]) == list(data.dataset.items["text"])
    assert (items["group"] == "cold").tolist() == data.cold[1:].tolist()
    assert items["group"].isin(["popular", "cold"]).all() and (items["train_count"] == data.train_counts[1:]).all()


def test_user_embeddings_are_user_vectors_then_their_training_items(idsr_run):
    model, data = idsr_run.model, idsr_run.data
    vectors, meta = user_embeddings(model, data, users=[4, 1])
    assert list(meta["kind"][:2]) == ["user", "user"] and list(meta["user"][:2]) == [data.user_ids[4], data.user_ids[1]]
    model.eval()  # the expected vectors without dropout, as user_embeddings computes them
    expected = model.last_user_vectors(torch.as_tensor(data.test.inputs[[4, 1]]))
    np.testing.assert_allclose(vectors[:2], expected.numpy(), rtol=1e-5, atol=1e-6)
    items = meta[meta["kind"] == "item"]
    for user, history in zip([4, 1], data.history([4, 1])):
        assert items.loc[items["user"] == data.user_ids[user], "item"].tolist() == history.tolist()
    table = model.all_item_vectors(data.n_items).numpy()
    np.testing.assert_array_equal(vectors[2:], table[items["item"].to_numpy(dtype=np.int64)])
    drawn, _ = user_embeddings(model, data, n=3, seed=7)
    again, meta_again = user_embeddings(model, data, n=3, seed=7)
    assert np.array_equal(drawn, again) and (meta_again["kind"] == "user").sum() == 3


def test_tsne_is_a_function_of_the_seed():
    vectors = np.random.default_rng(0).normal(size=(60, 8))
    points = tsne(vectors, seed=1)
    assert points.shape == (60, 2) and points.dtype == np.float32
    assert np.array_equal(points, tsne(vectors, seed=1))
    random_start = tsne(vectors, seed=1, init="random")  # the seed matters from a random start (PCA's is fixed)
    assert np.array_equal(random_start, tsne(vectors, seed=1, init="random"))
    assert not np.array_equal(random_start, tsne(vectors, seed=2, init="random"))
    assert tsne(vectors[:5], seed=0).shape == (5, 2)  # perplexity 30 is clipped below 5 points


def test_centred_takes_each_kinds_mean_off_and_keeps_directions():
    vectors = np.array([[1.0, 10.0], [3.0, 10.0], [0.0, 2.0], [0.0, 6.0]])
    out = centred(vectors, ["user", "user", "item", "item"])
    np.testing.assert_allclose(out, [[-1, 0], [1, 0], [0, -1], [0, 1]])  # (2, 10) and (0, 4) are gone


def test_group_separation_on_hand_made_points():
    far_apart = np.array([[0.0], [1.0], [2.0], [100.0], [101.0], [102.0]])
    assert group_separation(far_apart, [True, True, True, False, False, False], k=2) == 1.0
    # on a line at 0, 1, 3, 6, every point's nearest neighbour is of the other group: members have none around
    interleaved = np.array([[0.0], [1.0], [3.0], [6.0]])
    assert group_separation(interleaved, [True, False, True, False], k=1) == 0.0
    cloud = np.random.default_rng(0).normal(size=(400, 8))  # one cloud, members drawn at random: mixed
    assert abs(group_separation(cloud, np.random.default_rng(1).random(400) < 0.2) - 0.5) < 0.08


def test_projector_export_reads_back(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    meta = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["plain", "tab\there", "two\nlines"],
                         "train_count": pd.array([5, None, 7], dtype="Int64")})
    folder = export_projector(tmp_path / "projector", vectors, meta)
    np.testing.assert_array_equal(np.load(folder / "embeddings.npy"), vectors)
    assert np.array_equal(np.loadtxt(folder / "tensors.tsv", delimiter="\t", dtype=np.float32), vectors)
    lines = (folder / "metadata.tsv").read_text().splitlines()
    assert lines == ["item_id\ttitle\ttrain_count", "a\tplain\t5", "b\ttab here\t", "c\ttwo lines\t7"]
    back = pd.read_csv(folder / "metadata.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert back["title"].tolist() == ["plain", "tab here", "two lines"]
    config = (folder / "projector_config.pbtxt").read_text()
    assert config.splitlines() == ["embeddings {", '  tensor_name: "items"', '  tensor_path: "tensors.tsv"',
                                   '  metadata_path: "metadata.tsv"', "}"]
    export_projector(tmp_path / "one", vectors, meta[["title"]])  # one column: a label per line, no header
    assert (tmp_path / "one" / "metadata.tsv").read_text().splitlines()[0] == "plain"
    with pytest.raises(ValueError, match="3 vectors but 2"):
        export_projector(tmp_path / "bad", vectors, meta[:2])


def test_figures_carry_titles_and_groups(idsr_run):
    vectors, items = item_embeddings(idsr_run.model, idsr_run.data)
    points = np.random.default_rng(0).normal(size=(len(items), 2))  # the figures draw any map
    fig = viz.tsne_items({"IDSR": (points, items), "MMSR": (points, items)}, highlight=3)
    assert [t.name for t in fig.data] == ["popular", "cold", "selected"] * 2
    cold = items[items["group"] == "cold"]
    assert list(fig.data[1].text) == cold["title"].tolist() and len(fig.data[1].x) == len(cold)
    assert "%{text}" in fig.data[1].hovertemplate and fig.data[2].text == (items["title"][3],)
    assert [a.text for a in fig.layout.annotations] == ["IDSR", "MMSR"]

    user_vectors, meta = user_embeddings(idsr_run.model, idsr_run.data, n=3)
    fig = viz.tsne_users({"IDSR": (np.zeros((len(meta), 2)), meta)})
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == [f"user {u}" for u in meta["user"][:3]]
    diamonds = [t for t in fig.data if t.marker.symbol == "diamond"]
    assert [len(t.x) for t in diamonds] == [1, 1, 1] and diamonds[0].text[0] == f"user {meta['user'][0]}"
    dots = [t for t in fig.data if t.marker.symbol is None]
    assert sum(len(t.x) for t in dots) == (meta["kind"] == "item").sum()


def test_item_explorer_shows_the_picked_item(idsr_run):
    data = idsr_run.data
    _, items = item_embeddings(idsr_run.model, data)
    points = np.random.default_rng(0).normal(size=(len(items), 2))
    explorer = ItemExplorer(items, data.dataset, lambda row: viz.tsne_items({"IDSR": (points, items)}, highlight=row))
    explorer.choice.value = 7  # what picking an item in the dropdown does
    assert explorer.picture.value == png(data.dataset.items[7]["image"])
    assert items["title"][7] in explorer.details.value
    star = explorer.figure.data[-1]
    assert star.name == "selected" and (star.x[0], star.y[0]) == tuple(points[7])
    shown = explorer.output.outputs  # the picked item's figure, as the output area's state, replaces the first one's
    marked = shown[0]["data"]["application/vnd.plotly.v1+json"]["data"][-1]
    assert len(shown) == 1 and marked["name"] == "selected" and list(marked["text"]) == [items["title"][7]]
