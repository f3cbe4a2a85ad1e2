"""The Table 5 baselines: each builds, steps and evaluates through the kit's own loop; and what makes each one that
model (VQRec: codes only; CARCA++: candidates cross-attending to the profile; FDSA: ID candidates, text in the user; MoRec++:
no IDs, plain fusion)."""
import numpy as np
import pytest
import torch

from mmsr_kit import fit, load_split
from mmsr_kit.baselines import BASELINES, product_quantise
from mmsr_kit.data.batches import TrainWindows
from mmsr_kit.model import IDEmbedding
from mmsr_kit.modes import build_model
from mmsr_kit.registry import ConfigError
from mmsr_kit.train import param_groups

CPU_ENCODERS = {"model__text_encoder": "bow", "model__vision_encoder": "tiny-cnn", "model__dropout": 0.0}


def built(smoke_config, mode, **overrides):
    cfg = smoke_config(model__mode=mode, **{**CPU_ENCODERS, **overrides})
    data = load_split(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_model(cfg, data)


@pytest.mark.parametrize("mode", ["fdsa", "carca++", "vqrec", "morec++"])
def test_training_steps_lower_the_loss(smoke_config, mode):
    cfg, data, model = built(smoke_config, mode)
    optimizer = torch.optim.AdamW(param_groups(model.train(), cfg.train))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    batch = TrainWindows(data).collate(list(range(16)))
    losses = []
    for _ in range(4):
        loss = model(*batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    changed = {n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])}
    assert len(changed) > len(before) // 2


def test_vqrec_item_vectors_depend_only_on_their_codes(smoke_config):
    cfg, data, model = built(smoke_config, "vqrec", model__vq_books=4, model__vq_codes=16)
    codes = model.items.item_codes
    assert codes.shape == (data.n_items + 1, 4) and int(codes.max()) < 16
    assert not any(isinstance(m, IDEmbedding) for m in model.modules())  # no per-item parameters
    model.items.item_codes[2] = model.items.item_codes[1]
    vectors = model.items(torch.tensor([1, 2, 3]))
    assert torch.equal(vectors[0], vectors[1]) and not torch.equal(vectors[0], vectors[2])


def test_opq_quantises_correlated_dimensions_better_than_plain_product_quantisation():
    """VQRec's OPQ (faiss) learns a rotation before splitting the vector into sub-spaces: on a vector whose
    variance sits in directions that cut across the sub-spaces, its error is well below k-means per sub-space
    of the unrotated vector (the quantiser before), at the same books and codes; and it is deterministic."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]  # a random rotation
    vectors = (rng.normal(size=(600, 16)) * np.r_[np.full(4, 5.0), np.full(12, 0.2)]) @ basis.T
    codes, error = product_quantise(vectors, books=4, codes=16, seed=0)
    assert codes.shape == (600, 4) and codes.dtype == np.int64 and 0 <= codes.min() and codes.max() < 16
    assert np.array_equal(product_quantise(vectors, books=4, codes=16, seed=0)[0], codes)
    plain = 0.0
    for part in np.split(vectors, 4, axis=1):
        km = KMeans(n_clusters=16, n_init=1, random_state=0).fit(part)
        plain += ((part - km.cluster_centers_[km.labels_]) ** 2).sum()
    plain /= (vectors**2).sum()
    assert error < 0.8 * plain, (error, plain)
    with pytest.raises(ConfigError, match="must divide"):
        product_quantise(vectors, books=3, codes=16)


def test_vqrec_shape_is_vqrecs_or_the_nearest_that_fits_and_says_so(caplog):
    from mmsr_kit.baselines import quantiser_shape

    assert quantiser_shape(768, 10_000, 32, 256) == (32, 256)  # VQRec's: 32 books x 256 codes of a 768-d vector
    with caplog.at_level("INFO", logger="mmsr_kit.baselines"):
        assert quantiser_shape(60, 10_000, 32, 256) == (30, 256)  # 32 does not divide 60: 30 books
        assert quantiser_shape(64, 300, 32, 256) == (32, 256)
        assert quantiser_shape(64, 200, 32, 256) == (32, 128)  # 200 items cannot fill 256 codes
    assert "does not divide the text width 60: 30" in caplog.text and "200 items cannot fill" in caplog.text
    with pytest.raises(ConfigError, match="power of two"):
        quantiser_shape(64, 300, 32, 100)


def test_vq_codes_that_are_no_power_of_two_are_a_config_error():
    from mmsr_kit import make_config

    with pytest.raises(ConfigError, match="power of two"):
        make_config("smoke", overrides={"model.vq_codes": 100})


def carca_history(data, n=40, length=6, position=2):
    """n histories of `length` items (left-padded to max_len), equal but for the item at `position`."""
    inputs = torch.zeros(n, data.max_len, dtype=torch.long)
    inputs[:, -length:] = torch.arange(1, length + 1)
    inputs[:, -length + position] = torch.arange(10, 10 + n)
    return inputs


def test_carca_scores_come_out_of_cross_attention_not_a_dot_product(smoke_config):
    """Users that differ in one profile item: with a dot product against a fixed item table of width D their score
    rows over the catalogue span at most D dimensions (U V^T); CARCA's candidates each read the profile their own
    way, so the rows span more."""
    cfg, data, model = built(smoke_config, "carca++", model__hidden=8, model__heads=1)
    model.eval()
    table = model.all_item_vectors(data.n_items)
    scores = model.all_scores(carca_history(data), table)[:, 1:]  # (40 users, N items)
    assert scores.shape == (40, data.n_items) and torch.isfinite(scores).all()
    assert not torch.allclose(scores[0], scores[1])  # another item in the profile: other scores
    singular = torch.linalg.svdvals(scores.double())
    assert int((singular > 1e-6 * singular[0]).sum()) > 8 + 1, singular  # more than D (+1 for a bias) dimensions


def test_carca_full_ranking_scores_equal_the_training_path_at_the_last_position(smoke_config):
    """`all_scores` (every item, in chunks, what evaluation ranks by) gives each candidate the score the training
    loss sees for it at the last position, and chunking changes nothing."""
    cfg, data, model = built(smoke_config, "carca++")
    model.eval()
    table = model.all_item_vectors(data.n_items)
    inputs = carca_history(data, n=5)
    with torch.no_grad():
        h = model.sequence(table[inputs], inputs > 0)
        picked = torch.tensor([3, 17, 42, 250, 1])
        per_position = [table[i].expand(*inputs.shape, -1) for i in picked]
        pos, neg = model.training_scores(h, inputs > 0, per_position[0], per_position[1:])
    trained = torch.cat([pos[None], neg])[:, :, -1].T  # (5 users, 5 candidates) at the last position
    full = model.all_scores(inputs, table)
    assert torch.allclose(full[:, picked], trained, atol=1e-5)
    model.item_chunk = 7
    assert torch.allclose(model.all_scores(inputs, table), full, atol=1e-5)


def test_carca_evaluation_ranks_by_its_cross_attention_scores(smoke_config):
    """The kit's metrics of a CARCA model equal HR@10 counted by hand from `all_scores` (history left out)."""
    from mmsr_kit.evaluate import full_ranking_metrics

    cfg, data, model = built(smoke_config, "carca++")
    model.eval()
    test = data.test
    got = full_ranking_metrics(model, test, data.n_items, ks=(10,), batch_size=64)
    scores = model.all_scores(torch.as_tensor(test.inputs), model.all_item_vectors(data.n_items)).numpy()
    hits = 0
    for case, target in enumerate(test.targets):
        row = scores[case].copy()
        row[0] = -np.inf
        rows, items = test.masked(case, case + 1)
        row[items] = -np.inf
        hits += (row > row[target]).sum() + (row == row[target]).sum() - 1 < 10  # no ties at random init
    assert got["n"] == len(test.targets) and got["hr@10"] == pytest.approx(hits / len(test.targets), abs=1e-9)


def test_carca_overfits_a_few_sequences(smoke_config):
    """Trained on 8 training windows alone, CARCA ranks most of their last targets within the top 10 of the 300
    items, the window's own items left out as evaluation does (chance: 10 in 300)."""
    cfg, data, model = built(smoke_config, "carca++", model__dropout=0.0)
    windows = TrainWindows(data)
    inputs, targets = windows.collate(list(range(8)))[:2]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = model(*windows.collate(list(range(8))))  # new negatives each step
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    scores = model.all_scores(inputs, model.all_item_vectors(data.n_items))
    scores[:, 0] = -torch.inf
    scores.scatter_(1, inputs, -torch.inf)
    ranks = (scores > scores.gather(1, targets[:, -1:])).sum(1)
    assert (ranks < 10).sum() >= 6, (ranks, loss)


def test_recommending_from_a_run_that_scores_by_cross_attention_is_a_clear_error(smoke_config):
    from mmsr_kit.serve import TrainedRun

    cfg, data, model = built(smoke_config, "carca++")
    run = TrainedRun(cfg, model.eval(), data)
    assert run.catalogue_vectors().shape == (data.n_items + 1, cfg.model.hidden)  # item vectors still serve
    with pytest.raises(ConfigError, match="cross-attention"):
        run.recommend([data.item_ids[0]])


def test_fdsa_scores_by_id_and_reads_text_in_the_user(smoke_config):
    cfg, data, model = built(smoke_config, "fdsa")
    model.eval()
    vectors = model.all_item_vectors(data.n_items)
    assert vectors.shape[1] == 2 * cfg.model.hidden
    assert torch.equal(model.candidates(vectors), model.items.ids.table.weight.detach())  # candidates: ID embeddings
    inputs = torch.as_tensor(data.test.inputs[:4])
    users = model.last_user_vectors(inputs, vectors)
    with torch.no_grad():
        model.items.features.proj[1].weight.mul_(2)  # the text features of every item change, the IDs do not
    assert not torch.allclose(users, model.last_user_vectors(inputs, model.all_item_vectors(data.n_items)))


@pytest.mark.parametrize("fusion, kind", [("merge_attention_1", "Sum"), ("concat", "Concat")])
def test_morec_is_id_free_with_a_plain_fusion(smoke_config, fusion, kind):
    cfg, data, model = built(smoke_config, "morec++", model__fusion=fusion)
    assert type(model.items.fusion).__name__.startswith(kind)
    assert cfg.model.fusion == fusion  # the caller's config is left as it was
    assert not any(isinstance(m, IDEmbedding) for m in model.modules())
    content = model.items.content
    for name in ("input_ids", "attention_mask", "images"):  # item 2 becomes a copy of item 1
        getattr(content, name)[2] = getattr(content, name)[1]
    vectors = model.eval().items(torch.tensor([1, 2, 3]))
    assert torch.equal(vectors[0], vectors[1]) and not torch.equal(vectors[0], vectors[2])


def test_text_only_baselines_run_on_movielens_and_the_others_say_why_not(smoke_config):
    for mode in ("fdsa", "vqrec"):
        run = fit(smoke_config(model__mode=mode, data__name="ml-100k", train__epochs=1, **CPU_ENCODERS),
                  results=False, progress=False)
        assert 0 <= run.metrics["test"]["hr@10"] <= 1 and run.metrics["test"]["n"] == 943
    for mode in ("carca++", "morec++"):
        with pytest.raises(ConfigError, match="needs pictures|no images"):
            build_model(*reversed((lambda c: (load_split(c.data), c))(
                smoke_config(model__mode=mode, data__name="ml-100k", **CPU_ENCODERS))))


def test_baselines_are_listed():
    from mmsr_kit.cli import registries

    assert set(registries()["baselines"]) == set(BASELINES) >= {"fdsa", "carca++", "vqrec", "morec++", "idsr"}
