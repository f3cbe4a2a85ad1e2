"""The bad-input catalogue: each case gives one clear line and a non-zero exit from the CLI (no traceback), or a
counted and logged fallback. Data, config and CLI mistakes alike."""
import json
import logging

import PIL.Image
import pytest

from mmsr_kit.cli import main

SMOKE = ["train", "--preset", "smoke", "--set", "train.epochs=1", "--no-log", "--quiet"]


def atomic_folder(root, items, interactions, images=None):
    """A RecBole atomic folder: `items` [(id, title)], `interactions` [(user, item, t)], `images` {id: bytes}."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["item_id:token\ttitle:token_seq"] + [f"{i}\t{t}" for i, t in items]
    (root / f"{root.name}.item").write_text("\n".join(lines) + "\n")
    lines = ["user_id:token\titem_id:token\ttimestamp:float"] + [f"{u}\t{i}\t{t}" for u, i, t in interactions]
    (root / f"{root.name}.inter").write_text("\n".join(lines) + "\n")
    if images is not None:
        (root / "images").mkdir()
        for item, data in images.items():
            (root / "images" / f"{item}.jpg").write_bytes(data)
    return str(root)


def jpeg(colour):
    import io

    buffer = io.BytesIO()
    PIL.Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def world(root, n_items=12, n_users=8, title=lambda i: f"red cotton item {i}", images=None):
    """Enough users with 6 interactions each to train; item i0 has whatever `title` gives it."""
    items = [(f"i{k}", title(k)) for k in range(n_items)]
    inter = [(f"u{u}", f"i{(u + s) % n_items}", 10 * u + s) for u in range(n_users) for s in range(6)]
    return atomic_folder(root, items, inter, images)


def bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [1, 2\n")
    return str(path)


def duplicate_ids(tmp_path):
    return atomic_folder(tmp_path / "dups", [("i1", "a"), ("i1", "b")], [("u", "i1", 1)])


CLI_CASES = [  # (id, argv or a function of tmp_path giving argv, exit status, message)
    ("unknown key", ["--set", "train.epoch=3"], 2, "did you mean 'train.epochs'"),
    ("wrong type", ["--set", "train.epochs=three"], 2, "train.epochs expects int"),
    ("unknown text encoder", ["--set", "model.mode=mmsr_t", "--set", "model.text_encoder=roberto"], 2,
     "did you mean 'roberta'"),
    ("hub id without a slash, offline", ["--set", "model.mode=mmsr_t", "--set", "model.text_encoder=roberta-base"], 2,
     "text encoder 'roberta-base' was not found: it is not local, not in the Hugging Face cache, and HF_HUB_OFFLINE"),
    ("unknown fusion", ["--set", "model.fusion=flim"], 2, "did you mean 'film'"),
    ("unknown mode", ["--set", "model.mode=mmsrv"], 2, "unknown mode 'mmsrv'"),
    ("unknown vision-language model", ["--set", "model.mode=vlp", "--set", "model.vlp=flav"], 2,
     "did you mean 'flava'"),
    ("dataset folder missing", ["--set", "data.name=/no/such/folder"], 2, "unknown dataset '/no/such/folder'"),
    ("pictures mode without pictures", ["--set", "data.name=ml-100k", "--set", "model.mode=mmsr_v"], 2,
     "needs pictures and ml-100k has no images"),
    ("encoder not found offline", ["--set", "model.mode=mmsr_t", "--set", "model.text_encoder=nobody/missing"], 2,
     "'nobody/missing' was not found"),
    ("empty after filtering", ["--set", "data.min_interactions=100000"], 2, "no user has 100000 or more"),
    ("not YAML", lambda tmp: ["--config", bad_yaml(tmp)], 2, "is not valid YAML"),
    ("config file missing", ["--config", "/no/such.yaml"], 2, "No such file"),
    ("--set without =", ["--set", "train.epochs"], 2, "--set expects key=value"),
    ("negative learning rate", ["--set", "train.lr=-1"], 2, "train.lr must be positive"),
    ("zero batch size", ["--set", "train.batch_size=0"], 2, "train.batch_size must be at least 1"),
    ("blocks not a number", ["--set", "model.mode=mmsr_t", "--set", "model.text_blocks=five"], 2,
     "default, all or a whole number"),
    ("more blocks than the model has", ["--set", "model.mode=mmsr_v", "--set", "model.vision_encoder=tiny-cnn",
                                        "--set", "model.vision_blocks=9"], 2, "cannot train the top 9 blocks"),
    ("mask ratio on a CNN", ["--set", "model.mode=mmsr_v", "--set", "model.vision_encoder=tiny-cnn",
                             "--set", "model.mask_ratio=0.5"], 2, "mask_ratio applies to MAE encoders only"),
    ("CUDA asked, none here", ["--set", "train.device=cuda"], 2, "no CUDA device"),
    ("item ids repeated", lambda tmp: ["--set", f"data.name={duplicate_ids(tmp)}"], 2, "repeats item ids"),
    ("resume a folder that is no run", lambda tmp: ["--resume", str(tmp)], 2, "no config.yaml"),
]


@pytest.mark.parametrize("argv, status, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(tmp_path, capsys, argv, status, message):
    if callable(argv):
        argv = argv(tmp_path)
    full = ["train", *argv] if "--resume" in argv else [*SMOKE, *argv]
    if "--resume" in argv:
        full += ["--no-log", "--quiet"]
    with pytest.raises(SystemExit) as exit:
        main(full)
    assert exit.value.code == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("mmsr: error")]) == 1


def train_json(capsys, *sets):
    main([*SMOKE, *(x for s in sets for x in ("--set", s))])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_item_ids_missing_from_the_item_table_are_dropped_counted_and_logged(tiny_dir, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        metrics = train_json(capsys, f"data.name={tiny_dir}", "model.mode=idsr")
    assert metrics["data"]["dropped_unknown_items"] == 1 and "e.g. ['zz']" in caplog.text


def test_empty_texts_are_encoded_as_empty_counted_and_logged(tmp_path, capsys, caplog):
    folder = world(tmp_path / "shop", title=lambda k: "" if k < 3 else f"red cotton item {k}")
    with caplog.at_level(logging.WARNING):
        metrics = train_json(capsys, f"data.name={folder}", "model.mode=mmsr_t", "model.text_encoder=bow")
    assert metrics["data"]["empty_texts"] == 3 and "3 item(s) have an empty text" in caplog.text
    assert metrics["test"]["n"] == 8


def test_missing_and_corrupt_images_are_grey_counted_and_logged(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("MMSR_CACHE", str(tmp_path / "cache"))
    images = {f"i{k}": jpeg((20 * k, 0, 0)) for k in range(2, 12)}
    images["i1"] = b"\xff\xd8 not really a jpeg"  # i0 has no file at all
    folder = world(tmp_path / "pics", images=images)
    with caplog.at_level(logging.WARNING):
        metrics = train_json(capsys, f"data.name={folder}", "model.mode=mmsr_v", "model.vision_encoder=tiny-cnn")
    assert metrics["data"]["missing_images"] == 1 and metrics["data"]["unreadable_images"] == 1
    assert "1 item(s) with an unreadable picture are shown as grey" in caplog.text
    assert metrics["test"]["n"] == 8


def test_a_text_longer_than_the_model_reads_is_cut_and_logged(caplog):
    from mmsr_kit.encoders import TextEncoder

    with caplog.at_level(logging.INFO):
        encoder = TextEncoder("tiny-bert", max_tokens=600)  # its positions: 128
    assert encoder.max_tokens == 128 and "model.text_len=600 is cut to 128" in caplog.text
    batch = encoder.tokenize(["word " * 1000])
    assert batch["input_ids"].shape == (1, 128)
    assert encoder(**batch)[2].shape == (1, encoder.width)


def test_every_not_found_hint_names_a_config_key_that_exists():
    from mmsr_kit.config import Config, set_value
    from mmsr_kit.encoders.common import CONFIG_KEYS, missing_model

    for kind, key in CONFIG_KEYS.items():
        set_value(Config(), key, "/path/to/model")  # raises for a key that does not exist
        assert f"({key}=/path/to/model" in str(missing_model("some/model", kind)), kind
