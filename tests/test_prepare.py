"""`mmsr prepare`: every format from its raw fixture (tests/data/raw, see its README) to one training step;
statistics against counts made here with plain pandas; identical reruns; bad input counted or an error."""
import gzip
import hashlib
import json

import numpy as np
import pandas as pd
import PIL.Image
import pytest

from mmsr_kit import fit
from mmsr_kit.cli import main
from mmsr_kit.data import load_dataset, load_split
from mmsr_kit.data.formats import FORMATS
from mmsr_kit.data.prepare import PrepareError, PrepareOptions, prepare

from conftest import DATA

RAW = DATA / "raw"
PLANTED = {"unknown_item": 1, "duplicate_row": 1, "bad_timestamp": 1, "missing_image": 1, "corrupt_image": 1}
CASES = {  # case -> (format, reader options, planted problems beyond PLANTED)
    "hm": ("hm", {}, {"empty_text": 0}),
    "amazon": ("amazon", {}, {"empty_text": 1, "duplicate_item": 1}),
    "amazon-reviews": ("amazon", {"interactions": "All_Beauty.json.gz"}, {"empty_text": 1, "duplicate_item": 1}),
    "microlens": ("microlens", {}, {"empty_text": 1}),
    "pixelrec": ("pixelrec", {}, {"empty_text": 1}),
    "atomic": ("atomic", {}, {"empty_text": 1}),
    "folder": ("folder", {}, {"empty_text": 1}),
}


def raw_interactions(case):
    """(user, item, time as read, item ids of the item file): the fixture read with plain pandas, nothing shared
    with the kit's readers."""
    fmt, options, _ = CASES[case]
    folder = RAW / fmt
    read = lambda path, **kw: pd.read_csv(path, dtype=str, keep_default_na=False, **kw)  # noqa: E731
    if fmt == "hm":
        tx = read(folder / "transactions_train.csv")
        return (tx["customer_id"], tx["article_id"].str.zfill(10), pd.to_datetime(tx["t_dat"], errors="coerce"),
                set(read(folder / "articles.csv")["article_id"].str.zfill(10)))
    if fmt == "amazon":
        with gzip.open(folder / "meta_All_Beauty.json.gz", "rt") as f:
            ids = {json.loads(line)["asin"] for line in f}
        if options:
            with gzip.open(folder / "All_Beauty.json.gz", "rt") as f:
                rows = pd.DataFrame([json.loads(line) for line in f])
            return rows["reviewerID"], rows["asin"], pd.to_numeric(rows["unixReviewTime"], errors="coerce"), ids
        rows = read(folder / "All_Beauty.csv", header=None, names=["item", "user", "rating", "time"])
        return rows["user"], rows["item"], pd.to_numeric(rows["time"], errors="coerce"), ids
    if fmt == "microlens":
        rows = read(folder / "MicroLens-50k_pairs.csv")
        return (rows["user"], rows["item"], pd.to_numeric(rows["timestamp"], errors="coerce"),
                set(read(folder / "MicroLens-50k_titles.csv")["item"]))
    if fmt == "pixelrec":
        rows = read(folder / "pixelrec_interaction" / "Pixel200K.csv")
        return (rows["user_id"], rows["item_id"], pd.to_numeric(rows["timestamp"], errors="coerce"),
                set(read(folder / "pixelrec_iteminfo" / "Pixel200K_items.csv")["item_id"]))
    if fmt == "atomic":
        rows = read(folder / "atomic.inter", sep="\t")
        return (rows["user_id:token"], rows["item_id:token"], pd.to_numeric(rows["timestamp:float"], errors="coerce"),
                set(read(folder / "atomic.item", sep="\t")["item_id:token"]))
    rows = read(folder / "interactions.csv")
    return (rows["user_id"], rows["item_id"], pd.to_numeric(rows["timestamp"], errors="coerce"),
            set(read(folder / "items.csv")["item_id"]))


def expected(case, min_interactions=5):
    users, items, times, known = raw_interactions(case)
    frame = pd.DataFrame({"user": users, "item": items, "time": times})
    frame = frame[frame["item"].isin(known) & frame["time"].notna()].drop_duplicates()
    sizes = frame.groupby("user").size()
    kept = frame[frame["user"].isin(sizes[sizes >= min_interactions].index)]
    return {"users": kept["user"].nunique(), "interactions": len(kept), "items": kept["item"].nunique()}, kept


def run_prepare(case, out, **options):
    fmt, reader_options, _ = CASES[case]
    source = FORMATS[fmt](RAW / fmt, **reader_options)
    return prepare(source, out, PrepareOptions(image_size=8, workers=1, **options), fmt=fmt)


def digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES)
def test_every_format_prepares_counts_and_trains_one_step(case, tmp_path, smoke_config):
    manifest = run_prepare(case, tmp_path / case)
    counts, kept = expected(case)
    stats = manifest["statistics"]
    assert {k: stats[k] for k in counts} == counts
    assert stats["avg_length"] == pytest.approx(counts["interactions"] / counts["users"], abs=1e-4)
    planted = {**PLANTED, **CASES[case][2]}
    assert {kind: manifest["problems"][kind]["count"] for kind in planted} == planted
    assert all(p["examples"] for p in manifest["problems"].values() if p["count"])

    dataset = load_dataset(smoke_config(data__name=str(tmp_path / case)).data)
    inter = dataset.interactions
    assert len(inter) == counts["interactions"] and len(dataset.items) == counts["items"]
    assert set(inter["user_id"]) == set(kept["user"]) and set(dataset.items["item_id"]) == set(kept["item"])
    for user, rows in inter.groupby("user_id", sort=False):  # each user's items in time order
        assert rows["timestamp"].is_monotonic_increasing
    cfg = smoke_config(data__name=str(tmp_path / case), model__mode="mmsr", model__hidden=16, train__epochs=1,
                       data__image_size=8)
    run = fit(cfg, results=False, progress=False)
    assert np.isfinite(run.history[0]["loss"])
    assert run.metrics["data"]["cold_cases"] == stats["cold"] == len(run.data.cold_test)  # Table 1's #cold, held out
    assert run.metrics["data"]["cold_cases_paper"] == stats["cold_paper"] == run.metrics["cold_paper"]["n"]  # paper's


def test_text_follows_the_paper(tmp_path):
    run_prepare("hm", tmp_path / "hm")
    texts = dict(zip(*(load_dataset_items(tmp_path / "hm"))))
    # equal names and descriptions, told apart by the tags (colour)
    assert "Black" in texts["0108775015"] and "White" in texts["0108775044"]
    assert texts["0108775015"].replace("Black", "White") == texts["0108775044"]
    run_prepare("folder", tmp_path / "folder")
    texts = dict(zip(*load_dataset_items(tmp_path / "folder")))
    raw = pd.read_csv(RAW / "folder" / "items.csv", dtype=str, keep_default_na=False).set_index("item_id")["text"]
    assert len(raw["sku176"].split()) > 50 and texts["sku176"] == " ".join(raw["sku176"].split()[:50])
    assert texts["sku075"] == 'Travel mug, "leak-proof" lid, 450 ml'


def test_interactions_at_the_same_time_keep_their_input_order(tmp_path):
    run_prepare("hm", tmp_path / "hm")
    inter = pd.read_parquet(tmp_path / "hm" / "interactions.parquet").astype({"user_id": str, "item_id": str})
    user = inter[inter["user_id"] == "b35a9bec39966383ffa23919c28097e12af5bd07e335696ebf4d8a0e7a92df3f"]
    same_day = user[user["timestamp"].duplicated(keep=False)]  # bought on one day, in this order in the file
    assert same_day["item_id"].tolist() == ["0372860001", "0562245001"]
    assert inter.groupby("user_id", sort=False)["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()
    assert inter["user_id"].tolist() == sorted(inter["user_id"])  # users in id order


def load_dataset_items(folder):
    import datasets

    items = datasets.load_from_disk(str(folder / "items"))
    return items["item_id"], items["text"]


def test_picture_store_rows_are_the_decoded_files_and_grey_for_bad_ones(tmp_path):
    manifest = run_prepare("folder", tmp_path / "out")
    store = np.load(tmp_path / "out" / manifest["outputs"]["pictures"])
    ids = load_dataset_items(tmp_path / "out")[0]
    assert store.shape == (len(ids) + 1, 3, 8, 8) and store.dtype == np.uint8 and not store[0].any()
    for row, item in enumerate(ids, start=1):
        path = RAW / "folder" / "images" / f"{item}.jpg"
        if item in ("sku195", "sku110"):  # missing, corrupt
            assert (store[row] == 128).all()
        else:
            want = np.asarray(PIL.Image.open(path).convert("RGB").resize((8, 8), PIL.Image.BICUBIC)).transpose(2, 0, 1)
            gap = np.abs(store[row].astype(int) - want)  # JPEGs decode at a reduced scale first (draft): near, not equal
            assert gap.mean() < 2 and gap.max() <= 8
    listed = pd.read_csv(tmp_path / "out" / "missing_images.tsv", sep="\t", dtype=str)
    assert dict(zip(listed["item_id"], listed["problem"])) == {"sku195": "missing_image", "sku110": "corrupt_image"}


def test_training_at_another_size_resizes_the_store_once(tmp_path, smoke_config):
    from mmsr_kit.items import item_pictures, resize

    import torch

    run_prepare("folder", tmp_path / "out")
    dataset = load_dataset(smoke_config(data__name=str(tmp_path / "out")).data)
    stored = item_pictures(dataset, 8)
    assert stored.shape[-1] == 8
    bigger = item_pictures(dataset, 16)
    torch.testing.assert_close(bigger, resize(stored, 16))
    assert item_pictures(dataset, 16).data_ptr() != bigger.data_ptr()  # memory-mapped again from the cache


def test_preparing_twice_gives_identical_files_and_workers_do_not_matter(tmp_path):
    fmt, options, _ = CASES["pixelrec"]
    a = prepare(FORMATS[fmt](RAW / fmt), tmp_path / "a", PrepareOptions(image_size=8, workers=1), fmt=fmt)
    b = prepare(FORMATS[fmt](RAW / fmt), tmp_path / "b", PrepareOptions(image_size=8, workers=2), fmt=fmt)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert a["outputs"]["files"] == {name: {"bytes": (tmp_path / "a" / name).stat().st_size, "sha256": digest}
                                     for name, digest in digests(tmp_path / "a").items() if name != "manifest.json"}
    inputs = {f["path"]: f["sha256"] for f in a["inputs"]["files"]}
    assert inputs["pixelrec_interaction/Pixel200K.csv"] == hashlib.sha256(
        (RAW / "pixelrec" / "pixelrec_interaction" / "Pixel200K.csv").read_bytes()).hexdigest()
    assert a["inputs"]["images"]["files"] == 13  # 13 covers, one of them corrupt (checksummed all the same)


def test_sampling_users_is_seeded_and_follows_the_filter(tmp_path):
    counts, kept = expected("microlens")
    a = run_prepare("microlens", tmp_path / "a", sample_users=3, seed=1)
    b = run_prepare("microlens", tmp_path / "b", sample_users=3, seed=1)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    users = set(pd.read_parquet(tmp_path / "a" / "interactions.parquet")["user_id"].astype(str))
    assert len(users) == 3 and users <= set(kept["user"])
    assert a["steps"]["users_with_enough"] == counts["users"] and a["steps"]["users_kept"] == 3
    draws = set()
    for seed in range(4):
        run_prepare("microlens", tmp_path / f"s{seed}", sample_users=3, seed=seed)
        draws.add(frozenset(pd.read_parquet(tmp_path / f"s{seed}" / "interactions.parquet")["user_id"].astype(str)))
    assert len(draws) > 1  # the seed matters
    six, _ = expected("microlens", min_interactions=6)
    assert run_prepare("microlens", tmp_path / "m6", min_interactions=6)["statistics"]["users"] == six["users"]


@pytest.mark.parametrize("kind", ["corrupt_image", "unknown_item", "duplicate_row", "bad_timestamp", "empty_text"])
def test_strict_makes_a_kind_an_error(kind, tmp_path):
    with pytest.raises(PrepareError, match=f"1 case\\(s\\) of {kind}"):
        run_prepare("folder", tmp_path / "out", strict=(kind,))
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_bad_options_and_layouts_are_clear_errors(tmp_path):
    with pytest.raises(Exception, match="unknown kind of bad input 'corupt_image'.*did you mean 'corrupt_image'"):
        PrepareOptions(strict=("corupt_image",))
    with pytest.raises(PrepareError, match="no user has 100 or more valid interactions"):
        run_prepare("folder", tmp_path / "none", min_interactions=100)
    with pytest.raises(PrepareError, match="articles.csv not found"):
        FORMATS["hm"](RAW / "folder")
    with pytest.raises(PrepareError, match="no item_id column"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "items.csv").write_text("id,text\n1,a\n")
        (tmp_path / "bad" / "interactions.csv").write_text("user_id,item_id,timestamp\nu,1,1\n")
        FORMATS["folder"](tmp_path / "bad")
    (tmp_path / "bad" / "items.csv").write_text("item_id,text\n1,a\n2,b\n")
    rows = "".join(f"u,{1 + t % 2},{t}\n" for t in range(5))
    (tmp_path / "bad" / "interactions.csv").write_text(f"user_id,item_id,timestamp\n{rows},1,9\nu,,10\n")
    manifest = prepare(FORMATS["folder"](tmp_path / "bad"), tmp_path / "ok", PrepareOptions(image_size=8, workers=1))
    assert manifest["problems"]["bad_row"] == {"count": 2, "handling": "the interaction is dropped (empty user or "
                                               "item id)", "examples": ["row 6", "row 7"]}
    assert manifest["statistics"]["interactions"] == 5 and manifest["problems"]["missing_image"]["count"] == 2
    (tmp_path / "bad" / "interactions.csv").write_text("user,item_id,timestamp\nu,1,1\n")
    with pytest.raises(PrepareError, match="no column\\(s\\) \\['user_id'\\]"):
        prepare(FORMATS["folder"](tmp_path / "bad"), tmp_path / "out")


def test_cli_prepares_and_prints_the_statistics_last(tmp_path, capsys):
    out = tmp_path / "out"
    main(["prepare", "atomic", str(RAW / "atomic"), str(out), "--image-size", "8", "--workers", "1"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: last[k] for k in manifest["statistics"]} == manifest["statistics"]
    assert last["problems"] == {k: p["count"] for k, p in manifest["problems"].items() if p["count"]}
    with pytest.raises(SystemExit) as exit:  # an existing folder is not overwritten without --force
        main(["prepare", "atomic", str(RAW / "atomic"), str(out)])
    assert exit.value.code == 2 and "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["prepare", "h&m", str(RAW / "hm"), str(tmp_path / "x")])
    assert exit.value.code == 2 and "unknown format 'h&m'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["prepare", "folder", str(RAW / "folder"), str(tmp_path / "y"), "--strict", "--image-size", "8"])
    assert exit.value.code == 2 and "case(s) of" in capsys.readouterr().err
