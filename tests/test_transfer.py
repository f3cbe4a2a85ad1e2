"""--init-from: a run starts from another run's weights, part by part; ID tables never cross datasets."""
import json

import pytest
import torch

from mmsr_kit.registry import ConfigError
from mmsr_kit.transfer import id_keys, init_from, part_of

SHOP_TO_VIDEO = {"data__domain": "video", "data__world_seed": 1}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One finished source run per mode on the shop world (smoke, 1 epoch), written like `mmsr train --out`."""
    from mmsr_kit import make_config
    from mmsr_kit.train import fit

    out = {}
    for mode in ("mmsr", "idsr", "fdsa"):
        folder = tmp_path_factory.mktemp(mode)
        fit(make_config("smoke", overrides={"model.mode": mode, "train.epochs": 1}), out_dir=folder, results=False,
            progress=False)
        out[mode] = folder
    return out


def target(smoke_config, sources, mode, **overrides):
    """A `mode` model for the video world from the shop run of that mode, built and loaded the way `fit` does
    it; also its config and data."""
    from mmsr_kit import load_split
    from mmsr_kit.modes import build_model

    cfg = smoke_config(**{**SHOP_TO_VIDEO, "model__mode": mode, "train__init_from": str(sources[mode]), **overrides})
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    return model, init_from(model, cfg.train.init_from, cfg.train.init_parts, cfg.model), cfg, data


def test_transferred_item_encoder_equals_the_source_before_fine_tuning(smoke_config, sources):
    from safetensors.torch import load_file

    from mmsr_kit import load_split
    from mmsr_kit.modes import build_model

    model, report, cfg, data = target(smoke_config, sources, "mmsr")
    source = load_file(str(sources["mmsr"] / "model.safetensors"))
    own = model.state_dict()
    assert set(report.loaded) == set(source) == set(own) and not report.new  # no ID table: everything carries
    assert all(torch.equal(own[k], source[k]) for k in source)
    # the same function: the source's weights on the target's items give the transferred model's item vectors
    reference = build_model(cfg, load_split(cfg.data))
    reference.load_state_dict(source)
    model.eval(), reference.eval()
    assert torch.equal(model.all_item_vectors(data.n_items), reference.all_item_vectors(data.n_items))


def test_id_tables_never_cross_datasets_even_when_shapes_match(smoke_config, sources):
    from accelerate.utils import set_seed

    from mmsr_kit.modes import build_model

    set_seed(0)
    model, report, cfg, data = target(smoke_config, sources, "idsr")
    assert report.skipped == {"items.table.weight": "ID table: rows are the source's items"}
    assert "items.table.weight" in report.new and all(part_of(k) == "sequence" for k in report.loaded)
    set_seed(0)
    fresh = build_model(cfg, data)  # same seed, no transfer: the table is this run's own initialisation
    assert torch.equal(model.items.table.weight, fresh.items.table.weight)
    assert not torch.equal(model.sequence.position.weight, fresh.sequence.position.weight)  # the sequence moved over
    assert report.by_part(id_keys(model))["ids"] == {"loaded": 0, "skipped": 1, "new": 1}


def test_fdsa_carries_its_text_stream_not_its_ids(smoke_config, sources):
    model, report, _, _ = target(smoke_config, sources, "fdsa")
    assert report.skipped == {"items.ids.table.weight": "ID table: rows are the source's items"}
    assert any(part_of(k) == "text" for k in report.loaded)


def test_vqrec_codes_are_per_item(smoke_config):
    from mmsr_kit import load_split
    from mmsr_kit.modes import build_model

    cfg = smoke_config(model__mode="vqrec")
    model = build_model(cfg, load_split(cfg.data))
    assert id_keys(model) == {"items.item_codes"}


def test_parts_pick_what_loads(smoke_config, sources):
    model, report, _, _ = target(smoke_config, sources, "mmsr", train__init_parts="text,sequence")
    assert {part_of(k) for k in report.loaded} == {"text", "sequence"}
    assert {part_of(k) for k in report.new} == {"vision", "fusion"}
    assert set(report.skipped.values()) == {"part vision not in train.init_parts", "part fusion not in train.init_parts"}


def test_mismatches_are_clear_errors(smoke_config, sources, tmp_path):
    with pytest.raises(ConfigError, match="differ in shape"):
        target(smoke_config, sources, "mmsr", model__hidden=48)
    with pytest.raises(ConfigError, match="model.text_encoder is 'tiny-bert'"):
        target(smoke_config, sources, "mmsr", model__text_encoder="bow")
    with pytest.raises(ConfigError, match="does not exist"):
        smoke_config(train__init_from=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="unknown transfer part 'ids'"):
        smoke_config(train__init_from=str(sources["mmsr"]), train__init_parts="text,ids")


def test_cli_init_from_fine_tunes_and_reports(sources, tmp_path, capsys):
    from mmsr_kit.cli import main

    main(["train", "--preset", "smoke", "--set", "data.domain=video", "--set", "train.epochs=1", "--quiet", "--no-log",
          "--init-from", str(sources["idsr"]), "--out", str(tmp_path / "run")])
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["init_from"]["skipped"] == 1 and metrics["init_from"]["loaded"] > 0
    assert metrics["init_from"]["by_part"]["sequence"]["loaded"] == metrics["init_from"]["loaded"]
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert f"init_from: {sources['idsr']}" in saved  # the run's config says where it started
