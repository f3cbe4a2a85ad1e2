"""The embedded sources: the synthetic world, atomic files, MovieLens-100k."""
import numpy as np
import pytest

from mmsr_kit.data import load_atomic, load_dataset
from mmsr_kit.data.synthetic import CATEGORIES, COLOURS, MATERIALS, PATTERNS, SHAPES, SyntheticWorld, WorldSpec


def small(**kw):
    return SyntheticWorld(WorldSpec(n_items=120, n_users=80, **kw))


def test_world_is_a_function_of_its_seed():
    a, b = small(seed=3), small(seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.sequences(), b.sequences()))
    assert np.array_equal(a.images(np.arange(10)), b.images(np.arange(10)))
    assert a.titles(range(10)) == b.titles(range(10))
    c = small(seed=4)
    assert not np.array_equal(a.attrs, c.attrs)


def test_domains_share_vocabulary_not_items():
    shop, video = small(domain="shop"), small(domain="video")
    assert not np.array_equal(shop.attrs, video.attrs)
    assert shop.images([0]).mean() > video.images([0]).mean()  # clean light shots vs cluttered covers


def test_sequences_have_no_repeats_and_bounded_lengths():
    world = small()
    seqs = world.sequences()
    assert all(len(set(s)) == len(s) for s in seqs)
    assert all(world.spec.min_len <= len(s) <= world.spec.max_len for s in seqs)


def words(groups):
    return {w for g in groups for w in g}


def test_text_carries_category_material_colour_and_never_shape_or_pattern():
    world = small()
    rng = np.random.default_rng(0)
    for item in range(20):
        cat, col, _, mat, _ = world.attrs[item]
        for title in (world.titles([item])[0], world.titles([item], rng)[0]):
            tokens = set(title.split())
            assert tokens & set(CATEGORIES[cat]) and tokens & set(COLOURS[col]) and tokens & set(MATERIALS[mat])
            assert not tokens & (set(SHAPES) | set(PATTERNS))
    fresh = {world.titles([0], rng)[0] for _ in range(20)}
    assert len(fresh) > 5  # per-encode views differ


def test_images_show_colour_and_shape():
    world = small(noise=0.0)
    items = np.arange(60)
    imgs = world.images(items).astype(float) / 255
    colour = world.attrs[items, 1]
    # the object's pixels (far from the light background) carry the item's colour
    for img, c in zip(imgs[:10], colour[:10]):
        obj = img[np.abs(img - 0.92).sum(-1) > 0.3]
        hue = obj.mean(0) / obj.mean(0).max()
        from mmsr_kit.data.synthetic import RGB
        assert np.argmin(np.abs(RGB / RGB.max(1, keepdims=True) - hue).sum(1)) == c
    # two items that differ only in shape look different at the same view
    twin = world.attrs.copy()
    world.attrs = np.array([[0, 0, 0, 0, 0], [0, 0, 4, 0, 0]])
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert not np.array_equal(world.images([0], rng_a), world.images([1], rng_b))
    world.attrs = twin


def test_synthetic_dataset_is_cached_and_reloaded(smoke_config):
    cfg = smoke_config().data
    first, second = load_dataset(cfg), load_dataset(cfg)
    assert first.items["text"] == second.items["text"]
    assert first.interactions.equals(second.interactions)
    assert first.has_images and np.asarray(first.items[0]["image"]).shape == (32, 32, 3)


def test_atomic_folder(tiny_dir):
    data = load_atomic(tiny_dir)
    assert data.items[0]["text"] == "Item number 1 genre1"  # token fields joined, the float price left out
    assert not data.has_images
    assert len(data.interactions) == 22


def test_atomic_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_atomic(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no .inter file"):
        load_atomic(tmp_path)


def test_movielens_100k_from_the_recbole_wheel():
    data = load_dataset(type("C", (), {"name": "ml-100k"}))
    assert len(data.items) == 1682 and len(data.interactions) == 100_000
    assert data.interactions["user_id"].nunique() == 943
    assert data.items[0]["text"] == "Toy Story 1995 Animation Children's Comedy"
    import sys

    assert "recbole" not in sys.modules  # the files are read, recbole's code never runs
