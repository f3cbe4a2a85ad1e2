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
