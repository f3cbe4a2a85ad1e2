"""A finished run as a model to use (`mmsr_kit.load_run`): the run's own metrics back from its saved files, item
vectors from text and picture, user vectors from a history, recommendations, and clear errors."""
import json
import shutil

import numpy as np
import pytest
import torch

from mmsr_kit import fit, load_run, make_config
from mmsr_kit.items import item_pictures
from mmsr_kit.registry import ConfigError
from mmsr_kit.train import evaluate

SMOKE = {"train.epochs": 1, "data.views": 0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for mode in ("mmsr", "idsr"):
        fit(make_config("smoke", overrides={**SMOKE, "model.mode": mode}), out_dir=out / mode, results=False,
            progress=False)
    return out


def test_a_loaded_run_gives_its_own_test_metrics_back(runs):
    for mode in ("mmsr", "idsr"):
        run = load_run(runs / mode)
        saved = json.loads((runs / mode / "metrics.json").read_text())
        assert not run.model.training
        assert evaluate(run.model, run.data, run.config, "test") == saved["test"]


def catalogue_inputs(run):
    """Every catalogue item's title and picture, as a user would hand them over (uint8 arrays, H x W x 3)."""
    pictures = item_pictures(run.data.dataset, run.model.items.vision.image_size)[1:]
    return list(run.data.dataset.items["text"]), [p.numpy().transpose(1, 2, 0) for p in pictures]


def test_catalogue_items_given_as_text_and_picture_get_the_vectors_evaluation_used(runs):
    run = load_run(runs / "mmsr")
    texts, pictures = catalogue_inputs(run)
    assert torch.equal(run.encode_items(texts, pictures), run.catalogue_vectors()[1:])  # bit for bit, on the CPU
    # a new item's vector is a function of its content: the same item twice in a batch, and in another batch
    title, picture = "deluxe plum silk gown", np.full((32, 32, 3), 200, dtype=np.uint8)
    two = run.encode_items([title, texts[0], title], [picture, pictures[0], picture])
    assert torch.equal(two[0], two[2])
    assert torch.allclose(run.encode_items([title], [picture])[0], two[0], atol=1e-6)
    assert not torch.allclose(two[0], two[1], atol=1e-3)  # and another item's is another vector


def test_missing_and_unreadable_pictures_are_grey_and_counted(runs, tmp_path):
    run = load_run(runs / "mmsr")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    grey = np.full((32, 32, 3), 128, dtype=np.uint8)
    vectors = run.encode_items(["a", "a", "a", "a"], [None, str(broken), str(tmp_path / "absent.png"), grey])
    assert run.grey_pictures == 3
    assert torch.equal(vectors[0], vectors[3]) and torch.equal(vectors[1], vectors[3])
    with pytest.raises(ConfigError, match="give 2 pictures"):
        run.encode_items(["a", "b"], [grey])


def test_a_user_vector_is_the_one_evaluation_scores_with(runs):
    run = load_run(runs / "mmsr")
    test = run.data.test
    rows = [0, 5, 17]
    inputs = torch.as_tensor(test.inputs[rows])
    expected = run.model.last_user_vectors(inputs, run.catalogue_vectors())
    histories = [[run.data.item_ids[i - 1] for i in row if i > 0] for row in test.inputs[rows]]
    assert torch.allclose(run.user_vectors(histories), expected, atol=1e-6)
    assert torch.equal(run.user_vector(histories[1]), run.user_vectors(histories)[1])


def test_recommend_leaves_out_the_history_and_agrees_with_a_brute_force_ranking(runs):
    run = load_run(runs / "mmsr")
    history = run.data.item_ids[10:14]
    top = run.recommend(history, k=20)
    assert list(top["rank"]) == list(range(1, 21)) and not set(top["item_id"]) & set(history)
    vectors = run.catalogue_vectors()[1:].numpy()
    scores = vectors @ run.user_vector(history).numpy()  # by hand: every item but the history, best first
    scores[[run.data.item_ids.index(i) for i in history]] = -np.inf
    best = np.argsort(-scores, kind="stable")[:20]
    assert list(top["item_id"]) == [run.data.item_ids[i] for i in best]
    assert np.allclose(top["score"], scores[best], atol=1e-5) and (np.diff(top["score"]) <= 0).all()
    assert list(top["title"]) == [run.data.dataset.items[int(i)]["text"] for i in best]
    kept = run.recommend(history, k=5, exclude_history=False)
    assert kept["item_id"].iloc[0] == run.data.item_ids[int(np.argmax(vectors @ run.user_vector(history).numpy()))]
    few = run.data.item_ids[100:103]
    assert set(run.recommend(history, k=10, candidates=few)["item_id"]) == set(few)  # only the candidates, all 3


def test_bad_input_is_one_clear_error(runs, tmp_path):
    run = load_run(runs / "mmsr")
    with pytest.raises(ConfigError, match=r"unknown item id\(s\) 'nope'"):
        run.recommend(["nope", run.data.item_ids[0]])
    with pytest.raises(ConfigError, match="empty history"):
        run.user_vector([])
    with pytest.raises(ConfigError, match="item-ID table: it has no content encoder"):
        load_run(runs / "idsr").encode_items(["a red scarf"], [None])
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs / "mmsr", unfinished)
    (unfinished / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="has no model.safetensors: the run did not finish"):
        load_run(unfinished)
    with pytest.raises(ConfigError, match="no config.yaml"):
        load_run(tmp_path)
    (unfinished / "model.safetensors").write_bytes((runs / "mmsr" / "model.safetensors").read_bytes())
    config = unfinished / "config.yaml"
    config.write_text(config.read_text().replace("  mode: mmsr\n", "  mode: mmsr\n  colour_space: lab\n"))
    with pytest.raises(ConfigError, match="written by another version of the kit: .*colour_space"):
        load_run(unfinished)


def test_new_items_are_ranked_with_the_catalogue_and_may_be_in_a_history(runs):
    run = load_run(runs / "mmsr")
    texts, pictures = catalogue_inputs(run)
    history = run.data.item_ids[10:14]
    added = run.add_items(["new-a", "new-b"], ["deluxe plum silk gown", texts[3]], [None, pictures[3]])
    assert torch.allclose(added[1], run.catalogue_vectors()[4], atol=1e-6)  # a copy of item 4 (in another batch)
    user = run.user_vector(history)
    both = run.recommend(history, k=3, candidates=["new-a", "new-b", run.data.item_ids[3]])
    assert set(both["item_id"]) == {"new-a", "new-b", run.data.item_ids[3]}
    assert dict(zip(both["item_id"], both["new"])) == {"new-a": True, "new-b": True, run.data.item_ids[3]: False}
    scores = dict(zip(both["item_id"], both["score"]))
    assert scores["new-a"] == pytest.approx(float(added[0] @ user), abs=1e-5)
    assert scores["new-b"] == pytest.approx(scores[run.data.item_ids[3]], abs=1e-6)
    assert not torch.equal(run.user_vector([*history, "new-a"]), user)  # a history may name a new item
    with pytest.raises(ConfigError, match="already in the catalogue"):
        run.add_items([run.data.item_ids[0]], ["x"], [None])


def test_the_cli_recommends_with_new_items_and_exports_every_vector(runs, tmp_path, capsys):
    from PIL import Image

    from mmsr_kit.cli import main

    run = load_run(runs / "mmsr")
    history = ",".join(run.data.item_ids[20:25])
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((48, 48, 3), 90, dtype=np.uint8)).save(tmp_path / "images" / "n1.png")
    (tmp_path / "items.csv").write_text("item_id,text\nn1,cool orange flax scarf\nn2,edition plum silk gown\n")
    main(["recommend", str(runs / "mmsr"), "--history", history, "-k", "2000", "--new-items",
          str(tmp_path / "items.csv"), "--images", str(tmp_path / "images")])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["items"]) == run.data.n_items + 2 - 5 and {"n1", "n2"} <= set(out["items"])  # all but the history
    assert out["grey_pictures"] == 1 and sum(out["new"]) == 2  # n2 has no picture
    expected = run.recommend(history.split(","), k=10)
    main(["recommend", str(runs / "mmsr"), "--history", history])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["items"] == list(expected["item_id"])
    main(["export", str(runs / "mmsr"), str(tmp_path / "export")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["items"] == run.data.n_items
    assert np.array_equal(np.load(tmp_path / "export" / "vectors.npy"), run.catalogue_vectors()[1:].numpy())
    from mmsr_kit.neighbours import load_index

    assert load_index(tmp_path / "export" / "items.faiss").ntotal == run.data.n_items
    lines = (tmp_path / "export" / "items.tsv").read_text().splitlines()
    assert lines[0] == "item_id\ttitle" and lines[1].split("\t")[0] == run.data.item_ids[0] and len(lines) == 301
    # an ID run asked for new items, an unknown id: one line each, exit status 2
    for argv, message in ((["recommend", str(runs / "idsr"), "--history", history, "--new-items",
                            str(tmp_path / "items.csv")], "item-ID table"),
                          (["recommend", str(runs / "mmsr"), "--history", "nope"], "unknown item id")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_the_faiss_indexes_agree_with_exact_search_and_the_runs_index_is_kept_beside_it(runs, monkeypatch):
    from mmsr_kit import neighbours

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    scores, rows = neighbours.search(neighbours.build_index(vectors), queries, 10)
    assert (rows == exact).all() and np.allclose(scores, np.take_along_axis(queries @ vectors.T, exact, 1), atol=1e-4)
    ivf = neighbours.build_index(vectors, exact_up_to=1000)  # an approximate index: its recall is measured
    assert type(ivf).__name__ == "IndexIVFFlat" and ivf.nlist == int(4 * np.sqrt(3000))
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(neighbours.search(ivf, queries, 10)[1], exact)])
    print(f"IVF recall@10 on 3,000 random vectors, nprobe {ivf.nprobe} of {ivf.nlist}: {recall:.3f}")
    assert 0.2 < recall <= 1.0
    run = load_run(runs / "mmsr")
    (runs / "mmsr" / "items.faiss").unlink(missing_ok=True)
    near = run.nearest(items=run.data.item_ids[:2], k=5)
    catalogue = run.catalogue_vectors()[1:].numpy()
    by_hand = np.argsort(-(catalogue[:2] @ catalogue.T), axis=1, kind="stable")[:, :5]
    assert list(near["item_id"]) == [run.data.item_ids[i] for i in by_hand.ravel()]
    assert (runs / "mmsr" / "items.faiss").is_file()  # built once, kept beside the run ...
    monkeypatch.setattr(neighbours, "build_index", lambda *a, **k: pytest.fail("built again"))
    again = load_run(runs / "mmsr").nearest(vectors=catalogue[:2], k=5)  # ... and read back by the next load
    assert list(again["item_id"]) == list(near["item_id"]) and list(again["query"]) == [0] * 5 + [1] * 5


def test_the_users_a_new_item_reaches_are_those_whose_top_k_it_enters(runs):
    run = load_run(runs / "mmsr")
    world = run.data.dataset.world
    title, picture = world.new_item("dress", "green", "triangle", "wool", "striped", seed=3)
    assert picture.shape == (32, 32, 3) and "green wool dress" in title
    vector = run.encode_items([title], [picture])
    everyone = run.users_for(vector, k=run.data.n_items + 1)  # a k past the catalogue: every test user, by rank
    assert len(everyone) == len(run.data.test.users) and (np.diff(everyone["rank"]) >= 0).all()
    top = run.users_for(vector, k=25)
    assert top.equals(everyone[everyone["rank"] <= 25].reset_index(drop=True))
    test = run.data.test  # by hand, for the user it ranks best: its rank among the catalogue without the history
    user = run.data.user_ids.index(everyone["user_id"].iloc[0])
    row = int(np.flatnonzero(test.users == user)[0])
    history = [run.data.item_ids[i - 1] for i in test.inputs[row] if i > 0]
    u = run.user_vector(history)
    scores = run.catalogue_vectors()[1:] @ u
    scores[[i - 1 for i in test.inputs[row] if i > 0]] = -np.inf
    assert everyone["rank"].iloc[0] == 1 + int((scores > float(vector[0] @ u)).sum())
    with pytest.raises(ValueError, match="unknown colour 'mauve'"):
        world.new_item(colour="mauve")
